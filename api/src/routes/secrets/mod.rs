//! `/api/secrets`: the server-side secret store (DESIGN §4, §6). A secret is a named map of
//! variable names to values, sealed at rest and bound to its name; values are write-only, so
//! every response shows the keys and never a value.

mod delete;
mod list;
mod put;
mod record;
mod show;

pub use delete::{__path_delete_secret, delete_secret};
pub use list::{__path_list_secrets, list_secrets};
pub use put::{__path_put_secret, put_secret};
pub use show::{__path_show_secret, show_secret};
