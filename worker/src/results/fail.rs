//! Failing a step from the results role. The reason may quote what the step controls — values
//! and names in its result, the documents its patches touch — so every line is masked with the
//! step's secrets before it is stored (DESIGN §4: secret values are masked in every log). The
//! secrets are read here only, and only for a failure whose lines quote the step — never on the
//! success path, nor for a plain non-zero exit.

use std::borrow::Cow;

use deadpool_postgres::GenericClient;
use gantry_shared::crypto::Cipher;
use gantry_shared::lifecycle::StepEvent;
use gantry_shared::logs::TxLog;
use gantry_shared::secrets::{SecretError, StepSecrets};
use gantry_shared::store::{self, StoreError};
use gantry_shared::transitions::Record;
use uuid::Uuid;

use super::orchestrate::{self, Work};
use super::rows::StepRow;
use crate::mask::Masker;

/// A line of the reason a step fails with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Composed by Gantry from its own state, or already masked by the runner role (the
    /// outcome's `error`): safe to show even when the step's secrets cannot be read.
    Gantry(String),
    /// Quotes what the step controls: stored only masked.
    Step(String),
}

impl Reason {
    fn text(&self) -> &str {
        match self {
            Reason::Gantry(line) | Reason::Step(line) => line,
        }
    }
}

/// Logs `reasons` and ends the step in `error` with `exit_code`; `properties_ids` (the
/// change's project and environment documents) name the secrets that mask what the step wrote.
pub async fn fail(
    client: &impl GenericClient,
    log: &TxLog,
    cipher: &Cipher,
    step: &StepRow,
    exit_code: Option<i64>,
    reasons: &[Reason],
    properties_ids: (Uuid, Uuid),
) -> anyhow::Result<Vec<Work>> {
    // Gantry's own lines need no masking: the secrets are read only when a line quotes the step.
    let quotes_step = reasons.iter().any(|r| matches!(r, Reason::Step(_)));
    let lines = match quotes_step {
        true => Masking::for_change(client, cipher, properties_ids)
            .await?
            .lines(reasons),
        false => reasons.iter().map(|r| Cow::Borrowed(r.text())).collect(),
    };
    let lines: Vec<&str> = lines.iter().map(|l| l.as_ref()).collect();
    log.push(step.change_id, Some(step.id), &lines);
    let record = Record {
        command_finished: true,
        exit_code: Some(exit_code.map(|c| c as i32)),
        properties: None,
    };
    let status = orchestrate::transition(client, log, step, StepEvent::Fail, record).await?;
    log.push(
        step.change_id,
        Some(step.id),
        &[&orchestrate::finished_line(&step.name)],
    );
    Ok(vec![orchestrate::completed(step, status)])
}

/// How a failure's lines are made safe to store.
#[derive(Debug)]
enum Masking {
    /// The step's secrets, masked wherever they occur.
    Secrets(Masker),
    /// The secrets cannot be read (a stored document or secret fails authentication, a secret list
    /// is invalid, a named secret was deleted since the claim), so nothing can mask them. The
    /// lines quoting the step are replaced by one notice giving this reason, which names no value:
    /// stored unmasked, or masked with only some of the secrets, they could show one. Gantry's own
    /// lines are kept.
    Withheld(String),
}

impl Masking {
    /// Reads the secrets named by the change's current project and environment properties (the
    /// documents `properties_ids`). Database errors are returned (the message is retried);
    /// anything else is permanent.
    async fn for_change(
        client: &impl GenericClient,
        cipher: &Cipher,
        (project_id, environment_id): (Uuid, Uuid),
    ) -> anyhow::Result<Self> {
        let mut documents = Vec::with_capacity(2);
        for id in [project_id, environment_id] {
            match store::load(client, cipher, id, false).await {
                Ok(level) => documents.push(level.document),
                Err(StoreError::Db(e)) => return Err(e.into()),
                Err(e) => return Ok(Masking::Withheld(e.to_string())),
            }
        }
        Ok(
            match StepSecrets::for_step(client, cipher, &documents[0], &documents[1]).await {
                Ok(Ok(secrets)) => Masking::Secrets(Masker::new(secrets.values())),
                Ok(Err(reason)) => Masking::Withheld(reason),
                Err(SecretError::Db(e)) => return Err(e.into()),
                Err(e) => Masking::Withheld(e.to_string()),
            },
        )
    }

    fn lines<'a>(&self, reasons: &'a [Reason]) -> Vec<Cow<'a, str>> {
        match self {
            Masking::Secrets(masker) => reasons.iter().map(|r| masker.mask(r.text())).collect(),
            Masking::Withheld(why) => {
                let mut lines = Vec::with_capacity(reasons.len());
                let mut withheld = false;
                for reason in reasons {
                    match reason {
                        Reason::Gantry(line) => lines.push(Cow::Borrowed(line.as_str())),
                        Reason::Step(_) if !withheld => {
                            withheld = true;
                            lines.push(Cow::Owned(format!(
                                "The details of this failure are withheld: they may contain secret values, and the step's secrets, needed to mask them, cannot be read ({why})"
                            )));
                        }
                        Reason::Step(_) => {}
                    }
                }
                lines
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "GSK_QM4TZR9WXB2LPV7NHC";

    #[test]
    fn every_line_is_masked_with_the_step_secrets() {
        let reasons = [
            Reason::Gantry(format!("Attempt 1 failed ({SECRET})")),
            Reason::Step(format!("The step added the child action \"{SECRET}\"")),
        ];
        let lines = Masking::Secrets(Masker::new([SECRET])).lines(&reasons);
        assert_eq!(
            lines,
            [
                "Attempt 1 failed (********)",
                "The step added the child action \"********\""
            ]
        );
    }

    #[test]
    fn without_the_secrets_the_step_lines_are_withheld_behind_one_notice() {
        let reasons = [
            Reason::Step(format!("The step added the child action \"{SECRET}\"")),
            Reason::Gantry("The step's updates to the project properties cannot be applied".into()),
            Reason::Step(format!("conflict on {SECRET}")),
        ];
        let why = "secret \"api\" could not be decrypted: the ciphertext is malformed";
        let lines = Masking::Withheld(why.into()).lines(&reasons);
        assert_eq!(
            lines,
            [
                format!(
                    "The details of this failure are withheld: they may contain secret values, and the step's secrets, needed to mask them, cannot be read ({why})"
                ),
                "The step's updates to the project properties cannot be applied".to_owned(),
            ]
        );
    }
}
