//! Progress on stderr while a scenario runs; nothing is drawn when stderr is not a terminal, so
//! logs and CI output stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar counting `len` items of the named phase.
pub fn bar(len: u64, phase: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("a valid template"),
    );
    bar.set_prefix(phase.to_owned());
    bar
}

/// A spinner for a phase of unknown length (waiting for work to finish).
pub fn spinner(phase: &str, message: &str) -> ProgressBar {
    let spinner = ProgressBar::with_draw_target(None, target());
    spinner.set_style(
        ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {spinner} {msg}")
            .expect("a valid template"),
    );
    spinner.set_prefix(phase.to_owned());
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner
}
