//! The steps this worker runs, by change, so that a cancelled change's containers are stopped by
//! the worker that runs them (DESIGN §3 cancel): a `stop_change_v1` broadcast reaches every
//! worker, and each stops the attempts it registered for that change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The registered attempts by registration, with their change. Keyed by registration, not by
/// step: a duplicate message for a step this worker runs registers it a second time, and its
/// failed claim must not unregister the attempt that runs.
#[derive(Default)]
pub struct RunningSteps {
    steps: Mutex<HashMap<u64, (Uuid, CancellationToken)>>,
    next: AtomicU64,
    /// Cancelled when this worker, shutting down, hands its running steps back.
    handing_back: CancellationToken,
}

impl RunningSteps {
    /// Registers a step of `change_id` about to be claimed; its token is cancelled when the
    /// change is stopped. Registered before the claim, so a cancel committed after the claim
    /// always finds it.
    pub fn register(self: &Arc<Self>, change_id: Uuid) -> Registration {
        let stop = CancellationToken::new();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.steps().insert(id, (change_id, stop.clone()));
        Registration {
            steps: self.clone(),
            id,
            stop,
        }
    }

    /// Stops every registered step of the change; returns how many there were.
    pub fn stop_change(&self, change_id: Uuid) -> usize {
        let steps = self.steps();
        let mut stopped = 0;
        for (change, stop) in steps.values() {
            if *change == change_id {
                stop.cancel();
                stopped += 1;
            }
        }
        stopped
    }

    /// Stops every registered step so it is handed back (queued again for another worker): the
    /// end of a shutdown's grace period. Returns how many there were.
    pub fn hand_back_all(&self) -> usize {
        self.handing_back.cancel();
        let steps = self.steps();
        for (_, stop) in steps.values() {
            stop.cancel();
        }
        steps.len()
    }

    /// The steps registered now (running, or about to be claimed): the load a worker reports.
    pub fn count(&self) -> usize {
        self.steps().len()
    }

    /// Whether a stopped step is to be handed back rather than left cancelled.
    pub fn handing_back(&self) -> bool {
        self.handing_back.is_cancelled()
    }

    fn steps(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Uuid, CancellationToken)>> {
        // Nothing panics while holding the lock; a poisoned map is still whole.
        self.steps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A registered step; dropping it forgets the step.
pub struct Registration {
    steps: Arc<RunningSteps>,
    id: u64,
    /// Cancelled when the step's change is stopped (or the step is found cancelled).
    pub stop: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.steps.steps().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_a_change_stops_its_registered_steps_only_until_they_are_dropped() {
        let running = Arc::new(RunningSteps::default());
        let (change, other) = (Uuid::now_v7(), Uuid::now_v7());
        let a = running.register(change);
        // A duplicate message for the same step, whose claim fails: `a` stays registered.
        let duplicate = running.register(change);
        let c = running.register(other);
        drop(duplicate);
        assert_eq!(running.stop_change(change), 1);
        assert!(a.stop.is_cancelled());
        assert!(!c.stop.is_cancelled());
        drop(a);
        assert_eq!(running.stop_change(change), 0);
    }
}
