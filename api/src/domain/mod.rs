//! Validated values of request bodies ("parse, don't validate"): once a handler holds one of
//! these, the value is known to be acceptable and SQL never sees anything else. Project and
//! environment codes are `gantry_shared::domain::Code`.

mod action;
mod git_rev;
mod remote_name;
mod remote_url;
mod text;

pub use action::ActionName;
pub use git_rev::GitRev;
pub use remote_name::RemoteName;
pub use remote_url::RemoteUrl;
pub use text::{Description, Invalid, Name, Secret, UserName};
