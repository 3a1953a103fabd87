-- Gantry's initial schema: DESIGN §2. Encrypted columns are bytea (AES-256-GCM envelope, see shared::crypto).

CREATE TABLE projects (
    id uuid PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    description text,
    archived boolean NOT NULL DEFAULT false,
    allow_parallel_changes boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE environments (
    id uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    code text NOT NULL,
    name text NOT NULL,
    description text,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, code)
);

-- One properties document per owner (exactly one of project_id / environment_id is set).
CREATE TABLE properties (
    id uuid PRIMARY KEY,
    project_id uuid UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    environment_id uuid UNIQUE REFERENCES environments (id) ON DELETE CASCADE,
    version bigint NOT NULL,
    document bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((project_id IS NULL) <> (environment_id IS NULL))
);

CREATE TABLE properties_versions (
    properties_id uuid NOT NULL REFERENCES properties (id) ON DELETE CASCADE,
    version bigint NOT NULL,
    document bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    step_id uuid,
    PRIMARY KEY (properties_id, version)
);

CREATE TABLE git_remotes (
    id uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    url text NOT NULL,
    username text,
    password bytea,
    ssh_key_data bytea,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE changes (
    id uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (id),
    environment_id uuid NOT NULL REFERENCES environments (id),
    git_remote_name text NOT NULL,
    git_rev text NOT NULL,
    commit_sha text,
    action text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    status_code text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    retried_from uuid REFERENCES changes (id),
    -- the validated static step tree the planner read from the manifest
    step_tree jsonb
);
CREATE INDEX changes_environment_status ON changes (environment_id, status_code, created_at);
CREATE INDEX changes_created_at ON changes (created_at, id);

CREATE TABLE steps (
    id uuid PRIMARY KEY,
    change_id uuid NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    parent_id uuid REFERENCES steps (id) ON DELETE CASCADE,
    position integer NOT NULL,
    action text NOT NULL,
    name text NOT NULL,
    has_command boolean NOT NULL,
    child_execution_strategy text NOT NULL DEFAULT 'sequential',
    status_code text NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    lease_owner text,
    lease_expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    -- set when the result of the step's own command was applied (fences duplicate results while
    -- the step waits for its children)
    command_finished_at timestamptz,
    finished_at timestamptz,
    exit_code integer,
    properties bytea,
    project_properties_version bigint,
    environment_properties_version bigint,
    UNIQUE (change_id, parent_id, position)
);
CREATE INDEX steps_change ON steps (change_id, parent_id, position);
CREATE INDEX steps_lease ON steps (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

CREATE TABLE log_lines (
    id bigserial PRIMARY KEY,
    change_id uuid NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    step_id uuid REFERENCES steps (id) ON DELETE CASCADE,
    logged_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    stream text NOT NULL,
    text text NOT NULL
);
CREATE INDEX log_lines_change ON log_lines (change_id, id);
CREATE INDEX log_lines_step ON log_lines (step_id, id) WHERE step_id IS NOT NULL;

CREATE TABLE events (
    id bigserial PRIMARY KEY,
    type text NOT NULL,
    actor text NOT NULL,
    target text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE secrets (
    name text PRIMARY KEY,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id uuid PRIMARY KEY,
    user_name text NOT NULL,
    token_digest text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    exchange text NOT NULL,
    routing_key text NOT NULL,
    payload bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
