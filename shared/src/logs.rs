//! Change logs and audit events in PostgreSQL, as every writer stores them.
//!
//! * Each line of a change gets the next number of the change's own sequence (`seq`, from
//!   `log_sequences`), taken in the statement that inserts it. The sequence's row stays locked
//!   until the line commits, so lines commit in `seq` order and a reader that has seen `seq` n has
//!   seen every line before it: a follower resumes after n and misses nothing (DESIGN §6
//!   `follow`).
//! * [`TxLog`] is what a transaction logs — the system lines and the audit events of its decisions —
//!   written by one statement when it flushes, before its commit.
//! * After a commit that stored lines, the process's [`Notifier`] wakes the followers of those
//!   changes: a `NOTIFY` on [`LOG_CHANNEL`] per change, sent after the commit and off the path
//!   that stored them, batched. PostgreSQL serialises the commits of every transaction that
//!   notifies (a database-wide lock, held through the commit's WAL flush): inside the inserting
//!   transaction it cost most of the commit rate (pgbench here, 8 clients: 2,500 inserting
//!   commits/s alone, 1,000/s with a `NOTIFY` inside, 2,000/s with one right after each).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::db::CachedStatements;

/// The channel `NOTIFY` wakes log followers on; the payload is the change id.
pub const LOG_CHANNEL: &str = "gantry_log";

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    System,
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::System => "system",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// PostgreSQL text cannot hold NUL; everything else is kept as produced. Applied where every
/// line enters the database.
pub fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}").into()
    } else {
        text.into()
    }
}

/// One line of a step's output or of Gantry's own account of it.
pub struct Line {
    pub at: DateTime<Utc>,
    pub stream: Stream,
    pub text: String,
}

/// Appends `lines` (already masked) to the log of the change (and step), numbered in order, in
/// one statement.
pub async fn append(
    client: &impl GenericClient,
    change_id: Uuid,
    step_id: Option<Uuid>,
    lines: &[Line],
) -> Result<(), tokio_postgres::Error> {
    if lines.is_empty() {
        return Ok(());
    }
    let (mut at, mut streams, mut texts) = (Vec::new(), Vec::new(), Vec::new());
    for line in lines {
        at.push(line.at);
        streams.push(line.stream.as_str());
        texts.push(clean(&line.text));
    }
    let count = lines.len() as i64;
    client
        .execute_cached(
            "WITH s AS (INSERT INTO log_sequences (change_id, seq) VALUES ($1, $6) \
             ON CONFLICT (change_id) DO UPDATE SET seq = log_sequences.seq + EXCLUDED.seq \
             RETURNING seq - $6 AS base) \
             INSERT INTO log_lines (change_id, step_id, seq, logged_at, stream, text) \
             SELECT $1, $2, s.base + l.n, l.at, l.stream, l.text FROM s, \
             UNNEST($3::timestamptz[], $4::text[], $5::text[]) WITH ORDINALITY AS l (at, stream, text, n)",
            &[&change_id, &step_id, &at, &streams, &texts, &count],
        )
        .await?;
    Ok(())
}

/// Wakes the followers of `changes` (after the commit that stored their lines), in one
/// statement. A lost notification delays a follower until its feed reads again; it never loses
/// a line (see the module).
pub async fn notify<'a>(
    client: &impl GenericClient,
    changes: impl IntoIterator<Item = &'a Uuid>,
) -> Result<(), tokio_postgres::Error> {
    let ids: Vec<String> = changes.into_iter().map(Uuid::to_string).collect();
    if ids.is_empty() {
        return Ok(());
    }
    client
        .execute_cached(NOTIFY_SQL, &[&LOG_CHANNEL, &ids])
        .await?;
    Ok(())
}

/// An audit event (DESIGN §2 `event`): what happened, who did it, to what, with details.
pub struct Event {
    pub kind: String,
    pub actor: String,
    pub target: String,
    pub payload: Value,
}

/// The system lines and audit events a transaction logs, written by one statement when it
/// flushes, before the commit, instead of one per decision. A mutex rather than a `RefCell`: the
/// futures that hold a `&TxLog` across awaits must be `Send`. Nothing holds the lock across an
/// await.
#[derive(Default)]
pub struct TxLog(std::sync::Mutex<Buffer>);

#[derive(Default)]
struct Buffer {
    lines: Vec<SystemLine>,
    events: Vec<Event>,
    /// Every change a flush stored lines of: the followers to wake after the commit.
    changes: BTreeSet<Uuid>,
}

struct SystemLine {
    change_id: Uuid,
    step_id: Option<Uuid>,
    at: DateTime<Utc>,
    text: String,
}

impl TxLog {
    /// Logs `texts` of the change (and step), timestamped now, in the order given.
    pub fn push(&self, change_id: Uuid, step_id: Option<Uuid>, texts: &[&str]) {
        let at = Utc::now();
        self.buffer()
            .lines
            .extend(texts.iter().map(|text| SystemLine {
                change_id,
                step_id,
                at,
                text: clean(text).into_owned(),
            }));
    }

    /// Records an audit event.
    pub fn event(&self, event: Event) {
        self.buffer().events.push(event);
    }

