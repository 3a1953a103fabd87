//! Crash points for the fault suite (RELIABILITY S3). A crash point is a `fail` fail point whose
//! action ends the process at once, as a `kill -9` there would:
//!
//! ```ignore
//! fail::fail_point!("runner::after_claim", |_| gantry_shared::crash::now("runner::after_claim"));
//! ```
//!
//! Without the `failpoints` feature (every build but `make reliability`'s worker) the macro expands
//! to nothing. With it, `FAILPOINTS="runner::after_claim=10%return"` arms the point in a process
//! that called [`arm_from_env`] (the worker's `main`): one pass in ten through it aborts.

/// Ends the process where it stands: no destructor, no flush, no graceful anything.
pub fn now(point: &str) -> ! {
    eprintln!("crash point {point} reached: aborting");
    std::process::abort()
}

/// Arms the crash points named in `FAILPOINTS`; the guard keeps them armed while it lives.
#[must_use]
pub fn arm_from_env() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}
