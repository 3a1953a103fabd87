//! Following logs live (`?follow=true`, Server-Sent Events), with writers that append and notify
//! as the worker's do, several at once.

use std::time::Duration;

use futures_util::StreamExt;
use gantry_shared::logs::{self, Line, Stream, TxLog};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, expect_status, first_error, spawn_app};
use crate::lists::texts;

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    id: Option<i64>,
    kind: String,
    data: Value,
}

/// An open event stream.
struct Follower {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<actix_web::web::Bytes>>,
    buffer: String,
}

impl Follower {
    async fn open(app: &TestApp, path: &str, last_event_id: Option<i64>) -> Self {
        let mut request = app.request(reqwest::Method::GET, path);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{path}"
        );
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if block.starts_with(':') {
                    continue;
                }
                let mut event = Event {
                    id: None,
                    kind: String::new(),
                    data: Value::Null,
                };
                for line in block.lines().filter(|l| !l.is_empty()) {
                    match line.split_once(": ") {
                        Some(("id", id)) => event.id = Some(id.parse().unwrap()),
                        Some(("event", kind)) => event.kind = kind.to_owned(),
                        Some(("data", data)) => event.data = serde_json::from_str(data).unwrap(),
                        _ => panic!("unexpected line {line:?} in {block:?}"),
                    }
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("an event within 30 s")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    /// Every event until the end event (returned last); then the stream must end.
    async fn until_end(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let end = event.kind == "end";
            events.push(event);
            if end {
                assert!(self.next().await.is_none(), "the stream ends after `end`");
                return events;
            }
        }
        panic!("the stream ended without an end event: {events:?}");
    }
}

fn line(text: String) -> Line {
    Line {
        at: chrono::Utc::now(),
        stream: Stream::Stdout,
        text,
    }
}

