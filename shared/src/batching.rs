//! Group commit: requests that arrive while earlier ones are being written are written together,
//! in the next batch. A lone request is written at once, as a batch of one; under load the
//! batches grow by themselves, and each costs one statement and one commit instead of one per
//! request. The api's change creations, the planner's plans and the results role's step outcomes
//! are written this way: requesters hand their items to a [`Sender`] and wait for their answers.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

/// A request of a batching loop: what to write (reachable through `Deref`) and where its
/// answer goes.
pub struct Request<T, R> {
    item: T,
    done: oneshot::Sender<R>,
}

impl<T, R> Request<T, R> {
    /// A request for `item`, and where its answer arrives (what [`Sender::send`] waits on).
    pub fn new(item: T) -> (Self, oneshot::Receiver<R>) {
        let (done, answer) = oneshot::channel();
        (Self { item, done }, answer)
    }

    /// Answers the request. A requester that stopped waiting (its task was dropped) is not told:
    /// what it asked for is asked again, or found done, when its work is delivered again.
    pub fn reply(self, answer: R) {
        let _ = self.done.send(answer);
    }
}

impl<T, R> std::ops::Deref for Request<T, R> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

/// The requesters' side of a batching loop.
pub struct Sender<T, R>(mpsc::UnboundedSender<Request<T, R>>);

impl<T, R> Clone for Sender<T, R> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + 'static, R: Send + 'static> Sender<T, R> {
    /// The sender, and the loop ([`run`]) that hands what it is sent to `write` in batches of
    /// at most `max`, `slots` at once; the loop ends once every clone of the sender is dropped
    /// and the last batch is written.
    pub fn start<W, F>(
        max: usize,
        slots: usize,
        write: W,
    ) -> (Self, impl Future<Output = ()> + Send + 'static)
    where
        W: Fn(Vec<Request<T, R>>) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self(sender), run(receiver, max, slots, write))
    }

    /// Hands `item` to the next batch and waits for its answer: `None` when the loop has stopped,
    /// or dropped the request without answering it.
    pub async fn send(&self, item: T) -> Option<R> {
        let (request, answer) = Request::new(item);
        self.0.send(request).ok()?;
        answer.await.ok()
    }
}

/// Writes what `requests` receives in batches of at most `max`, at most `slots` batches at once:
/// whenever a slot is free, a batch of everything that arrived meanwhile is handed to `write` in
/// a task of its own. Returns once every sender is dropped and the last batch is written.
async fn run<T, W, F>(mut requests: mpsc::UnboundedReceiver<T>, max: usize, slots: usize, write: W)
where
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

    /// A sender's request is answered by the write it is handed to; one the write drops unanswered
    /// is `None`, not a hang.
    #[tokio::test]
    async fn a_sender_gets_the_answer_of_its_own_request() {
        let (doubler, doubling) = Sender::start(8, 1, |batch: Vec<Request<u32, u32>>| async move {
            for request in batch {
                let answer = *request * 2;
                request.reply(answer);
            }
        });
        let doubling = tokio::spawn(doubling);
        let answers = futures_util::future::join_all((1..=3).map(|i| doubler.send(i))).await;
        assert_eq!(answers, [Some(2), Some(4), Some(6)]);
        drop(doubler);
        doubling.await.unwrap();

        let (dropper, dropping) =
            Sender::start(
                8,
                1,
                |batch: Vec<Request<u32, u32>>| async move { drop(batch) },
            );
        let dropping = tokio::spawn(dropping);
        assert_eq!(dropper.send(1).await, None);
        drop(dropper);
        dropping.await.unwrap();
    }
}
