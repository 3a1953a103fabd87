//! One follower: a task that writes Server-Sent Events into the response body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, ContentEncoding};
use actix_web::web::Bytes;
use gantry_shared::metrics::names;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::hub::{LogHub, read_page};
use super::{LogLine, Page};

/// Events buffered for a slow client before the follower waits for it.
const BUFFERED_EVENTS: usize = 64;
/// A comment sent after this long without an event keeps proxies from closing the stream and
/// notices a client that left.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whose lines a follower wants.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Change(Uuid),
    Step { change_id: Uuid, step_id: Uuid },
}

impl Scope {
    fn change_id(self) -> Uuid {
        match self {
            Scope::Change(id) | Scope::Step { change_id: id, .. } => id,
        }
    }

    fn step_id(self) -> Option<Uuid> {
        match self {
            Scope::Change(_) => None,
            Scope::Step { step_id, .. } => Some(step_id),
        }
    }

    /// The final status this page says its lines end with, if they do.
    fn end(self, page: &Page) -> Option<String> {
        if !page.complete {
            return None;
        }
        match self {
            _ if page.gone => Some("gone".to_owned()),
            Scope::Change(_) => page.change_done.map(|s| s.as_str().to_owned()),
            Scope::Step { step_id, .. } => page.done_steps.get(&step_id).cloned(),
        }
    }
}

/// The `text/event-stream` response following `scope` after line `after` (the client's
/// `Last-Event-ID`, or 0 from the start). Never compressed: a compressor would hold events back.
pub fn follow(hub: Arc<LogHub>, scope: Scope, after: i64) -> HttpResponse {
    let (events, receiver) = mpsc::channel::<Bytes>(BUFFERED_EVENTS);
    tokio::spawn(async move {
        metrics::gauge!(names::LOG_FOLLOWERS).increment(1.0);
        if let Err(e) = run(&hub, scope, after, &events).await {
            tracing::debug!(reason = %e, "a log follower stopped");
        }
        metrics::gauge!(names::LOG_FOLLOWERS).decrement(1.0);
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        Some((Ok::<_, Infallible>(event), receiver))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(ContentEncoding::Identity)
        .insert_header((CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// Why a follower stopped early.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("the client left")]
    Left,
    #[error("reading the log failed: {0}")]
    Db(String),
}

/// Where a follower stands: every line of the change up to `seen` was sent (or skipped, for a
/// step's follower).
struct Follower<'a> {
    scope: Scope,
    seen: i64,
    events: &'a mpsc::Sender<Bytes>,
}

async fn run(
    hub: &LogHub,
    scope: Scope,
    after: i64,
    events: &mpsc::Sender<Bytes>,
) -> Result<(), Stop> {
    // Subscribed first: whatever the feed reads from now on reaches this follower.
    let mut subscription = hub.subscribe(scope.change_id());
    let mut follower = Follower {
        scope,
        seen: after,
        events,
    };
    if follower.catch_up(hub).await? {
        return Ok(());
    }
    loop {
        let update = tokio::select! {
            update = subscription.updates.recv() => update,
            _ = tokio::time::sleep(KEEP_ALIVE) => {
                follower.send(Bytes::from_static(b": keep-alive\n\n")).await?;
                continue;
            }
        };
        let ended = match update {
            // A page from where this follower stands (or before): the rest of it is new.
            Ok(page) if page.from <= follower.seen => follower.deliver(&page).await?,
            // A gap (the feed started after this follower read, or it fell behind): the
            // database has what is missing.
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => follower.catch_up(hub).await?,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if ended {
            return Ok(());
        }
    }
}

impl Follower<'_> {
    /// Reads and sends what this follower has not seen, page by page; `true` once it sent the
    /// end.
    async fn catch_up(&mut self, hub: &LogHub) -> Result<bool, Stop> {
        loop {
            metrics::counter!(names::LOG_FOLLOW_QUERIES, "kind" => "catch_up").increment(1);
            // A connection per page, given back before the page is sent: a slow client must not
            // hold one of the api's connections while it reads.
            let client = hub
                .pool()
                .get()
                .await
                .map_err(|e| Stop::Db(e.to_string()))?;
            let page = read_page(
                &client,
                self.scope.change_id(),
                self.scope.step_id(),
                self.seen,
            )
            .await
            .map_err(|e| Stop::Db(e.to_string()))?;
            drop(client);
            if self.deliver(&page).await? {
                return Ok(true);
            }
            if page.complete {
                return Ok(false);
            }
        }
    }

    /// Sends the page's lines this follower has not seen; `true` once it sent the end.
    async fn deliver(&mut self, page: &Page) -> Result<bool, Stop> {
        let step = self.scope.step_id();
        for line in &page.lines {
            if line.seq <= self.seen || (step.is_some() && line.step_id != step) {
                continue;
            }
            self.send(line_event(line)).await?;
            metrics::counter!(names::LOG_FOLLOW_LINES).increment(1);
        }
        self.seen = self.seen.max(page.to);
        match self.scope.end(page) {
            Some(status) => {
                let data = json!({ "status_code": status });
                self.send(Bytes::from(format!("event: end\ndata: {data}\n\n")))
                    .await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn send(&self, event: Bytes) -> Result<(), Stop> {
        self.events.send(event).await.map_err(|_| Stop::Left)
    }
}

/// A line as an event: its number is the event id a client resumes after.
fn line_event(line: &LogLine) -> Bytes {
    let data = serde_json::to_string(line).expect("a log line serialises");
    Bytes::from(format!(
        "id: {}\nevent: log_line\ndata: {data}\n\n",
        line.seq
    ))
}
