//! Following a log live (`GET …/log_lines?follow=true`, DESIGN §6): the stored lines as
//! Server-Sent Events, each exactly once and in order, until the change (or step) is final.
//!
//! Lines are numbered per change (`seq`) in commit order (see `gantry_shared::logs`), so a
//! follower only tracks the number up to which it has seen the change's log. It first reads what
//! it has not seen (from the start, or after its `Last-Event-ID`), then takes the pages its
//! change's shared feed reads (see [`hub`]); a page that does not start where it stands (it fell
//! behind, or the feed started later) sends it back to the database for the gap. It ends after a
//! page read with the change final and no step held by a runner (the last lines of a cancelled
//! step are written before its runner lets go).
//!
//! The cost does not grow with followers times lines: a wake-up costs one query per followed
//! change, whatever the number of its followers; each follower costs a query when it starts and
//! when it falls behind.

pub mod hub;
mod sse;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use gantry_shared::domain::ChangeStatus;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub use hub::LogHub;
pub use sse::{Scope, follow};

/// A stored log line as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogLine {
    #[serde(skip)]
    pub id: i64,
    pub seq: i64,
    pub step_id: Option<Uuid>,
    pub logged_at: DateTime<Utc>,
    pub stream: String,
    pub text: String,
}

/// Lines of a change after `from`, up to `to`, read with the change's state.
#[derive(Debug)]
pub struct Page {
    pub from: i64,
    /// Every line of the change up to this number was considered (for a step, the others were
    /// skipped).
    pub to: i64,
    pub lines: Vec<LogLine>,
    /// The snapshot held no line beyond `to`.
    pub complete: bool,
    /// The change is final and no runner holds one of its steps: no line will follow.
    pub change_done: Option<ChangeStatus>,
    /// Steps that are final and held by no runner, with their status.
    pub done_steps: HashMap<Uuid, String>,
    /// The change does not exist (any more).
    pub gone: bool,
}

impl Page {
    fn gone(after: i64) -> Self {
        Self {
            from: after,
            to: after,
            lines: Vec::new(),
            complete: true,
            change_done: None,
            done_steps: HashMap::new(),
            gone: true,
        }
    }
}
