-- `Idempotency-Key` of POST /api/changes: a client that retries a creation (a timeout, a dropped
-- connection) with the same key gets the change its first request made, not a second one. Keys
-- belong to the user who sent them; the digest is of the request's attributes.
CREATE TABLE idempotency_keys (
    actor text NOT NULL,
    key text NOT NULL,
    request_digest text NOT NULL,
    change_id uuid NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);
