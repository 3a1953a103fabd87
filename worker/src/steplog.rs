//! Step and change logs. Lines are timestamped when they are produced and written to
//! `log_lines` in batches by a background task, so a chatty step costs one INSERT per batch, not
//! per line. The stored log of a step is capped; a marker line says where it was cut.

use gantry_shared::db::CachedStatements;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

const BATCH_LINES: usize = 500;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

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

struct Line {
    at: DateTime<Utc>,
    stream: Stream,
    text: String,
}

/// A log being written for one change (and step). Cheap to clone-by-reference; `close` flushes.
pub struct StepLog {
    sender: mpsc::UnboundedSender<Line>,
    writer: JoinHandle<()>,
}

impl StepLog {
    pub fn start(pool: Pool, change_id: Uuid, step_id: Option<Uuid>, max_bytes: usize) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_batches(pool, change_id, step_id, max_bytes, receiver));
        Self { sender, writer }
    }

    pub fn system(&self, text: impl Into<String>) {
        self.line(Stream::System, text);
    }

    pub fn line(&self, stream: Stream, text: impl Into<String>) {
        // A send fails only after the writer stopped, which happens only after close.
        let _ = self.sender.send(Line {
            at: Utc::now(),
            stream,
            text: text.into(),
        });
    }

    /// A line sink for tasks that outlive a borrow of this log (the container's output).
    pub fn sender(&self) -> impl Fn(Stream, String) + Send + 'static {
        let sender = self.sender.clone();
        move |stream, text| {
            let _ = sender.send(Line {
                at: Utc::now(),
                stream,
                text,
            });
        }
    }

    /// Writes whatever is still buffered and waits for it.
    pub async fn close(self) {
        drop(self.sender);
        let _ = self.writer.await;
    }
}

/// PostgreSQL text cannot hold NUL; everything else is kept as produced. Applied once, where
/// every line enters the database.
fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}").into()
    } else {
        text.into()
    }
}

async fn write_batches(
    pool: Pool,
    change_id: Uuid,
    step_id: Option<Uuid>,
    max_bytes: usize,
    mut receiver: mpsc::UnboundedReceiver<Line>,
) {
    let mut written = 0usize;
    let mut truncated = false;
    let mut batch = Vec::with_capacity(BATCH_LINES);
    loop {
        let Some(first) = receiver.recv().await else {
            break;
        };
        batch.push(first);
        let deadline = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(deadline);
        while batch.len() < BATCH_LINES {
            tokio::select! {
                line = receiver.recv() => match line { Some(l) => batch.push(l), None => break },
                _ = &mut deadline => break,
            }
        }
        let kept = cap(&mut batch, &mut written, &mut truncated, max_bytes);
        if let Err(e) = insert_batch(&pool, change_id, step_id, &kept).await {
            tracing::error!(error = %e, %change_id, "writing log lines failed; {} lines lost", kept.len());
        }
        batch.clear();
    }
}

/// Applies the per-log byte cap: system lines are always kept, output beyond the cap is replaced
/// by one marker line.
fn cap(
    batch: &mut Vec<Line>,
    written: &mut usize,
    truncated: &mut bool,
    max_bytes: usize,
) -> Vec<Line> {
    let mut kept = Vec::with_capacity(batch.len());
    for line in batch.drain(..) {
        if line.stream == Stream::System {
            kept.push(line);
            continue;
        }
        if *written + line.text.len() > max_bytes {
            if !*truncated {
                *truncated = true;
                kept.push(Line {
                    at: line.at,
                    stream: Stream::System,
                    text: format!("[log truncated: the step wrote more than {max_bytes} bytes; further output is not stored]"),
                });
            }
            continue;
        }
        *written += line.text.len();
        kept.push(line);
    }
    kept
}

async fn insert_batch(
    pool: &Pool,
    change_id: Uuid,
    step_id: Option<Uuid>,
    lines: &[Line],
) -> anyhow::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let client = pool.get().await?;
    insert_lines(
        &client,
        change_id,
        step_id,
        lines.iter().map(|l| (l.at, l.stream, l.text.as_str())),
    )
    .await?;
    Ok(())
}

/// Inserts lines in one statement; used by the batch writer and, inside their transaction, by the
/// roles that log what they decide (conflicts, roll-ups).
pub async fn insert_lines<'a>(
    client: &impl GenericClient,
    change_id: Uuid,
    step_id: Option<Uuid>,
    lines: impl Iterator<Item = (DateTime<Utc>, Stream, &'a str)>,
) -> Result<(), tokio_postgres::Error> {
    let (mut at, mut streams, mut texts) = (Vec::new(), Vec::new(), Vec::new());
    for (t, s, text) in lines {
        at.push(t);
        streams.push(s.as_str());
        texts.push(clean(text));
    }
    client
        .execute_cached(
            "INSERT INTO log_lines (change_id, step_id, logged_at, stream, text) \
             SELECT $1, $2, * FROM UNNEST($3::timestamptz[], $4::text[], $5::text[])",
            &[&change_id, &step_id, &at, &streams, &texts],
        )
        .await?;
    Ok(())
}

/// Logs system lines now, inside the caller's transaction.
pub async fn system_lines(
    client: &impl GenericClient,
    change_id: Uuid,
    step_id: Option<Uuid>,
    texts: &[&str],
) -> Result<(), tokio_postgres::Error> {
    let now = Utc::now();
    insert_lines(
        client,
        change_id,
        step_id,
        texts.iter().map(|t| (now, Stream::System, *t)),
    )
    .await
}
