//! The group commit of `POST /api/changes`: creations that arrive while earlier ones are being
//! written share one statement and one plan message; a creation the batch cannot write is
//! answered on its own and holds back no other.
//!
//! The tests hold every batch at its insert into the outbox (a table lock in a transaction of the
//! test's own) so that the creations sent meanwhile wait for a batch slot together.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use gantry_shared::messages::Message;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, change_attributes, first_error, spawn_app_with};

/// Batches the api writes at once (`batch::CONCURRENT_BATCHES`).
const SLOTS: usize = 2;

/// The change ids each plan message in the outbox names, oldest message first.
async fn plan_messages(app: &TestApp) -> Vec<Vec<Uuid>> {
    app.outbox()
        .await
        .into_iter()
        .map(|message| match message {
            Message::PlanChangeV1 { change_id } => vec![change_id],
            Message::PlanChangesV1 { change_ids } => change_ids,
            other => panic!("not a plan message: {other:?}"),
        })
        .collect()
}

/// An api with connections enough for every batch slot, the relay (which waits at the lock
/// too) and the creations written on their own after a failed batch.
async fn spawn_app() -> TestApp {
    let app = spawn_app_with(|s| s.database.pool_size = 2 * SLOTS).await;
    app.create_change_targets().await;
    app
}

/// Batch statements of the api waiting for the test's lock.
async fn blocked_batches(app: &TestApp) -> i64 {
    app.db()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE 'WITH input AS%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn wait_blocked(app: &TestApp, batches: i64) {
    for _ in 0..200 {
        if blocked_batches(app).await >= batches {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{batches} batches never waited for the outbox lock");
}

/// Posts every creation at once and answers each with its status and document.
async fn post_all(app: &TestApp, bodies: &[Value]) -> Vec<(u16, Value)> {
    join_all(bodies.iter().map(|body| async move {
        let response = app.post_change(body.clone()).await;
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    }))
    .await
}

/// Every created change is named by exactly one plan message; nothing else is.
fn assert_planned_once(messages: &[Vec<Uuid>], created: &[Uuid]) {
    let mut named: HashMap<Uuid, usize> = HashMap::new();
    for id in messages.iter().flatten() {
        *named.entry(*id).or_default() += 1;
    }
    assert_eq!(named.len(), created.len(), "{messages:?}");
    for id in created {
        assert_eq!(named.get(id), Some(&1), "{id} in {messages:?}");
    }
}

fn created_ids(answers: &[(u16, Value)]) -> Vec<Uuid> {
    answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, document)| document["data"]["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn creations_sent_together_share_a_plan_message_and_a_missing_target_is_refused_alone() {
    let app = spawn_app().await;
    let mut db = app.db().await;
    let lock = db.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
        .await
        .unwrap();

    // More creations than batch slots, sent at once: at most that many batches wait for the lock,
    // so either one of them holds several creations, or every slot holds one and the rest wait
    // together for the next batch.
    let mut bodies = vec![change_attributes(json!({})); 4 * SLOTS];
    bodies.insert(3, change_attributes(json!({ "environment_code": "prod" })));
    bodies.push(change_attributes(json!({ "git_remote_name": "fork" })));
    let sent = post_all(&app, &bodies);
    let released = async {
        wait_blocked(&app, 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        lock.commit().await.unwrap();
    };
    let (answers, ()) = tokio::join!(sent, released);

    for (i, (status, document)) in answers.iter().enumerate() {
        let expected = match i {
            3 => Some("/data/attributes/environment_code"),
            i if i == 4 * SLOTS + 1 => Some("/data/attributes/git_remote_name"),
            _ => None,
        };
        match expected {
            None => assert_eq!(*status, 201, "{document}"),
            Some(pointer) => {
                assert_eq!(*status, 422, "{document}");
                assert_eq!(first_error(document)["source"]["pointer"], pointer);
            }
        }
    }
    let created = created_ids(&answers);
    assert_eq!(created.len(), 4 * SLOTS);
    let messages = plan_messages(&app).await;
    assert_planned_once(&messages, &created);
    assert!(
        messages.iter().any(|ids| ids.len() > 1),
        "no batch of several creations: {messages:?}"
    );
    assert_eq!(app.count("changes").await, created.len() as i64);
    let events: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(DISTINCT target) FROM events WHERE type = 'api:changes:create'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, created.len() as i64, "one audit event per change");
}

#[tokio::test]
async fn a_creation_the_database_refuses_holds_back_no_other_of_its_batch() {
    let app = spawn_app().await;
    let db = app.db().await;
    db.batch_execute(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'poisoned creation'; END $$; \
         CREATE TRIGGER refuse_poison BEFORE INSERT ON changes FOR EACH ROW \
         WHEN (NEW.metadata ? 'poison') EXECUTE FUNCTION refuse_poison()",
    )
    .await
    .unwrap();
    drop(db);
    let mut db = app.db().await;
    let lock = db.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
        .await
        .unwrap();

    // Every slot taken by a batch of one, each sent once the one before waits at the lock; then
    // the refused creation among others, which wait for the next batch together.
    let first = join_all((0..SLOTS).map(|i| {
        let app = &app;
        async move {
            wait_blocked(app, i as i64).await;
            post_all(app, &[change_attributes(json!({}))])
                .await
                .remove(0)
        }
    }));
    let mut bodies = vec![change_attributes(json!({})); 5];
    bodies.insert(
        2,
        change_attributes(json!({ "metadata": { "poison": true } })),
    );
    let later = async {
        wait_blocked(&app, SLOTS as i64).await;
        post_all(&app, &bodies).await
    };
    let released = async {
        wait_blocked(&app, SLOTS as i64).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        lock.commit().await.unwrap();
    };
    let (first, later, ()) = tokio::join!(first, later, released);

    for (status, document) in &first {
        assert_eq!(*status, 201, "{document}");
    }
    for (i, (status, document)) in later.iter().enumerate() {
        match i {
            2 => {
                assert_eq!(*status, 500, "{document}");
                assert!(!document.to_string().contains("poisoned"), "{document}");
            }
            _ => assert_eq!(*status, 201, "{document}"),
        }
    }
    let created: Vec<Uuid> = created_ids(&first)
        .into_iter()
        .chain(created_ids(&later))
        .collect();
    assert_eq!(created.len(), SLOTS + 5);
    let messages = plan_messages(&app).await;
    assert_planned_once(&messages, &created);
    // The batch the refusal failed was written again one creation at a time: the five others
    // of it each with a message of its own (the single creation's), the first ones each in a
    // batch of one.
    let single = app
        .outbox()
        .await
        .into_iter()
        .filter(|m| matches!(m, Message::PlanChangeV1 { .. }))
        .count();
    assert_eq!(single, 5, "{messages:?}");
    assert!(messages.iter().all(|ids| ids.len() == 1), "{messages:?}");
    assert_eq!(app.count("changes").await, created.len() as i64);
}
