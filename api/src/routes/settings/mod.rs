//! `/api/projects/{p}/settings` and `/api/projects/{p}/environments/{e}/settings`: the settings of
//! a project or an environment (DESIGN §6; see `gantry_shared::project_settings`), versioned like
//! properties — a PATCH names the version it was made against (`If-Match` or `version`; 412 when
//! stale), every update is a new version, the history is kept. They are plain JSON (they hold no
//! secret) and may change while changes run: a new version applies to the steps that start after
//! it.

mod owner;
mod show;
mod update;
mod versions;

pub use show::{
    __path_show_environment_settings, __path_show_project_settings, show_environment_settings,
    show_project_settings,
};
pub use update::{
    __path_update_environment_settings, __path_update_project_settings,
    update_environment_settings, update_project_settings,
};
pub use versions::{
    __path_list_environment_settings_versions, __path_list_project_settings_versions,
    list_environment_settings_versions, list_project_settings_versions,
};
