//! `/api/projects/{project}/environments`: environments, addressed by code within their project;
//! each owns a properties document.

mod create;
mod delete;
mod list;
mod record;
mod show;
mod update;

pub use create::{__path_create_environment, create_environment};
pub use delete::{__path_delete_environment, delete_environment};
pub use list::{__path_list_environments, list_environments};
pub use show::{__path_show_environment, show_environment};
pub use update::{__path_update_environment, update_environment};
