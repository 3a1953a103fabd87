//! The log hub of one api process: one `LISTEN` connection for every follower, and one feed per
//! followed change that reads the change's new lines once per wake-up and hands them to all its
//! followers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool};
use futures_util::StreamExt;
use gantry_shared::db::CachedStatements;
use gantry_shared::domain::ChangeStatus;
use gantry_shared::logs::LOG_CHANNEL;
use gantry_shared::metrics::names;
use tokio::sync::{Notify, broadcast};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{LogLine, Page};

/// Updates a feed keeps for followers that fall behind; one that falls further reads what it
/// missed from the database.
const FEED_CAPACITY: usize = 256;
/// Lines read by one query.
pub const PAGE_LINES: i64 = 1000;
/// A feed reads again after this long without a wake-up: a notification can be lost (a worker
/// that failed to send it, the listener reconnecting), and a runner's lease can expire without
/// one (a worker that died holding a cancelled step).
const RECHECK: Duration = Duration::from_secs(5);

pub struct LogHub {
    pool: Pool,
    feeds: Mutex<HashMap<Uuid, Weak<Feed>>>,
}

/// The shared reader of one change's log.
pub struct Feed {
    wake: Arc<Notify>,
    updates: broadcast::Sender<Arc<Page>>,
    /// Cancelled when the last follower leaves: the feed's reader stops.
    closed: CancellationToken,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// A follower's hold on its change's feed: updates arrive on `updates` until it is dropped.
pub struct Subscription {
    _feed: Arc<Feed>,
    pub updates: broadcast::Receiver<Arc<Page>>,
}

impl LogHub {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            feeds: Mutex::new(HashMap::new()),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Follows the change: its feed's updates from now on (the feed is started by the first
    /// follower and stopped after the last).
    pub fn subscribe(&self, change_id: Uuid) -> Subscription {
        let mut feeds = self.feeds();
        if let Some(feed) = feeds.get(&change_id).and_then(Weak::upgrade) {
            let updates = feed.updates.subscribe();
            return Subscription {
                _feed: feed,
                updates,
            };
        }
        let (sender, updates) = broadcast::channel(FEED_CAPACITY);
        let feed = Arc::new(Feed {
            wake: Arc::new(Notify::new()),
            updates: sender.clone(),
            closed: CancellationToken::new(),
        });
        feeds.retain(|_, feed| feed.strong_count() > 0);
        feeds.insert(change_id, Arc::downgrade(&feed));
        tokio::spawn(read_feed(
            self.pool.clone(),
            change_id,
            feed.wake.clone(),
            sender,
            feed.closed.clone(),
        ));
        Subscription {
            _feed: feed,
            updates,
        }
    }

    /// Wakes the feed of `change_id`, if it has followers here.
    fn wake(&self, change_id: Uuid) {
        if let Some(feed) = self.feeds().get(&change_id).and_then(Weak::upgrade) {
            feed.wake.notify_one();
        }
    }

    fn wake_all(&self) {
        for feed in self.feeds().values().filter_map(Weak::upgrade) {
            feed.wake.notify_one();
        }
    }

