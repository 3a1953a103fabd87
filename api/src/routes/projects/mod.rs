//! `/api/projects`: projects, addressed by code; each owns a properties document.

mod create;
mod delete;
mod list;
mod record;
mod show;
mod update;

pub use create::create_project;
pub use delete::delete_project;
pub use list::list_projects;
pub use record::project_id;
pub use show::show_project;
pub use update::update_project;
