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

pub use create::{__path_create_git_remote, create_git_remote};
pub use delete::{__path_delete_git_remote, delete_git_remote};
pub use list::{__path_list_git_remotes, list_git_remotes};
pub use show::{__path_show_git_remote, show_git_remote};
pub use update::{__path_update_git_remote, update_git_remote};
