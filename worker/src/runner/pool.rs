//! Parked step containers (issue 18): a container's start is most of its lifecycle (≈170 of
//! ≈210 ms here), so the worker creates and starts step containers before their steps are
//! claimed, and a claimed step takes one that waits already. A container is never shared: each
//! runs one step and is removed after it. Containers are interchangeable by [`Shape`] (image,
//! network and limits: the same hardening for any step of that shape).
//!
//! * A parked container runs `gantry-runner park`: nothing runs in it until its step's start line
//!   arrives on the stdin only this worker holds, written after the claim with the step's context
//!   already in its volume (`container::Parked::run`). When the worker dies its stdin closes and
//!   the runner exits (unused, or stopping the step it ran).
//! * After every take, the pool parks containers of that shape again, up to
//!   `worker.parked_containers` idle ones for the whole worker (0: every step waits for a
//!   container made for it). They are hardened and limited as any step container, and count
//!   against the worker's `concurrency` with its steps: a worker whose steps fill it parks
//!   nothing (its engine is busy with their containers; parking would only slow them down), one
//!   with room parks into it. A shape needed now evicts the least recently used shape's idle
//!   containers. Unused for `worker.parked_idle_seconds`, they are removed.
//! * A step that finds none ready waits for one already being made, or has one made: it never
//!   waits longer than a container made for it would take.
//! * On shutdown the idle containers are removed, and the ones still being made once they are.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gantry_shared::metrics::names;
use tokio::sync::oneshot;

use super::container::{self, Parked, Shape};
use crate::context::Ctx;

/// What a step waiting for a container gets: one, or why none could be made.
type Made = Result<Parked, String>;

#[derive(Default)]
pub struct ParkingPool {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    shapes: HashMap<String, Slot>,
    closed: bool,
}

struct Slot {
    shape: Shape,
    /// Parked and waiting, oldest first.
    ready: VecDeque<Parked>,
    /// Being made now.
    making: usize,
    /// Steps waiting for a container of this shape, first come first served.
    waiting: VecDeque<oneshot::Sender<Made>>,
    /// When a step last took one.
    used: Instant,
}

impl Slot {
    /// Containers ready or being made that no waiting step will take.
    fn spare(&self) -> usize {
        (self.ready.len() + self.making).saturating_sub(self.waiting.len())
    }
}

impl State {
    fn idle(&self) -> usize {
        self.shapes.values().map(Slot::spare).sum()
    }

    fn ready(&self) -> usize {
        self.shapes.values().map(|s| s.ready.len()).sum()
    }
}

impl ParkingPool {
    /// A container of `shape` for a claimed step: a parked one, else the first one made.
    pub async fn take(&self, ctx: &Ctx, shape: &Shape) -> Result<Parked, String> {
        let started = Instant::now();
        let key = shape.key();
        let (waiting, stale) = {
            let mut state = self.state();
            let slot = state.shapes.entry(key.clone()).or_insert_with(|| Slot {
                shape: shape.clone(),
                ready: VecDeque::new(),
                making: 0,
                waiting: VecDeque::new(),
                used: Instant::now(),
            });
            slot.used = Instant::now();
            let mut stale = Vec::new();
            let mut found = None;
            while let Some(mut parked) = slot.ready.pop_front() {
                if parked.waits() {
                    found = Some(parked);
                    break;
                }
                stale.push(parked);
            }
            let taken = match found {
                Some(parked) => (Ok(parked), stale),
                None => {
                    let (tx, rx) = oneshot::channel();
                    slot.waiting.push_back(tx);
                    if slot.making < slot.waiting.len() {
                        slot.making += 1;
                        spawn_make(ctx, key.clone(), shape.clone());
                    }
                    (Err(rx), stale)
                }
            };
            metrics::gauge!(names::PARKED_CONTAINERS).set(state.ready() as f64);
            taken
        };
        for parked in stale {
            tracing::warn!(container = %parked.name, "a parked container ended while it waited; removing it");
            tokio::spawn(parked.remove());
        }
        self.refill(ctx, &key);
        let taken = match waiting {
            Ok(parked) => {
                metrics::counter!(names::PARKED_TAKEN, "ready" => "yes").increment(1);
                Ok(parked)
            }
            Err(rx) => {
                metrics::counter!(names::PARKED_TAKEN, "ready" => "no").increment(1);
                rx.await
                    .unwrap_or_else(|_| Err("the worker is shutting down".to_owned()))
            }
        };
        metrics::histogram!(names::CONTAINER_SECONDS, "phase" => "take")
            .record(started.elapsed().as_secs_f64());
        taken
    }

