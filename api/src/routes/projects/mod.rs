//! `/api/projects`: projects, addressed by code; each owns a properties document.

mod create;
mod delete;
mod list;
mod record;
mod show;
mod update;

pub use create::{__path_create_project, create_project};
pub use delete::{__path_delete_project, delete_project};
pub use list::{__path_list_projects, list_projects};
pub use record::{project_id, select_project_id};
pub use show::{__path_show_project, show_project};
pub use update::{__path_update_project, update_project};
