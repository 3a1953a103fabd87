-- Editing project properties first looks for an active change of the project (409 if there is
-- one). Without this index that lookup scanned every change ever made: 54 ms at 56,000 changes,
-- and a properties PATCH waited on it under load. Environments already have
-- changes_environment_status.
CREATE INDEX changes_project_status ON changes (project_id, status_code);