    /// Parks containers of the shape of `key` until the worker's idle cap, evicting the least
    /// recently used other shapes' idle containers to make room, while the steps this worker
    /// runs and its idle containers leave room in its concurrency. After every take, and after
    /// every step of that shape (its slot was busy with the step until then).
    pub fn refill(&self, ctx: &Ctx, key: &str) {
        let cap = ctx.settings.worker.parked_containers;
        let room = ctx
            .settings
            .worker
            .concurrency
            .saturating_sub(ctx.running.count());
        let mut evicted = Vec::new();
        {
            let mut state = self.state();
            if state.closed {
                return;
            }
            loop {
                let Some(slot) = state.shapes.get(key) else {
                    return;
                };
                if slot.spare() >= cap || state.idle() >= room {
                    break;
                }
                if state.idle() >= cap {
                    // Room from the least recently used other shape with a ready container.
                    let victim = state
                        .shapes
                        .iter_mut()
                        .filter(|(k, s)| k.as_str() != key && !s.ready.is_empty())
                        .min_by_key(|(_, s)| s.used);
                    match victim {
                        Some((_, other)) => evicted.extend(other.ready.pop_front()),
                        None => break,
                    }
                    continue;
                }
                let slot = state.shapes.get_mut(key).expect("looked up above");
                slot.making += 1;
                spawn_make(ctx, key.to_owned(), slot.shape.clone());
            }
        }
        for parked in evicted {
            tokio::spawn(parked.remove());
        }
    }

    /// A container made for the shape of `key` (or why it could not be): to the first step still
    /// waiting, else parked (or removed, when the pool closed meanwhile).
    fn made(&self, key: &str, mut made: Made) {
        let mut state = self.state();
        let closed = state.closed;
        let Some(slot) = state.shapes.get_mut(key) else {
            drop(state);
            if let Ok(parked) = made {
                tokio::spawn(parked.remove());
            }
            return;
        };
        slot.making -= 1;
        while let Some(step) = slot.waiting.pop_front() {
            match step.send(made) {
                Ok(()) => return,
                // That step stopped waiting (its change was cancelled): the next one, if any.
                Err(back) => made = back,
            }
        }
        match made {
            Ok(parked) if !closed => {
                slot.ready.push_back(parked);
                metrics::gauge!(names::PARKED_CONTAINERS).set(state.ready() as f64);
            }
            Ok(parked) => {
                drop(state);
                tokio::spawn(parked.remove());
            }
            Err(e) => tracing::warn!(error = %e, "parking a step container failed"),
        }
    }

    /// Removes the idle containers of shapes no step took for `idle`; returns how many.
    pub async fn expire(&self, idle: Duration) -> usize {
        let expired: Vec<Parked> = {
            let mut state = self.state();
            let mut expired = Vec::new();
            state.shapes.retain(|_, slot| {
                if slot.used.elapsed() < idle {
                    return true;
                }
                expired.extend(slot.ready.drain(..));
                slot.making > 0 || !slot.waiting.is_empty()
            });
            metrics::gauge!(names::PARKED_CONTAINERS).set(state.ready() as f64);
            expired
        };
        let n = expired.len();
        futures_util::future::join_all(expired.into_iter().map(Parked::remove)).await;
        n
    }

    /// Removes every idle container and, waiting up to `wait`, the ones still being made; later
    /// takes are answered with an error. For the worker's shutdown.
    pub async fn close(&self, wait: Duration) {
        let idle: Vec<Parked> = {
            let mut state = self.state();
            state.closed = true;
            state
                .shapes
                .values_mut()
                .flat_map(|slot| slot.ready.drain(..))
                .collect()
        };
        futures_util::future::join_all(idle.into_iter().map(Parked::remove)).await;
        let deadline = Instant::now() + wait;
        while self.state().shapes.values().any(|s| s.making > 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        metrics::gauge!(names::PARKED_CONTAINERS).set(0.0);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn spawn_make(ctx: &Ctx, key: String, shape: Shape) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let made = match ctx.docker.as_ref() {
            Some(docker) => container::park(docker, &ctx.settings.worker, &shape, &ctx.worker_id)
                .await
                .map_err(|e| format!("Docker failed starting a step container: {e}")),
            None => Err("this worker has no Docker engine".to_owned()),
        };
        ctx.parking.made(&key, made);
    });
}

/// Removes idle containers unused for `worker.parked_idle_seconds`, until `shutdown`.
pub async fn run_expiry(ctx: Ctx, shutdown: tokio_util::sync::CancellationToken) {
    let idle = Duration::from_secs(ctx.settings.worker.parked_idle_seconds.max(1));
    let period = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let n = ctx.parking.expire(idle).await;
        if n > 0 {
            tracing::debug!(containers = n, "removed parked containers no step took");
        }
    }
}
