//! `/api/properties/{id}`: the encrypted, versioned properties of a project or an environment
//! (DESIGN §4 "User updates"), and their full history.

mod in_use;
mod record;
mod reserved;
mod show;
mod update;
mod version;
mod versions;

pub use show::show_properties;
pub use update::update_properties;
pub use version::show_version;
pub use versions::list_versions;