    fn feeds(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Weak<Feed>>> {
        // Nothing panics while holding the lock; a poisoned map is still whole.
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listens for log notifications until `shutdown`, reconnecting forever with backoff. After
    /// every (re)connection each feed reads once: notifications sent while no connection
    /// listened are lost, the lines are not.
    pub async fn listen(
        self: Arc<Self>,
        config: tokio_postgres::Config,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.listen_connected(&config, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "the log listener lost its connection, reconnecting in {:?}", backoff);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn listen_connected(
        &self,
        config: &tokio_postgres::Config,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
        let (notifications, mut received) = tokio::sync::mpsc::unbounded_channel();
        // The connection is driven by this stream: it carries the LISTEN's answer and then
        // every notification.
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        let _ = notifications.send(n.payload().to_owned());
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        client
            .batch_execute(&format!("LISTEN {LOG_CHANNEL}"))
            .await?;
        self.wake_all();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    driver.abort();
                    return Ok(());
                }
                payload = received.recv() => match payload {
                    Some(payload) => {
                        if let Ok(change_id) = payload.parse() {
                            self.wake(change_id);
                        }
                    }
                    None => {
                        let ended = driver.await?;
                        ended?;
                        anyhow::bail!("the log listener's connection closed");
                    }
                },
            }
        }
    }
}

/// A feed's reader: from the change's last line when the feed starts, it reads what is new at
/// every wake-up, and at least every [`RECHECK`] (one query per page, whatever the number of
/// followers), and sends it on.
async fn read_feed(
    pool: Pool,
    change_id: Uuid,
    wake: Arc<Notify>,
    updates: broadcast::Sender<Arc<Page>>,
    closed: CancellationToken,
) {
    let mut after = None;
    loop {
        match read_new(&pool, change_id, &mut after, &updates).await {
            Ok(()) => {}
            Err(e) => {
                // Followers keep waiting; the next wake-up (or this retry) reads again.
                tracing::warn!(error = %e, %change_id, "reading a followed log failed");
                tokio::select! {
                    _ = closed.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                wake.notify_one();
            }
        }
        tokio::select! {
            _ = closed.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

async fn read_new(
    pool: &Pool,
    change_id: Uuid,
    after: &mut Option<i64>,
    updates: &broadcast::Sender<Arc<Page>>,
) -> anyhow::Result<()> {
    let client = pool.get().await?;
    let from = match *after {
        Some(seq) => seq,
        // A new feed starts after the change's last line: followers read what came before it
        // themselves, from wherever each resumes.
        None => {
            let seq = select_log_seq(&client, change_id).await?.unwrap_or(0);
            *after = Some(seq);
            seq
        }
    };
    let mut from = from;
    loop {
        metrics::counter!(names::LOG_FOLLOW_QUERIES, "kind" => "feed").increment(1);
        let page = read_page(&client, change_id, None, from).await?;
        from = page.to;
        *after = Some(page.to);
        let complete = page.complete;
        // No receiver: every follower left; the feed stops at its next wake-up.
        let _ = updates.send(Arc::new(page));
        if complete {
            return Ok(());
        }
    }
}

async fn select_log_seq(
    client: &impl GenericClient,
    change_id: Uuid,
) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(client
        .query_opt_cached(
            "SELECT COALESCE((SELECT seq FROM log_sequences WHERE change_id = id), 0) \
             FROM changes WHERE id = $1",
            &[&change_id],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The change's lines after `after` (of one step, when given), at most [`PAGE_LINES`], with the
/// state of the change they were read with: one statement, one snapshot, so a change seen final
/// with none of its steps held by a runner has no line beyond those read with it.
pub async fn read_page(
    client: &impl GenericClient,
    change_id: Uuid,
    step_id: Option<Uuid>,
    after: i64,
) -> Result<Page, tokio_postgres::Error> {
    let rows = client
        .query_cached(
            "WITH state AS (SELECT c.status_code, \
               COALESCE((SELECT seq FROM log_sequences s WHERE s.change_id = c.id), 0) AS log_seq, \
               EXISTS (SELECT 1 FROM steps s WHERE s.change_id = c.id AND s.lease_owner IS NOT NULL \
                 AND s.lease_expires_at > now()) AS held, \
               ARRAY (SELECT s.id || ' ' || s.status_code FROM steps s WHERE s.change_id = c.id \
                 AND s.status_code IN ('success', 'error', 'aborted', 'cancelled', 'system_error') \
                 AND (s.lease_owner IS NULL OR s.lease_expires_at <= now())) AS done_steps \
               FROM changes c WHERE c.id = $1) \
             SELECT state.status_code, state.log_seq, state.held, state.done_steps, \
               l.id, l.seq, l.step_id, l.logged_at, l.stream, l.text \
             FROM state LEFT JOIN LATERAL (SELECT id, seq, step_id, logged_at, stream, text \
               FROM log_lines WHERE change_id = $1 AND seq > $2 \
               AND ($3::uuid IS NULL OR step_id = $3) ORDER BY seq LIMIT $4) l ON true \
             ORDER BY l.seq",
            &[&change_id, &after, &step_id, &PAGE_LINES],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(Page::gone(after));
    };
    let status: ChangeStatus = first
        .get::<_, &str>(0)
        .parse()
        .unwrap_or(ChangeStatus::Error);
    let log_seq: i64 = first.get(1);
    let held: bool = first.get(2);
    let done_steps: HashMap<Uuid, String> = first
        .get::<_, Vec<String>>(3)
        .iter()
        .filter_map(|pair| {
            let (id, status) = pair.split_once(' ')?;
            Some((id.parse().ok()?, status.to_owned()))
        })
        .collect();
    let lines: Vec<LogLine> = rows
        .iter()
        .filter(|r| r.get::<_, Option<i64>>(5).is_some())
        .map(|r| LogLine {
            id: r.get(4),
            seq: r.get(5),
            step_id: r.get(6),
            logged_at: r.get(7),
            stream: r.get(8),
            text: r.get(9),
        })
        .collect();
    let complete = (lines.len() as i64) < PAGE_LINES;
    // A full page covers up to its last line; a complete one everything the snapshot held.
    let to = match complete {
        true => log_seq.max(after),
        false => lines.last().map_or(after, |l| l.seq),
    };
    Ok(Page {
        from: after,
        to,
        lines,
        complete,
        change_done: (status.is_final() && !held).then_some(status),
        done_steps,
        gone: false,
    })
}
