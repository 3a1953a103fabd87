//! Request shapes the handlers read through generic code ([`crate::body::EditRequest`] checks a
//! settings edit after parsing it as JSON), described here for the document.

use gantry_shared::project_settings::SettingsDocument;
use serde::Deserialize;
use utoipa::ToSchema;

/// A whole new settings document and, optionally, the version it was made against.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsEdit {
    pub data: SettingsDocument,
    #[schema(minimum = 1)]
    pub version: Option<i64>,
}

/// One operation of an RFC 6902 JSON Patch.
#[derive(Deserialize, ToSchema)]
pub struct PatchOperation {
    pub op: PatchOp,
    /// A JSON pointer (RFC 6901) to the member the operation acts on.
    pub path: String,
    /// The member to move or copy from (`move`, `copy`).
    pub from: Option<String>,
    /// The value to add, replace with or test for (`add`, `replace`, `test`).
    pub value: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

/// One Server-Sent Event of a followed log: a `log_line` (its `id` the line number, `data` the
/// line as JSON) or the final `end` (`data`: `{"status_code": …}`).
#[derive(Deserialize, ToSchema)]
pub struct LogEvent {
    pub event: LogEventKind,
    pub id: Option<String>,
    /// JSON text: a log line, or the change's final status.
    pub data: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogEventKind {
    LogLine,
    End,
}
