//! Group commit: requests that arrive while earlier ones are being written are written together,
//! in the next batch. A lone request is written at once, as a batch of one; under load the
//! batches grow by themselves, and each costs one statement and one commit instead of one per
//! request. The api's change creations and the planner's plans are written this way.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// Writes what `requests` receives in batches of at most `max`, at most `slots` batches at once:
/// whenever a slot is free, a batch of everything that arrived meanwhile is handed to `write` in
/// a task of its own. Returns once every sender is dropped and the last batch is written.
pub async fn run<T, W, F>(
    mut requests: mpsc::UnboundedReceiver<T>,
    max: usize,
    slots: usize,
    write: W,
) where
    T: Send + 'static,
    W: Fn(Vec<T>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(slots.max(1)));
    let mut batches = JoinSet::new();
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let Some(first) = requests.recv().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let written = write(batch);
        batches.spawn(async move {
            written.await;
            drop(slot);
        });
        // Reaps the finished ones as it goes.
        while batches.try_join_next().is_some() {}
    }
    while batches.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// While the only slot is taken, what arrives waits, and goes in one batch (cut at `max`);
    /// nothing is lost or written twice.
    #[tokio::test]
    async fn requests_arriving_while_a_batch_is_written_form_the_next_one() {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (release, released) = tokio::sync::watch::channel(false);
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let writing = tokio::spawn(run(receiver, 3, 1, move |batch: Vec<u32>| {
            let seen = seen.clone();
            let mut released = released.clone();
            async move {
                // The first batch waits until the rest has arrived.
                if batch == [0] {
                    released.wait_for(|r| *r).await.unwrap();
                }
                seen.lock().unwrap().push(batch);
            }
        }));
        sender.send(0).unwrap();
        tokio::task::yield_now().await;
        for i in 1..=5 {
            sender.send(i).unwrap();
        }
        release.send(true).unwrap();
        drop(sender);
        writing.await.unwrap();
        let batches = batches.lock().unwrap().clone();
        assert_eq!(batches, [vec![0], vec![1, 2, 3], vec![4, 5]]);
    }
}
