-- Attempts a worker handed back when it shut down gracefully (its grace period ended while the
-- step ran): they are not failures, so worker.max_attempts does not count them — a rolling
-- restart of the workers does not use up a long step's attempts.
ALTER TABLE steps ADD COLUMN handed_back integer NOT NULL DEFAULT 0;
