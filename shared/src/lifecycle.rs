//! The change and step state machine (DESIGN §2, §3) as pure transitions: a status and an event
//! give the next status (and, for a change, the effects to write), or a refusal that says why.
//! Every writer of statuses goes through it — the planner, the runner's claim, the results role,
//! the reaper and the API's cancel, retry and continue — and conditional SQL updates take their
//! `WHERE status_code = ANY(…)` from [`StepEvent::sources`] / [`ChangeEvent::sources`], so the
//! database refuses what the table refuses. A final status never changes: no step is final twice.

use crate::domain::{ChangeStatus, StepStatus};
use crate::protocol::ExecutionStrategy;

/// What can happen to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepEvent {
    /// A step with a command is handed to the runners.
    Queue,
    /// A grouping step (no command) starts: its "command" succeeds at once, its children follow.
    /// A step resumed by a retry (its command succeeded before) starts the same way.
    Open,
    /// A wait step starts waiting for a continue request.
    Wait,
    /// A runner claimed an attempt.
    Claim,
    /// The step's command, and then every child, succeeded.
    Succeed,
    /// The step's command failed, or one of its children did.
    Fail,
    /// An attempt was lost to infrastructure and attempts remain: it runs again.
    Requeue,
    /// An attempt was lost to infrastructure and none remain.
    GiveUp,
    /// A user continued a waiting step.
    Continue,
    /// Another step of the change failed before this one started (or while it waited).
    Abort,
    /// The change was cancelled.
    Cancel,
}

impl StepEvent {
    pub const ALL: [StepEvent; 11] = [
        StepEvent::Queue,
        StepEvent::Open,
        StepEvent::Wait,
        StepEvent::Claim,
        StepEvent::Succeed,
        StepEvent::Fail,
        StepEvent::Requeue,
        StepEvent::GiveUp,
        StepEvent::Continue,
        StepEvent::Abort,
        StepEvent::Cancel,
    ];

    /// The statuses this event moves a step out of, for a conditional `UPDATE`.
    pub fn sources(self) -> Vec<&'static str> {
        STEP_STATUSES
            .into_iter()
            .filter(|s| step_transition(*s, self).is_ok())
            .map(StepStatus::as_str)
            .collect()
    }

    fn verb(self) -> &'static str {
        match self {
            StepEvent::Queue => "queue",
            StepEvent::Open => "open",
            StepEvent::Wait => "start waiting",
            StepEvent::Claim => "claim",
            StepEvent::Succeed => "succeed",
            StepEvent::Fail => "fail",
            StepEvent::Requeue => "run again",
            StepEvent::GiveUp => "give up",
            StepEvent::Continue => "continue",
            StepEvent::Abort => "abort",
            StepEvent::Cancel => "cancel",
        }
    }
}

/// Every step status, in the order of DESIGN §2.
pub const STEP_STATUSES: [StepStatus; 9] = [
    StepStatus::Pending,
    StepStatus::Queued,
    StepStatus::Running,
    StepStatus::Waiting,
    StepStatus::Success,
    StepStatus::Error,
    StepStatus::Aborted,
    StepStatus::Cancelled,
    StepStatus::SystemError,
];

/// Every change status.
pub const CHANGE_STATUSES: [ChangeStatus; 7] = [
    ChangeStatus::Initializing,
    ChangeStatus::Pending,
    ChangeStatus::Queued,
    ChangeStatus::Running,
    ChangeStatus::Success,
    ChangeStatus::Error,
    ChangeStatus::Cancelled,
];

/// A transition the state machine does not allow; its text is fit for a 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the step is {status}: it cannot {verb}", verb = event.verb())]
    Step {
        status: StepStatus,
        event: StepEvent,
    },
    #[error("the change is {status}: {why}", why = change_refusal(*status, *event))]
    Change {
        status: ChangeStatus,
        event: ChangeEvent,
    },
}

