//! Wire messages (DESIGN §7): versioned, tagged JSON, defined once. Queue names and routing keys
//! are constants here; the exchange and queue names get the configured prefix (see `amqp`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crypto::{Cipher, CryptoError, step_result_aad};

/// The direct exchange every message is published to.
pub const EXCHANGE: &str = "gantry";
/// Where messages that exceeded their delivery limit go.
pub const DEAD_LETTER_EXCHANGE: &str = "gantry.dlx";
/// The fanout exchange of broadcasts: every worker binds a queue of its own to it.
pub const CONTROL_EXCHANGE: &str = "gantry.control";

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
    /// Changes were created together (the api's group commit, see `PLAN_CHANGES_SQL`): plan
    /// each, as `plan_change_v1` would.
    PlanChangesV1 { change_ids: Vec<Uuid> },
    /// A step is queued: claim it and run its container.
    RunStepV1 { change_id: Uuid, step_id: Uuid },
    /// A step attempt finished: apply its outcome.
    StepResultV1(StepOutcome),
    /// A step reached a final status outside the results role (a wait step was continued): roll
    /// its parent or the change up.
    RollUpV1 { change_id: Uuid, step_id: Uuid },
    /// A change left its environment (it was cancelled): start what may start there now.
    StartNextChangesV1 { environment_id: Uuid },
    /// Broadcast: a change was cancelled; whichever worker runs one of its steps kills the
    /// container and drops the attempt.
    StopChangeV1 { change_id: Uuid },
}

/// The SQL expression of a `plan_changes_v1` payload for the change ids of the column `id` of
/// the rows it aggregates, for a statement that creates the changes and the message at once (the
/// api's group commit): the JSON `Message::PlanChangesV1` serialises to, as outbox bytes.
pub const PLAN_CHANGES_SQL: &str = "convert_to(json_build_object('type', 'plan_changes_v1', \
     'change_ids', json_agg(id ORDER BY id))::text, 'UTF8')";

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To one consumer of a work queue, through the direct exchange (persistent, `mandatory`).
    Queue(Queue),
    /// To every worker, through [`CONTROL_EXCHANGE`]: only for what a worker that is not there
    /// has no use for (its containers are gone with it).
    Broadcast,
}

impl Message {
    pub fn route(&self) -> Route {
        match self {
            Message::PlanChangeV1 { .. }
            | Message::PlanChangesV1 { .. }
            | Message::StartNextChangesV1 { .. } => Route::Queue(Queue::Changes),
            Message::RunStepV1 { .. } => Route::Queue(Queue::Steps),
            Message::StepResultV1(_) | Message::RollUpV1 { .. } => Route::Queue(Queue::Results),
            Message::StopChangeV1 { .. } => Route::Broadcast,
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
    /// The parsed `step_result.json` when the container exited 0 and the file was valid, sealed.
    pub sealed_result: Option<SealedResult>,
    /// Why the attempt failed, when it did (shown in the step log).
    pub error: Option<String>,
    /// The failure was Gantry's infrastructure (Docker, Git, storage), not the action: the step is
    /// retried up to the attempt budget, then `system_error`.
    #[serde(default)]
    pub system: bool,
}

/// A `step_result.json` sealed by the runner role for the results role. It carries property
/// values (the patches, the merged properties), which must not lie in plain text in the outbox or
/// the results queue (RELIABILITY I6); it is bound to its step and attempt, so a result altered on
/// the way, or moved to another step or attempt, does not open. On the wire: the base64 of a
/// [`crate::crypto`] envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedResult(String);

impl SealedResult {
    pub fn seal(cipher: &Cipher, step_id: Uuid, attempt: i32, result: &serde_json::Value) -> Self {
        let envelope = cipher.encrypt_json(result, &step_result_aad(step_id, attempt));
        Self(STANDARD.encode(envelope))
    }

    /// The result sealed for `attempt` of `step_id`, if it is that and unaltered.
    pub fn open(
        &self,
        cipher: &Cipher,
        step_id: Uuid,
        attempt: i32,
    ) -> Result<serde_json::Value, CryptoError> {
        let envelope = STANDARD
            .decode(&self.0)
            .map_err(|_| CryptoError::Malformed)?;
        cipher.decrypt_json(&envelope, &step_result_aad(step_id, attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::EncryptionSettings;
    use secrecy::SecretString;
    use serde_json::json;

    fn cipher() -> Cipher {
        Cipher::from_settings(&EncryptionSettings {
            key_id: "k1".into(),
            key: SecretString::from(STANDARD.encode([7u8; 32])),
            previous_keys: Default::default(),
        })
        .unwrap()
    }

    fn outcome(sealed_result: Option<SealedResult>) -> Message {
        Message::StepResultV1(StepOutcome {
            change_id: Uuid::nil(),
            step_id: Uuid::nil(),
            attempt: 1,
            exit_code: Some(0),
            sealed_result,
            error: None,
            system: false,
        })
    }

    #[test]
    fn a_sealed_result_travels_without_its_values_and_opens_for_its_attempt() {
        let (cipher, step_id) = (cipher(), Uuid::now_v7());
        let result = json!({"project": {"properties_diff": [
            {"op": "add", "path": "/token", "value": "canary-value-4711"}]}});
        let sealed = SealedResult::seal(&cipher, step_id, 2, &result);
        let wire = serde_json::to_string(&outcome(Some(sealed.clone()))).unwrap();

        assert!(!wire.contains("canary"), "plaintext on the wire: {wire}");
        let envelope = STANDARD.decode(&sealed.0).unwrap();
        assert!(
            !envelope.windows(6).any(|w| w == b"canary"),
            "plaintext under the base64"
        );
        let back: Message = serde_json::from_str(&wire).unwrap();
        let Message::StepResultV1(back) = back else {
            panic!("not a step result: {back:?}")
        };
        assert_eq!(back.sealed_result.as_ref(), Some(&sealed));
        assert_eq!(sealed.open(&cipher, step_id, 2).unwrap(), result);
    }

    #[test]
    fn a_sealed_result_does_not_open_for_another_attempt_or_step_or_when_altered() {
        let (cipher, step_id) = (cipher(), Uuid::now_v7());
        let sealed = SealedResult::seal(&cipher, step_id, 1, &json!({"a": 1}));
        let tampered = |e| matches!(e, Err(CryptoError::Tampered));

        assert!(tampered(sealed.open(&cipher, step_id, 2)));
        assert!(tampered(sealed.open(&cipher, Uuid::now_v7(), 1)));
        let mut envelope = STANDARD.decode(&sealed.0).unwrap();
        let last = envelope.len() - 1;
        envelope[last] ^= 1;
        let altered = SealedResult(STANDARD.encode(envelope));
        assert!(tampered(altered.open(&cipher, step_id, 1)));
        assert!(matches!(
            SealedResult("not base64!".into()).open(&cipher, step_id, 1),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn messages_are_tagged_with_a_versioned_type() {
        let id = Uuid::nil();
        let json = serde_json::to_value(Message::PlanChangeV1 { change_id: id }).unwrap();
        assert_eq!(json["type"], "plan_change_v1");
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back.route(), Route::Queue(Queue::Changes));
        let stop = Message::StopChangeV1 { change_id: id };
        assert_eq!(
            serde_json::to_value(&stop).unwrap()["type"],
            "stop_change_v1"
        );
        assert_eq!(stop.route(), Route::Broadcast);
    }

    #[test]
    fn an_unknown_type_does_not_parse() {
        assert!(
            serde_json::from_str::<Message>(r#"{"type":"plan_change_v9","change_id":null}"#)
                .is_err()
        );
    }
}
