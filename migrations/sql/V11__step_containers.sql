-- The container each attempt of a step runs in. Step containers are created and started before
-- their step is claimed (parked, issue 18), so their labels cannot name the step: the worker
-- records the container here before it gives it the step. The orphan sweeper looks containers
-- up by name, and a later attempt finds the earlier attempts' containers to remove them first
-- (RELIABILITY I3).
CREATE TABLE step_containers (
    container text PRIMARY KEY,
    step_id uuid NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    worker_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX step_containers_step_id ON step_containers (step_id);
