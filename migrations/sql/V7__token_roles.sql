-- API tokens carry a role (viewer < operator < admin) on one project, or on every project when
-- project_id is NULL (DESIGN §6). Tokens made before roles existed keep what they could do: admin
-- everywhere. A project's tokens go with it.
ALTER TABLE api_tokens
    ADD COLUMN role text NOT NULL DEFAULT 'admin' CHECK (role IN ('viewer', 'operator', 'admin')),
    ADD COLUMN project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    ADD COLUMN created_by text NOT NULL DEFAULT 'admin';
ALTER TABLE api_tokens ALTER COLUMN role DROP DEFAULT, ALTER COLUMN created_by DROP DEFAULT;
