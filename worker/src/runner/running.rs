//! The steps this worker runs, by change, so that a cancelled change's containers are stopped by
//! the worker that runs them (DESIGN §3 cancel): a `stop_change_v1` broadcast reaches every
//! worker, and each stops the attempts it registered for that change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Default)]
pub struct RunningSteps(Mutex<HashMap<Uuid, (Uuid, CancellationToken)>>);

impl RunningSteps {
    /// Registers a step about to be claimed; its token is cancelled when its change is stopped.
    /// Registered before the claim, so a cancel committed after the claim always finds it.
    pub fn register(self: &Arc<Self>, change_id: Uuid, step_id: Uuid) -> Registration {
        let stop = CancellationToken::new();
        self.steps().insert(step_id, (change_id, stop.clone()));
        Registration {
            steps: self.clone(),
            step_id,
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

    fn steps(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Uuid, CancellationToken)>> {
        // Nothing panics while holding the lock; a poisoned map is still whole.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A registered step; dropping it forgets the step.
pub struct Registration {
    steps: Arc<RunningSteps>,
    step_id: Uuid,
    /// Cancelled when the step's change is stopped (or the step is found cancelled).
    pub stop: CancellationToken,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.steps.steps().remove(&self.step_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_a_change_stops_its_registered_steps_only_until_they_are_dropped() {
        let running = Arc::new(RunningSteps::default());
        let (change, other) = (Uuid::now_v7(), Uuid::now_v7());
        let a = running.register(change, Uuid::now_v7());
        let b = running.register(change, Uuid::now_v7());
        let c = running.register(other, Uuid::now_v7());
        drop(b);
        assert_eq!(running.stop_change(change), 1);
        assert!(a.stop.is_cancelled());
        assert!(!c.stop.is_cancelled());
        drop(a);
        assert_eq!(running.stop_change(change), 0);
    }
}