/// The status `event` moves a step in `status` to.
pub fn step_transition(status: StepStatus, event: StepEvent) -> Result<StepStatus, Refused> {
    use StepEvent as E;
    use StepStatus as S;
    let allowed = match event {
        E::Queue | E::Open | E::Wait => status == S::Pending,
        E::Abort => matches!(status, S::Pending | S::Waiting),
        E::Claim => status == S::Queued,
        E::Succeed | E::Fail | E::Requeue | E::GiveUp => status == S::Running,
        E::Continue => status == S::Waiting,
        E::Cancel => !status.is_final(),
    };
    match allowed {
        true => Ok(event.target()),
        false => Err(Refused::Step { status, event }),
    }
}

impl StepEvent {
    /// The status the event moves a step to (from any status it applies to).
    pub fn target(self) -> StepStatus {
        match self {
            StepEvent::Queue | StepEvent::Requeue => StepStatus::Queued,
            StepEvent::Open | StepEvent::Claim => StepStatus::Running,
            StepEvent::Wait => StepStatus::Waiting,
            StepEvent::Succeed | StepEvent::Continue => StepStatus::Success,
            StepEvent::Fail => StepStatus::Error,
            StepEvent::GiveUp => StepStatus::SystemError,
            StepEvent::Abort => StepStatus::Aborted,
            StepEvent::Cancel => StepStatus::Cancelled,
        }
    }
}

/// What can happen to a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeEvent {
    /// The planner read a valid plan; the change waits for its environment (FIFO).
    Plan,
    /// Its environment is free, or parallel changes are allowed: its root step may start.
    Queue,
    /// Its first step was claimed, or started waiting.
    Run,
    /// Its root step succeeded.
    Succeed,
    /// Its root step failed, or the planner found it cannot run.
    Fail,
    /// A user cancelled it.
    Cancel,
}

impl ChangeEvent {
    pub const ALL: [ChangeEvent; 6] = [
        ChangeEvent::Plan,
        ChangeEvent::Queue,
        ChangeEvent::Run,
        ChangeEvent::Succeed,
        ChangeEvent::Fail,
        ChangeEvent::Cancel,
    ];

    /// The statuses this event moves a change out of, for a conditional `UPDATE`.
    pub fn sources(self) -> Vec<&'static str> {
        CHANGE_STATUSES
            .into_iter()
            .filter(|s| change_transition(*s, self).is_ok())
            .map(ChangeStatus::as_str)
            .collect()
    }
}

fn change_refusal(status: ChangeStatus, event: ChangeEvent) -> &'static str {
    match (status.is_final(), event) {
        (true, ChangeEvent::Cancel) => "only a change that has not finished can be cancelled",
        (true, _) => "a finished change does not change any more",
        (false, ChangeEvent::Cancel) => "it cannot be cancelled",
        (false, _) => "this transition does not apply to it",
    }
}

/// What a change's transition must also write, beyond its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// Every still-`pending` step, and every step `waiting` for a continue, becomes `aborted`.
    pub abort_pending_steps: bool,
    /// Every non-final step becomes `cancelled`.
    pub cancel_steps: bool,
    /// The containers of its running steps are killed (by the workers holding their leases).
    pub stop_containers: bool,
    /// Its environment's lock is released: the next pending change may start.
    pub release_environment: bool,
    /// It is final: `finished_at` is set.
    pub finish: bool,
}

/// A change's next status and the effects to write with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeTransition {
    pub status: ChangeStatus,
    pub effects: Effects,
}

/// The status `event` moves a change in `status` to, with its effects.
pub fn change_transition(
    status: ChangeStatus,
    event: ChangeEvent,
) -> Result<ChangeTransition, Refused> {
    use ChangeEvent as E;
    use ChangeStatus as C;
    let allowed = match event {
        E::Plan => status == C::Initializing,
        E::Queue => matches!(status, C::Initializing | C::Pending),
        E::Run => status == C::Queued,
        E::Succeed => matches!(status, C::Queued | C::Running),
        E::Fail => matches!(status, C::Initializing | C::Queued | C::Running),
        E::Cancel => !status.is_final(),
    };
    match allowed {
        true => Ok(event.transition()),
        false => Err(Refused::Change { status, event }),
    }
}