    /// Inserts the lines and events logged so far, in one statement inside the caller's
    /// transaction; none is left to insert afterwards. A transaction flushes before it commits,
    /// and before it takes a lock it should hold as briefly as it can. The changes whose lines
    /// were stored are remembered for [`TxLog::notify`].
    pub async fn flush(&self, client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
        let (lines, events) = {
            let mut buffer = self.buffer();
            let lines = std::mem::take(&mut buffer.lines);
            buffer.changes.extend(lines.iter().map(|l| l.change_id));
            (lines, std::mem::take(&mut buffer.events))
        };
        if lines.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut l = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for line in lines {
            l.0.push(line.change_id);
            l.1.push(line.step_id);
            l.2.push(line.at);
            l.3.push(line.text);
        }
        let mut e = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for event in events {
            e.0.push(event.kind);
            e.1.push(event.actor);
            e.2.push(event.target);
            e.3.push(event.payload);
        }
        // Each change's lines are numbered from its sequence, bumped once by their count (the
        // sequences locked in change order: two transactions logging for the same changes wait
        // for each other instead of deadlocking).
        client
            .execute_cached(
                "WITH l AS (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[]) \
                 WITH ORDINALITY AS l (change_id, step_id, logged_at, text, n)), \
                 counts AS (SELECT change_id, count(*) AS k FROM l GROUP BY change_id), \
                 seqs AS (INSERT INTO log_sequences (change_id, seq) \
                 SELECT change_id, k FROM counts ORDER BY change_id \
                 ON CONFLICT (change_id) DO UPDATE SET seq = log_sequences.seq + EXCLUDED.seq \
                 RETURNING change_id, seq), \
                 lines AS (INSERT INTO log_lines (change_id, step_id, seq, logged_at, stream, text) \
                 SELECT l.change_id, l.step_id, \
                 s.seq - c.k + row_number() OVER (PARTITION BY l.change_id ORDER BY l.n), \
                 l.logged_at, 'system', l.text \
                 FROM l JOIN seqs s ON s.change_id = l.change_id JOIN counts c ON c.change_id = l.change_id) \
                 INSERT INTO events (type, actor, target, payload) \
                 SELECT * FROM UNNEST($5::text[], $6::text[], $7::text[], $8::jsonb[])",
                &[&l.0, &l.1, &l.2, &l.3, &e.0, &e.1, &e.2, &e.3],
            )
            .await?;
        Ok(())
    }

    /// After the commit: wakes the followers of every change whose lines this log stored.
    pub fn notify(&self, notifier: &Notifier) {
        for change in std::mem::take(&mut self.buffer().changes) {
            notifier.notify(change);
        }
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // A panic while the lock was held left whole entries behind: the buffer is still valid.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How long the notifier gathers changes before it sends their wake-ups (at most this much delay
/// for a follower, at most one `NOTIFY` transaction this often per process).
const NOTIFY_WINDOW: Duration = Duration::from_millis(10);

/// A process's sender of log wake-ups (see the module): changes are handed over without waiting,
/// and a task sends them in batches, one statement each, on a connection of its own whose
/// commits do not wait for the WAL flush (`synchronous_commit = off`: a wake-up needs no
/// durability, and the flush is what the `NOTIFY` lock is held through).
#[derive(Clone)]
pub struct Notifier(mpsc::UnboundedSender<Uuid>);

impl Notifier {
    /// Starts the notifier's task, which connects (again) as it needs and ends once every clone
    /// of the notifier is dropped.
    pub fn spawn(config: tokio_postgres::Config) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(send_wake_ups(config, receiver));
        Self(sender)
    }

    /// A notifier whose wake-ups go nowhere (for code run without followers, in tests).
    pub fn detached() -> Self {
        Self(mpsc::unbounded_channel().0)
    }

    /// Wakes the followers of `change_id` soon.
    pub fn notify(&self, change_id: Uuid) {
        // Fails only once the task stopped (shutdown): nobody follows any more.
        let _ = self.0.send(change_id);
    }
}

/// The statement that wakes the followers of a batch of changes.
const NOTIFY_SQL: &str = "SELECT pg_notify($1, id) FROM UNNEST($2::text[]) AS id";

async fn send_wake_ups(config: tokio_postgres::Config, mut changes: mpsc::UnboundedReceiver<Uuid>) {
    let mut client: Option<(tokio_postgres::Client, tokio_postgres::Statement)> = None;
    while let Some(first) = changes.recv().await {
        tokio::time::sleep(NOTIFY_WINDOW).await;
        let mut batch = BTreeSet::from([first]);
        while let Ok(change) = changes.try_recv() {
            batch.insert(change);
        }
        if client.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            client = match connect(&config).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the log notifier cannot connect; followers re-read on their own");
                    continue;
                }
            };
        }
        let ids: Vec<String> = batch.iter().map(Uuid::to_string).collect();
        let sent = match &client {
            Some((c, statement)) => c.execute(statement, &[&LOG_CHANNEL, &ids]).await,
            None => continue,
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "waking log followers failed; they re-read on their own");
            client = None;
        }
    }
}

async fn connect(
    config: &tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, tokio_postgres::Statement), tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "the log notifier's connection ended");
        }
    });
    client.batch_execute("SET synchronous_commit = off").await?;
    let statement = client.prepare(NOTIFY_SQL).await?;
    Ok((client, statement))
}
