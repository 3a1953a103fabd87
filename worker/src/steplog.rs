//! Step and change logs. Lines are timestamped when they are produced and written to
//! `log_lines` in batches by a background task, so a chatty step costs one INSERT per batch, not
//! per line. The stored log of a step is capped; a marker line says where it was cut.
//!
//! Every line of a step log passes its [`Masker`] on the way in (system lines, image build output
//! and, reassembled into whole lines by [`Output`], the container's output), so no secret value
//! of the step is ever stored.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Pool;
use gantry_shared::logs::{self, Line, Notifier};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::mask::Masker;

const BATCH_LINES: usize = 500;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

pub use gantry_shared::logs::Stream;

/// Masks lines and hands them to the batch writer.
#[derive(Clone)]
struct Sink {
    sender: mpsc::UnboundedSender<Line>,
    masker: Arc<Masker>,
}

impl Sink {
    fn send(&self, stream: Stream, text: String) {
        let text = match self.masker.mask(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(masked) => masked,
        };
        self.send_masked(stream, text);
    }

    fn send_masked(&self, stream: Stream, text: String) {
        // A send fails only after the writer stopped, which happens only after close.
        let _ = self.sender.send(Line {
            at: Utc::now(),
            stream,
            text,
        });
    }
}

/// A log being written for one change (and step). `close` flushes.
pub struct StepLog {
    sink: Sink,
    writer: JoinHandle<()>,
}

impl StepLog {
    /// Starts the log of a step whose secret values `masker` hides.
    pub fn start(
        pool: Pool,
        notifier: Notifier,
        change_id: Uuid,
        step_id: Option<Uuid>,
        max_bytes: usize,
        masker: Masker,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let target = Target {
            pool,
            notifier,
            change_id,
            step_id,
        };
        let writer = tokio::spawn(write_batches(target, max_bytes, receiver));
        let masker = Arc::new(masker);
        Self {
            sink: Sink { sender, masker },
            writer,
        }
    }

    pub fn system(&self, text: impl Into<String>) {
        self.line(Stream::System, text);
    }

    pub fn line(&self, stream: Stream, text: impl Into<String>) {
        self.sink.send(stream, text.into());
    }

    /// `text` as this log would store it, for messages stored elsewhere (the step's outcome).
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.sink.masker.mask(text)
    }

    /// A line assembler for raw output that outlives a borrow of this log (the container's);
    /// lines longer than `max_line` bytes are stored in pieces.
    pub fn output(&self, max_line: usize) -> Output {
        Output::new(self.sink.clone(), max_line)
    }

    /// Writes whatever is still buffered and waits for it.
    pub async fn close(self) {
        drop(self.sink);
        let _ = self.writer.await;
    }
}

/// Reassembles chunks of raw output into lines, per stream. Output arrives in arbitrary pieces
/// (a write may be split, a secret cut in two), so lines are masked only once whole, then cut
/// into pieces of at most `max_line` bytes: a cut never reveals part of a secret. A line without
/// an end that grows past `max_line` is flushed early at a cut that splits no secret.
pub struct Output {
    sink: Sink,
    max_line: usize,
    buffers: [Vec<u8>; 2],
}

impl Output {
    fn new(sink: Sink, max_line: usize) -> Self {
        Self {
            sink,
            max_line: max_line.max(1),
            buffers: [Vec::new(), Vec::new()],
        }
    }

    /// Adds a chunk of `stream` (stdout or stderr).
    pub fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let buffer = &mut self.buffers[usize::from(stream == Stream::Stderr)];
        buffer.extend_from_slice(bytes);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            emit(&self.sink, stream, &line[..end], self.max_line);
        }
        while buffer.len() > self.max_line {
            let Some(cut) = self.sink.masker.safe_cut(buffer, self.max_line) else {
                break;
            };
            let piece: Vec<u8> = buffer.drain(..cut).collect();
            emit(&self.sink, stream, &piece, self.max_line);
        }
    }

    /// Stores what is left of unfinished lines.
    pub fn finish(self) {
        for (buffer, stream) in self.buffers.iter().zip([Stream::Stdout, Stream::Stderr]) {
            emit(&self.sink, stream, buffer, self.max_line);
        }
    }
}