impl ChangeEvent {
    /// The status the event moves a change to, and the effects to write with it (from any status
    /// it applies to).
    pub fn transition(self) -> ChangeTransition {
        let finished = Effects {
            release_environment: true,
            finish: true,
            ..Effects::default()
        };
        let (status, effects) = match self {
            ChangeEvent::Plan => (ChangeStatus::Pending, Effects::default()),
            ChangeEvent::Queue => (ChangeStatus::Queued, Effects::default()),
            ChangeEvent::Run => (ChangeStatus::Running, Effects::default()),
            ChangeEvent::Succeed => (ChangeStatus::Success, finished),
            ChangeEvent::Fail => (
                ChangeStatus::Error,
                Effects {
                    abort_pending_steps: true,
                    ..finished
                },
            ),
            ChangeEvent::Cancel => (
                ChangeStatus::Cancelled,
                Effects {
                    cancel_steps: true,
                    stop_containers: true,
                    ..finished
                },
            ),
        };
        ChangeTransition { status, effects }
    }
}

/// Whether a change in `status` may be retried: only one that ended in `error` or `cancelled`.
pub fn retryable(status: ChangeStatus) -> Result<(), String> {
    match status {
        ChangeStatus::Error | ChangeStatus::Cancelled => Ok(()),
        other => Err(format!(
            "the change is {other}: only a change that ended in error or was cancelled can be retried"
        )),
    }
}

/// What a parent step does when one of its children reached a final status (or it is resumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollUp {
    /// A child is still queued, running or waiting: nothing to do yet.
    Wait,
    /// Start these children (indices into the children, in position order).
    Start(Vec<usize>),
    /// The parent reaches this final status.
    Finish(StepStatus),
}

/// Decides a parent's next move from its children's statuses alone, so that deciding twice (a
/// duplicate message) decides the same: a sequential parent starts its first pending child only
/// when no other child is busy, a parallel one every pending child (only a retry leaves some),
/// and a parent fails once a child failed and none is still queued or running (DESIGN §3: running
/// siblings finish; a sibling that only waits for a continue would hold the failed change, and is
/// aborted with the change instead).
pub fn roll_up(strategy: ExecutionStrategy, children: &[StepStatus]) -> RollUp {
    let has = |wanted: &[StepStatus]| children.iter().any(|s| wanted.contains(s));
    if has(&[StepStatus::Queued, StepStatus::Running]) {
        return RollUp::Wait;
    }
    if children
        .iter()
        .any(|s| s.is_final() && *s != StepStatus::Success)
    {
        return RollUp::Finish(StepStatus::Error);
    }
    if has(&[StepStatus::Waiting]) {
        return RollUp::Wait;
    }
    let mut pending = children
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == StepStatus::Pending)
        .map(|(i, _)| i);
    match strategy {
        ExecutionStrategy::Sequential => match pending.next() {
            Some(first) => RollUp::Start(vec![first]),
            None => RollUp::Finish(StepStatus::Success),
        },
        ExecutionStrategy::Parallel => {
            let all: Vec<usize> = pending.collect();
            match all.is_empty() {
                true => RollUp::Finish(StepStatus::Success),
                false => RollUp::Start(all),
            }
        }
    }
}

/// What a retry makes of a step of the change it retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarryOver {
    /// It succeeded: copied as `success`, with its times (its whole subtree succeeded too).
    Copied,
    /// Its command succeeded (it has children) but a child did not: copied `pending` with its
    /// command done, so it resumes with its children instead of running its command again.
    Resumed,
    /// Everything else runs again: copied `pending`, without children or attempts.
    Rerun,
}