/// Appends `count` lines in batches of 3, waking followers after each, as a step's log writer.
async fn write(app: &TestApp, change: Uuid, step: Option<Uuid>, name: &str, count: usize) {
    let client = app.db().await;
    for batch in (0..count).collect::<Vec<_>>().chunks(3) {
        let lines: Vec<Line> = batch.iter().map(|i| line(format!("{name} {i}"))).collect();
        logs::append(&client, change, step, &lines).await.unwrap();
        logs::notify(&client, [&change]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Ends the change as the results role does: its last line and its final status in one
/// transaction, then the wake-up.
async fn finish(app: &TestApp, change: Uuid, status: &str) {
    let mut client = app.db().await;
    let tx = client.transaction().await.unwrap();
    let log = TxLog::default();
    log.push(
        change,
        None,
        &[&format!("Change finished with status {status}")],
    );
    log.flush(&tx).await.unwrap();
    tx.execute(
        "UPDATE changes SET status_code = $2, finished_at = now() WHERE id = $1",
        &[&change, &status],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    logs::notify(&client, [&change]).await.unwrap();
}

async fn insert_step(app: &TestApp, change: Uuid, status: &str) -> Uuid {
    let id = Uuid::now_v7();
    app.db()
        .await
        .execute(
            "INSERT INTO steps (id, change_id, position, action, name, has_command, status_code) \
             VALUES ($1, $2, (SELECT count(*)::int FROM steps WHERE change_id = $2), 'job', 'job', true, $3)",
            &[&id, &change, &status],
        )
        .await
        .unwrap();
    id
}

/// The stored lines of the change in order: (seq, text).
async fn stored(app: &TestApp, change: Uuid) -> Vec<(i64, String)> {
    app.db()
        .await
        .query(
            "SELECT seq, text FROM log_lines WHERE change_id = $1 ORDER BY seq",
            &[&change],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn lines_of(events: &[Event]) -> Vec<(i64, String)> {
    events
        .iter()
        .filter(|e| e.kind == "log_line")
        .map(|e| {
            assert_eq!(
                e.id,
                e.data["seq"].as_i64(),
                "the event id is the line number"
            );
            (e.id.unwrap(), e.data["text"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn running_change(app: &TestApp) -> Uuid {
    app.create_change_targets().await;
    let change = app.create_change().await;
    app.set_change_status(change, "running").await;
    change
}

/// Three writers append at once while two followers follow: one from the start, one that leaves
/// after 40 lines and comes back with `Last-Event-ID`. Each gets every stored line once, in
/// order, and the stream ends with the change's final status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_get_every_line_once_in_order_across_a_reconnect_until_the_final_status() {
    let app = spawn_app().await;
    let change = running_change(&app).await;
    let path = format!("/api/changes/{change}/log_lines?follow=true");
    let mut whole = Follower::open(&app, &path, None).await;
    let mut first_half = Follower::open(&app, &path, None).await;

    let writers = futures_util::future::join_all(
        ["a", "b", "c"].map(|name| write(&app, change, None, name, 60)),
    );
    let reconnecting = async {
        let mut seen = Vec::new();
        while seen.len() < 40 {
            seen.push(first_half.next().await.unwrap());
        }
        drop(first_half);
        let last = seen.last().unwrap().id;
        let mut resumed = Follower::open(&app, &path, last).await;
        seen.extend(resumed.until_end().await);
        seen
    };
    let finishing = async {
        writers.await;
        finish(&app, change, "success").await;
    };
    let (whole_events, reconnected, ()) = tokio::join!(whole.until_end(), reconnecting, finishing);

    let expected = stored(&app, change).await;
    assert_eq!(expected.len(), 181);
    assert_eq!(
        expected.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=181).collect::<Vec<_>>()
    );
    for events in [&whole_events, &reconnected] {
        assert_eq!(lines_of(events), expected);
        let end = events.last().unwrap();
        assert_eq!(
            (end.kind.as_str(), &end.data),
            ("end", &json!({"status_code": "success"}))
        );
    }
}

/// A follower of a finished change reads the log and ends at once; one that resumes after the
/// last line gets only the end.
#[tokio::test]
async fn a_finished_changes_log_is_read_whole_and_ends() {
    let app = spawn_app().await;
    let change = running_change(&app).await;
    write(&app, change, None, "line", 5).await;
    finish(&app, change, "error").await;
    let path = format!("/api/changes/{change}/log_lines?follow=true");

    let events = Follower::open(&app, &path, None).await.until_end().await;
    let resumed = Follower::open(&app, &path, Some(6)).await.until_end().await;

    assert_eq!(lines_of(&events), stored(&app, change).await);
    assert_eq!(events.last().unwrap().data, json!({"status_code": "error"}));
    assert_eq!(resumed.len(), 1, "{resumed:?}");
}

/// A step's follower gets that step's lines only and ends when the step is final and no runner
/// holds it, while its change goes on; a step still leased by a runner is not done yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steps_follower_gets_its_lines_and_ends_when_the_step_is_final_and_released() {
    let app = spawn_app().await;
    let change = running_change(&app).await;
    let (mine, other) = (
        insert_step(&app, change, "running").await,
        insert_step(&app, change, "running").await,
    );
    app.db()
        .await
        .execute(
            "UPDATE steps SET lease_owner = 'w1', lease_expires_at = now() + interval '1 minute' WHERE id = $1",
            &[&mine],
        )
        .await
        .unwrap();
    let mut follower = Follower::open(
        &app,
        &format!("/api/steps/{mine}/log_lines?follow=true"),
        None,
    )
    .await;
    tokio::join!(
        write(&app, change, Some(mine), "mine", 10),
        write(&app, change, Some(other), "other", 10)
    );
    // Cancelled, as by the API (which wakes the followers), but its runner still holds it: more
    // lines may come.
    let client = app.db().await;
    client
        .execute(
            "UPDATE steps SET status_code = 'cancelled' WHERE id = $1",
            &[&mine],
        )
        .await
        .unwrap();
    logs::notify(&client, [&change]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    write(&app, change, Some(mine), "last", 1).await;
    let mut events = Vec::new();
    while events.len() < 11 {
        events.push(follower.next().await.unwrap());
    }
    // The runner lets go and wakes the followers.
    client
        .execute(
            "UPDATE steps SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
            &[&mine],
        )
        .await
        .unwrap();
    logs::notify(&client, [&change]).await.unwrap();
    events.extend(follower.until_end().await);

    let texts: Vec<String> = lines_of(&events).into_iter().map(|(_, t)| t).collect();
    let mut expected: Vec<String> = (0..10).map(|i| format!("mine {i}")).collect();
    expected.push("last 0".into());
    assert_eq!(texts, expected);
    assert_eq!(
        events.last().unwrap().data,
        json!({"status_code": "cancelled"})
    );
}

/// Twenty followers of one change: the lines are read once per wake-up for all of them, not
/// once per follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_of_one_change_share_one_read_per_wake_up() {
    let app = spawn_app().await;
    let change = running_change(&app).await;
    let path = format!("/api/changes/{change}/log_lines?follow=true");
    let mut followers = Vec::new();
    for _ in 0..20 {
        followers.push(Follower::open(&app, &path, None).await);
    }
    // Every follower is subscribed once it has answered; a first line shows it.
    write(&app, change, None, "hello", 1).await;
    for follower in &mut followers {
        assert_eq!(follower.next().await.unwrap().data["text"], "hello 0");
    }
    let before = follow_queries(&app).await;

    write(&app, change, None, "line", 90).await;
    finish(&app, change, "success").await;
    for follower in &mut followers {
        let events = follower.until_end().await;
        assert_eq!(lines_of(&events).len(), 91);
    }

    let after = follow_queries(&app).await;
    let (feed, catch_up) = (after.0 - before.0, after.1 - before.1);
    // 31 wake-ups (30 batches and the finish): at most one read each, and no follower fell
    // behind enough to read the database itself.
    assert!(feed <= 31.0, "{feed} feed reads");
    assert_eq!(catch_up, 0.0);
}

/// (feed, catch-up) reads made for followers so far, from `/metrics`.
async fn follow_queries(app: &TestApp) -> (f64, f64) {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |kind: &str| {
        let prefix = format!("gantry_log_follow_queries_total{{kind=\"{kind}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    (value("feed"), value("catch_up"))
}

#[tokio::test]
async fn following_with_a_filter_or_a_bad_last_event_id_is_refused() {
    let app = spawn_app().await;
    let change = running_change(&app).await;

    let filtered = app
        .get(&format!(
            "/api/changes/{change}/log_lines?follow=true&filter[stream_eq]=stdout"
        ))
        .await;
    let body = expect_status(filtered, 400).await;
    assert_eq!(first_error(&body)["source"]["parameter"], "follow");
    let bad_id = app
        .request(
            reqwest::Method::GET,
            &format!("/api/changes/{change}/log_lines?follow=true"),
        )
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    let body = expect_status(bad_id, 400).await;
    assert_eq!(first_error(&body)["source"]["header"], "Last-Event-ID");
    let bad_flag = app
        .get(&format!("/api/changes/{change}/log_lines?follow=yes"))
        .await;
    assert_eq!(bad_flag.status(), 400);
    let unknown = app
        .get(&format!(
            "/api/changes/{}/log_lines?follow=true",
            Uuid::now_v7()
        ))
        .await;
    assert_eq!(unknown.status(), 404);
}

/// Without `follow`: filters by step, stream and time, paged by line number.
#[tokio::test]
async fn log_lines_are_filtered_by_step_stream_and_time() {
    let app = spawn_app().await;
    let change = running_change(&app).await;
    let step = insert_step(&app, change, "running").await;
    write(&app, change, None, "change", 2).await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    write(&app, change, Some(step), "step", 2).await;
    let client = app.db().await;
    let error = Line {
        at: chrono::Utc::now(),
        stream: Stream::Stderr,
        text: "oops".into(),
    };
    logs::append(&client, change, Some(step), &[error])
        .await
        .unwrap();
    let get = |query: String| {
        let app = &app;
        async move {
            expect_status(
                app.get(&format!("/api/changes/{change}/log_lines?{query}"))
                    .await,
                200,
            )
            .await
        }
    };

    assert_eq!(
        texts(&get(format!("filter[step_id_eq]={step}")).await),
        ["step 0", "step 1", "oops"]
    );
    assert_eq!(
        texts(&get("filter[stream_eq]=stderr".into()).await),
        ["oops"]
    );
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339().replace('+', "%2B");
    assert_eq!(
        texts(&get(format!("filter[logged_at_lt]={}", at(middle))).await),
        ["change 0", "change 1"]
    );
    assert_eq!(
        texts(
            &get(format!(
                "filter[logged_at_gt]={}&filter[stream_eq]=stdout",
                at(middle)
            ))
            .await
        ),
        ["step 0", "step 1"]
    );
    for bad in [
        "filter[stream_eq]=stdin",
        "filter[step_id_eq]=nope",
        "filter[logged_at_gt]=yesterday",
        "filter[text_cont]=x",
    ] {
        let response = app
            .get(&format!("/api/changes/{change}/log_lines?{bad}"))
            .await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}
