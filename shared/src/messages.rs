//! Wire messages (DESIGN §7): versioned, tagged JSON, defined once. Queue names and routing keys
//! are constants here; the exchange and queue names get the configured prefix (see `amqp`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The direct exchange every message is published to.
pub const EXCHANGE: &str = "gantry";
/// Where messages that exceeded their delivery limit go.
pub const DEAD_LETTER_EXCHANGE: &str = "gantry.dlx";

/// The three work queues; the routing key of each is its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    Changes,
    Steps,
    Results,
}

impl Queue {
    pub const ALL: [Queue; 3] = [Queue::Changes, Queue::Steps, Queue::Results];

    pub fn name(self) -> &'static str {
        match self {
            Queue::Changes => "gantry.changes",
            Queue::Steps => "gantry.steps",
            Queue::Results => "gantry.results",
        }
    }
}

/// Every message Gantry publishes. Consumers reject unknown or malformed messages (they are
/// dead-lettered), so a new variant needs a new tag, never a changed meaning of an old one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A change was created: resolve its commit, read the manifest, plan the root step.
    PlanChangeV1 { change_id: Uuid },
    /// A step is queued: claim it and run its container.
    RunStepV1 { change_id: Uuid, step_id: Uuid },
    /// A step attempt finished: apply its outcome.
    StepResultV1(StepOutcome),
}

impl Message {
    pub fn queue(&self) -> Queue {
        match self {
            Message::PlanChangeV1 { .. } => Queue::Changes,
            Message::RunStepV1 { .. } => Queue::Steps,
            Message::StepResultV1(_) => Queue::Results,
        }
    }
}

/// What the runner role observed about one attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub change_id: Uuid,
    pub step_id: Uuid,
    /// Fences stale attempts: a result whose attempt is not the step's current one is dropped.
    pub attempt: i32,
    pub exit_code: Option<i64>,
    /// The parsed `step_result.json` when the container exited 0 and the file was valid.
    pub result: Option<serde_json::Value>,
    /// Why the attempt failed, when it did (shown in the step log).
    pub error: Option<String>,
    /// The failure was Gantry's infrastructure (Docker, Git, storage), not the action: the step is
    /// retried up to the attempt budget, then `system_error`.
    #[serde(default)]
    pub system: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_with_a_versioned_type() {
        let id = Uuid::nil();
        let json = serde_json::to_value(Message::PlanChangeV1 { change_id: id }).unwrap();
        assert_eq!(json["type"], "plan_change_v1");
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back.queue(), Queue::Changes);
    }

    #[test]
    fn an_unknown_type_does_not_parse() {
        assert!(
            serde_json::from_str::<Message>(r#"{"type":"plan_change_v9","change_id":null}"#)
                .is_err()
        );
    }
}
