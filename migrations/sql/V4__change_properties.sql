-- The properties versions a change started from (set when its first step is claimed), so
-- GET /api/changes/{id}/properties can show the point-in-time copy the change used.
ALTER TABLE changes
    ADD COLUMN project_properties_version bigint,
    ADD COLUMN environment_properties_version bigint;
