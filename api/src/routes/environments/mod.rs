//! `/api/projects/{project}/environments`: environments, addressed by code within their project;
//! each owns a properties document.

mod create;
mod delete;
mod list;
mod record;
mod show;
mod update;

pub use create::create_environment;
pub use delete::delete_environment;
pub use list::list_environments;
pub use show::show_environment;
pub use update::update_environment;