/// How a retry carries over a step in `status`; `has_children` tells whether its command had
/// succeeded (a step's children exist only from then on).
pub fn carry_over(status: StepStatus, has_children: bool) -> CarryOver {
    match (status, has_children) {
        (StepStatus::Success, _) => CarryOver::Copied,
        (_, true) => CarryOver::Resumed,
        (_, false) => CarryOver::Rerun,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step_event() -> impl Strategy<Value = StepEvent> {
        proptest::sample::select(StepEvent::ALL.to_vec())
    }

    fn change_event() -> impl Strategy<Value = ChangeEvent> {
        proptest::sample::select(ChangeEvent::ALL.to_vec())
    }

    fn step_status() -> impl Strategy<Value = StepStatus> {
        proptest::sample::select(STEP_STATUSES.to_vec())
    }

    fn strategy() -> impl Strategy<Value = ExecutionStrategy> {
        prop_oneof![
            Just(ExecutionStrategy::Sequential),
            Just(ExecutionStrategy::Parallel)
        ]
    }

    proptest! {
        /// Whatever happens to a step, once it is final nothing moves it again: it is final once.
        #[test]
        fn no_step_is_ever_final_twice(events in proptest::collection::vec(step_event(), 0..40)) {
            let mut status = StepStatus::Pending;
            let mut finals = 0;
            for event in events {
                match step_transition(status, event) {
                    Ok(next) => {
                        prop_assert!(!status.is_final(), "{status} moved to {next} on {event:?}");
                        if next.is_final() {
                            finals += 1;
                        }
                        status = next;
                    }
                    Err(refused) => prop_assert_eq!(refused, Refused::Step { status, event }),
                }
            }
            prop_assert!(finals <= 1);
            prop_assert_eq!(finals == 1, status.is_final());
        }

        /// A final change never changes, and a change is final only through an event that
        /// releases its environment and sets its finish time.
        #[test]
        fn a_final_change_never_changes(events in proptest::collection::vec(change_event(), 0..40)) {
            let mut status = ChangeStatus::Initializing;
            for event in events {
                if let Ok(t) = change_transition(status, event) {
                    prop_assert!(!status.is_final());
                    prop_assert_eq!(t.status.is_final(), t.effects.finish);
                    prop_assert_eq!(t.status.is_final(), t.effects.release_environment);
                    status = t.status;
                }
            }
            for event in ChangeEvent::ALL {
                if status.is_final() {
                    prop_assert!(change_transition(status, event).is_err());
                }
            }
        }

        /// The roll-up never starts a child while another is busy, starts only pending ones (one
        /// at a time when sequential), and succeeds only when every child succeeded.
        #[test]
        fn a_parent_rolls_up_from_its_childrens_statuses_alone(
            strategy in strategy(),
            children in proptest::collection::vec(step_status(), 0..8),
        ) {
            let running = children.iter().any(|s| matches!(s, StepStatus::Queued | StepStatus::Running));
            let waiting = children.contains(&StepStatus::Waiting);
            let failed = children.iter().any(|s| s.is_final() && *s != StepStatus::Success);
            let busy = running || waiting;
            match roll_up(strategy, &children) {
                RollUp::Wait => prop_assert!(running || (waiting && !failed)),
                RollUp::Start(indices) => {
                    prop_assert!(!busy);
                    prop_assert!(!indices.is_empty());
                    prop_assert!(indices.iter().all(|i| children[*i] == StepStatus::Pending));
                    if strategy == ExecutionStrategy::Sequential {
                        prop_assert_eq!(indices.len(), 1);
                        prop_assert!(children[..indices[0]].iter().all(|s| *s == StepStatus::Success));
                    }
                }
                RollUp::Finish(StepStatus::Success) => {
                    prop_assert!(children.iter().all(|s| *s == StepStatus::Success));
                }
                RollUp::Finish(other) => {
                    prop_assert_eq!(other, StepStatus::Error);
                    prop_assert!(!running && failed);
                }
            }
        }
    }

    #[test]
    fn the_sources_of_an_event_are_the_statuses_it_moves_out_of() {
        assert_eq!(StepEvent::Claim.sources(), ["queued"]);
        assert_eq!(StepEvent::Continue.sources(), ["waiting"]);
        assert_eq!(StepEvent::Abort.sources(), ["pending", "waiting"]);
        assert_eq!(
            StepEvent::Cancel.sources(),
            ["pending", "queued", "running", "waiting"]
        );
        assert_eq!(ChangeEvent::Queue.sources(), ["initializing", "pending"]);
        assert_eq!(
            ChangeEvent::Cancel.sources(),
            ["initializing", "pending", "queued", "running"]
        );
    }

    #[test]
    fn cancelling_stops_containers_cancels_steps_and_frees_the_environment() {
        let t = change_transition(ChangeStatus::Running, ChangeEvent::Cancel).unwrap();
        assert_eq!(t.status, ChangeStatus::Cancelled);
        assert!(t.effects.cancel_steps && t.effects.stop_containers);
        assert!(t.effects.release_environment && t.effects.finish);
        assert!(!t.effects.abort_pending_steps);
        let failed = change_transition(ChangeStatus::Running, ChangeEvent::Fail).unwrap();
        assert!(failed.effects.abort_pending_steps && !failed.effects.cancel_steps);
    }

    #[test]
    fn refusals_say_why() {
        let refused = change_transition(ChangeStatus::Success, ChangeEvent::Cancel).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the change is success: only a change that has not finished can be cancelled"
        );
        let refused = step_transition(StepStatus::Running, StepEvent::Continue).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the step is running: it cannot continue"
        );
        assert!(retryable(ChangeStatus::Running).is_err());
        assert!(retryable(ChangeStatus::Cancelled).is_ok());
    }

    #[test]
    fn a_sequential_parent_moves_to_its_next_pending_child_and_fails_at_the_first_failure() {
        use StepStatus::*;
        let seq = ExecutionStrategy::Sequential;
        assert_eq!(
            roll_up(seq, &[Success, Pending, Pending]),
            RollUp::Start(vec![1])
        );
        assert_eq!(roll_up(seq, &[Success, Queued, Pending]), RollUp::Wait);
        assert_eq!(roll_up(seq, &[Success, Waiting, Pending]), RollUp::Wait);
        assert_eq!(
            roll_up(seq, &[Success, Error, Pending]),
            RollUp::Finish(Error)
        );
        assert_eq!(roll_up(seq, &[Success, Success]), RollUp::Finish(Success));
        assert_eq!(roll_up(seq, &[]), RollUp::Finish(Success));
        let par = ExecutionStrategy::Parallel;
        assert_eq!(roll_up(par, &[Success, Running]), RollUp::Wait);
        assert_eq!(roll_up(par, &[Cancelled, Success]), RollUp::Finish(Error));
        // A failed group does not wait for a sibling that only waits for a continue.
        assert_eq!(roll_up(par, &[Waiting, Error]), RollUp::Finish(Error));
        assert_eq!(roll_up(par, &[Waiting, Success]), RollUp::Wait);
        assert_eq!(
            roll_up(par, &[Success, Pending, Pending]),
            RollUp::Start(vec![1, 2])
        );
    }

    #[test]
    fn a_retry_copies_successes_resumes_parents_and_reruns_the_rest() {
        assert_eq!(carry_over(StepStatus::Success, true), CarryOver::Copied);
        assert_eq!(carry_over(StepStatus::Error, true), CarryOver::Resumed);
        assert_eq!(carry_over(StepStatus::Cancelled, false), CarryOver::Rerun);
        assert_eq!(carry_over(StepStatus::SystemError, false), CarryOver::Rerun);
    }
}
