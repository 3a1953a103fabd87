-- The workers of the cluster as they report themselves (GET /api/workers): each process upserts
-- its row when it starts and on every heartbeat, and marks it stopped when it shuts down
-- gracefully. A row whose heartbeat is older than three intervals belongs to a worker that died
-- or lost the database; the retention job deletes rows a day after their last heartbeat.
CREATE TABLE workers (
    id text PRIMARY KEY,
    host text NOT NULL,
    version text NOT NULL,
    roles text[] NOT NULL,
    concurrency integer NOT NULL,
    running_steps integer NOT NULL DEFAULT 0,
    load_average double precision,
    memory_bytes bigint,
    heartbeat_seconds integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz
);
CREATE INDEX workers_heartbeat_at ON workers (heartbeat_at);
