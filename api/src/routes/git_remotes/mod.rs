//! `/api/projects/{project}/git_remotes`: where a project's repository is fetched from. Passwords
//! and SSH keys are stored encrypted (bound to their remote and column) and never shown: a set
//! credential reads `{{hidden}}`.

mod create;
mod credentials;
mod delete;
mod list;
mod record;
mod show;
mod update;

pub use create::create_git_remote;
pub use delete::delete_git_remote;
pub use list::list_git_remotes;
pub use show::show_git_remote;
pub use update::update_git_remote;
