//! Exit codes. A command that ran and did what was asked exits 0; a change followed to its end
//! exits with a code saying how the change ended, so scripts can tell a failed change from a
//! failed command. A command line clap cannot parse exits 2 (clap's usage error).

use std::process::ExitCode;

/// The command failed (the API refused, the network failed, a file was unreadable…).
pub const FAILURE: u8 = 1;
/// The followed change ended in `error`.
pub const CHANGE_ERROR: u8 = 3;
/// The followed change was `cancelled`.
pub const CHANGE_CANCELLED: u8 = 4;

/// The exit code of a change that ended with `status`.
pub fn for_change_status(status: &str) -> ExitCode {
    match status {
        "success" => ExitCode::SUCCESS,
        "error" => ExitCode::from(CHANGE_ERROR),
        "cancelled" => ExitCode::from(CHANGE_CANCELLED),
        _ => ExitCode::from(FAILURE),
    }
}
