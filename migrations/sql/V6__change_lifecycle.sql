-- The change lifecycle (issue 14).

-- Every line of a change is numbered from the change's own sequence (the last number given), taken
-- in the statement that inserts the lines; its row stays locked until they commit, so lines commit
-- in `seq` order: a follower that has seen line n has seen every line before it, and resumes after
-- n (Last-Event-ID) without missing or repeating one. A narrow table of its own: bumping a counter
-- on the wide, much-indexed `changes` row copied it (its manifest and metadata) on every write.
CREATE TABLE log_sequences (
    change_id uuid PRIMARY KEY REFERENCES changes (id) ON DELETE CASCADE,
    seq bigint NOT NULL
);
ALTER TABLE log_lines ADD COLUMN seq bigint;
UPDATE log_lines l SET seq = n.seq
FROM (SELECT id, row_number() OVER (PARTITION BY change_id ORDER BY id) AS seq FROM log_lines) n
WHERE n.id = l.id;
INSERT INTO log_sequences (change_id, seq)
SELECT change_id, max(seq) FROM log_lines GROUP BY change_id;
ALTER TABLE log_lines ALTER COLUMN seq SET NOT NULL;
DROP INDEX log_lines_change;
DROP INDEX log_lines_step;
CREATE UNIQUE INDEX log_lines_change_seq ON log_lines (change_id, seq);
CREATE INDEX log_lines_step_seq ON log_lines (step_id, seq) WHERE step_id IS NOT NULL;

-- GET /api/events filters by type and by target (every transition of a change or step is an
-- event now), newest first.
CREATE INDEX events_type ON events (type, id);
CREATE INDEX events_target ON events (target, id);

-- Settings of projects and environments (environment over project over the server's defaults),
-- versioned like properties. They hold no secret: plain JSON. `allow_parallel_changes` moves
-- into the project's settings.
ALTER TABLE projects
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN settings_version bigint NOT NULL DEFAULT 1;
ALTER TABLE environments
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN settings_version bigint NOT NULL DEFAULT 1;
UPDATE projects SET settings = '{"allow_parallel_changes": true}' WHERE allow_parallel_changes;
ALTER TABLE projects DROP COLUMN allow_parallel_changes;

CREATE TABLE settings_versions (
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    environment_id uuid REFERENCES environments (id) ON DELETE CASCADE,
    version bigint NOT NULL,
    document jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    CHECK ((project_id IS NULL) <> (environment_id IS NULL))
);
CREATE UNIQUE INDEX settings_versions_project ON settings_versions (project_id, version)
    WHERE project_id IS NOT NULL;
CREATE UNIQUE INDEX settings_versions_environment ON settings_versions (environment_id, version)
    WHERE environment_id IS NOT NULL;
INSERT INTO settings_versions (project_id, version, document, created_by)
    SELECT id, 1, settings, 'gantry' FROM projects;
INSERT INTO settings_versions (environment_id, version, document, created_by)
    SELECT id, 1, settings, 'gantry' FROM environments;

-- When each step image was last used on each Docker engine, for the image garbage collector.
CREATE TABLE step_images (
    engine_id text NOT NULL,
    tag text NOT NULL,
    last_used_at timestamptz NOT NULL,
    PRIMARY KEY (engine_id, tag)
);