/// Masks one line of raw output, then stores it in pieces of at most `max_line` bytes.
fn emit(sink: &Sink, stream: Stream, bytes: &[u8], max_line: usize) {
    if bytes.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    let masked = sink.masker.mask(text.trim_end_matches('\r'));
    let mut rest: &str = &masked;
    loop {
        let mut cut = rest.len().min(max_line);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            // A character longer than the piece size goes whole.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(cut);
        sink.send_masked(stream, piece.to_owned());
        if tail.is_empty() {
            return;
        }
        rest = tail;
    }
}

/// Where a log's lines go, and who is woken when they are there.
struct Target {
    pool: Pool,
    notifier: Notifier,
    change_id: Uuid,
    step_id: Option<Uuid>,
}

async fn write_batches(
    target: Target,
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
        if let Err(e) = insert_batch(&target, &kept).await {
            tracing::error!(error = %e, change_id = %target.change_id, "writing log lines failed; {} lines lost", kept.len());
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

/// Inserts a batch of the writer's lines in one statement, then has the change's followers woken.
async fn insert_batch(target: &Target, lines: &[Line]) -> anyhow::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let client = target.pool.get().await?;
    logs::append(&client, target.change_id, target.step_id, lines).await?;
    target.notifier.notify(target.change_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MASK;
    use gantry_shared::logs::TxLog;

    /// An [`Output`] over the real sink, and the lines it stored.
    fn assemble(
        secrets: &[&str],
        max_line: usize,
        chunks: &[(Stream, &[u8])],
    ) -> Vec<(Stream, String)> {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let sink = Sink {
            sender,
            masker: Arc::new(Masker::new(secrets)),
        };
        let mut output = Output::new(sink, max_line);
        for (stream, bytes) in chunks {
            output.push(*stream, bytes);
        }
        output.finish();
        let mut lines = Vec::new();
        while let Ok(line) = receiver.try_recv() {
            lines.push((line.stream, line.text));
        }
        lines
    }

    fn texts(lines: &[(Stream, String)]) -> Vec<&str> {
        lines.iter().map(|(_, t)| t.as_str()).collect()
    }

    #[test]
    fn a_secret_split_across_writes_is_masked_in_the_reassembled_line() {
        let out = Stream::Stdout;
        let lines = assemble(
            &["abcdef123"],
            1024,
            &[
                (out, b"key=abc"),
                (out, b"def1"),
                (out, b"23 done\nnext\r\n"),
            ],
        );
        assert_eq!(texts(&lines), ["key=******** done", "next"]);
    }

    #[test]
    fn every_chunking_of_a_line_masks_every_secret() {
        let secrets = ["pässwörd", "token-42", "token-4217"];
        let line = "a pässwörd, token-4217 and token-42 again pässwörd\n".as_bytes();
        let expected = "a ********, ******** and ******** again ********";
        for size in 1..line.len() {
            let chunks: Vec<(Stream, &[u8])> =
                line.chunks(size).map(|c| (Stream::Stdout, c)).collect();
            assert_eq!(
                texts(&assemble(&secrets, 1024, &chunks)),
                [expected],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn stdout_and_stderr_are_assembled_separately() {
        let lines = assemble(
            &["secret-value"],
            1024,
            &[
                (Stream::Stdout, b"out secret-"),
                (Stream::Stderr, b"err secret"),
                (Stream::Stdout, b"value\n"),
                (Stream::Stderr, b"-value"),
            ],
        );
        assert_eq!(
            lines,
            [
                (Stream::Stdout, format!("out {MASK}")),
                (Stream::Stderr, format!("err {MASK}")),
            ]
        );
    }

    #[test]
    fn a_long_line_is_masked_before_it_is_cut() {
        // The secret spans the 10-byte cut of the line.
        let lines = assemble(&["SECRET"], 10, &[(Stream::Stdout, b"0123456SECRET789\n")]);
        assert_eq!(texts(&lines), ["0123456***", "*****789"]);
        assert!(lines.iter().all(|(_, t)| t.len() <= 10));
    }

    #[test]
    fn an_unfinished_long_line_is_flushed_early_without_splitting_a_secret() {
        let out = Stream::Stdout;
        let lines = assemble(
            &["SECRET"],
            10,
            &[
                (out, b"012345678SEC"),
                (out, b"RET0123456789abcdef"),
                (out, b"ghij"),
            ],
        );
        let stored = texts(&lines).concat();
        assert_eq!(stored, "012345678********0123456789abcdefghij");
        assert!(lines.iter().all(|(_, t)| t.len() <= 10), "{lines:?}");
        assert!(lines.len() >= 4, "flushed before the end: {lines:?}");
        assert!(
            lines
                .iter()
                .all(|(_, t)| !t.contains("SEC") && !t.contains("RET"))
        );
    }

    #[test]
    fn multi_byte_characters_are_never_cut() {
        let lines = assemble(&[], 5, &[(Stream::Stdout, "ééééé\n".as_bytes())]);
        assert_eq!(texts(&lines), ["éé", "éé", "é"]);
    }

    #[test]
    fn a_short_secret_is_masked_when_printed_as_its_own_line() {
        let lines = assemble(
            &["42"],
            1024,
            &[(Stream::Stdout, b"4"), (Stream::Stdout, b"2\nanswer: 42\n")],
        );
        assert_eq!(texts(&lines), [MASK, "answer: 42"]);
    }

    /// A transaction's lines, of a change and of one of its steps, go in with one flush numbered
    /// in the order they were logged, after the change's earlier lines (a NUL replaced), with the
    /// transaction's events; a flush with nothing left inserts nothing; lines and events of a
    /// transaction that rolls back are not stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transactions_lines_are_inserted_in_order_by_one_flush_and_roll_back_with_it() {
        use secrecy::ExposeSecret;
        let mut stack = gantry_testkit::spawn_stack().await;
        stack
            .project_with_manifest("actions:\n  default:\n    run: 'true'\n")
            .await;
        let (change, _) = stack.run_change("default", "main").await;
        let change: Uuid = change.parse().unwrap();
        let db = stack.db().await;
        let step: Uuid = db
            .query_one("SELECT id FROM steps WHERE change_id = $1", &[&change])
            .await
            .unwrap()
            .get(0);
        let url = stack.settings.database.url.expose_secret().to_owned();
        let pool = gantry_shared::db::pool_for_url(&url, 1).unwrap();
        let stored = || async {
            db.query(
                "SELECT step_id, stream, text FROM log_lines WHERE text LIKE 'tx %' ORDER BY seq",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect::<Vec<(Option<Uuid>, String, String)>>()
        };

        let numbered = || async {
            let row = db
                .query_one(
                    "SELECT count(*), min(seq), max(seq), (SELECT seq FROM log_sequences WHERE change_id = $1) \
                     FROM log_lines WHERE change_id = $1",
                    &[&change],
                )
                .await
                .unwrap();
            let (count, min, max, log_seq): (i64, i64, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            assert_eq!((min, max, log_seq), (1, count, count), "gap-free from 1");
            count
        };
        let events = || async {
            db.query_one("SELECT count(*) FROM events WHERE type = 'test:tx'", &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        };
        let before = numbered().await;

        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        let log = TxLog::default();
        log.event(gantry_shared::logs::Event {
            kind: "test:tx".into(),
            actor: "tester".into(),
            target: format!("/changes/{change}"),
            payload: serde_json::json!({}),
        });
        log.push(change, None, &["tx a", "tx b"]);
        log.push(change, Some(step), &["tx c\0d"]);
        log.push(change, None, &["tx e"]);
        log.flush(&tx).await.unwrap();
        log.flush(&tx).await.unwrap();
        tx.commit().await.unwrap();
        let system = |step: Option<Uuid>, text: &str| (step, "system".to_owned(), text.to_owned());
        let expected = vec![
            system(None, "tx a"),
            system(None, "tx b"),
            system(Some(step), "tx c\u{FFFD}d"),
            system(None, "tx e"),
        ];
        assert_eq!(stored().await, expected);
        assert_eq!(numbered().await, before + 4);
        assert_eq!(events().await, 1);

        let tx = client.transaction().await.unwrap();
        log.push(change, Some(step), &["tx rolled back"]);
        log.event(gantry_shared::logs::Event {
            kind: "test:tx".into(),
            actor: "tester".into(),
            target: format!("/changes/{change}"),
            payload: serde_json::json!({}),
        });
        log.flush(&tx).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(stored().await, expected);
        assert_eq!(numbered().await, before + 4);
        assert_eq!(events().await, 1);
        drop(client);
        stack.stop().await;
    }
}
