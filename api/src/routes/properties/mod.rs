//! `/api/properties/{id}`: the encrypted, versioned properties of a project or an environment
//! (DESIGN §4 "User updates"), and their full history.

mod in_use;
mod record;
mod reserved;
mod show;
mod update;
mod version;
mod versions;

pub use show::{__path_show_properties, show_properties};
pub use update::{__path_update_properties, update_properties};
pub use version::{__path_show_version, show_version};
pub use versions::{__path_list_versions, list_versions};
