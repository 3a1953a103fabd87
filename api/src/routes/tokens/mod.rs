//! `/api/tokens`: API tokens, each with a role (viewer, operator, admin) on one project or on
//! every project. The token itself is shown once, when it is made; only its SHA-256 digest is
//! stored. An admin of every project manages every token; an admin of one project manages that
//! project's tokens; nobody else sees any.

mod create;
mod list;
mod record;
mod revoke;

pub use create::{__path_create_token, create_token};
pub use list::{__path_list_tokens, list_tokens};
pub use revoke::{__path_revoke_token, revoke_token};
