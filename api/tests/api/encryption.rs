//! Encryption at rest: no plaintext in any column, and a tampered ciphertext is reported as such.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, expect_status, first_error, properties_document as document, properties_id,
    properties_path, spawn_app,
};

const INTEGRITY: &str = "failed an integrity check (tampered with, or bound to another record)";

/// Every stored byte of the tables that hold what users send (ciphertexts and the plain columns
/// beside them, audit events and logs), labelled by table and row.
async fn stored_columns(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    let sql = "\
        SELECT 'properties ' || id, document FROM properties \
        UNION ALL SELECT 'properties_versions ' || properties_id || ':' || version, document FROM properties_versions \
        UNION ALL SELECT 'git_remotes ' || id, convert_to(concat_ws(' ', name, url, username), 'UTF8') FROM git_remotes \
        UNION ALL SELECT 'git_remotes.password ' || id, password FROM git_remotes WHERE password IS NOT NULL \
        UNION ALL SELECT 'git_remotes.ssh_key_data ' || id, ssh_key_data FROM git_remotes WHERE ssh_key_data IS NOT NULL \
        UNION ALL SELECT 'secrets ' || name, convert_to(name, 'UTF8') || data FROM secrets \
        UNION ALL SELECT 'events ' || id, convert_to(concat_ws(' ', type, target, payload::text), 'UTF8') FROM events \
        UNION ALL SELECT 'log_lines ' || id, convert_to(text, 'UTF8') FROM log_lines";
    let rows = app.db().await.query(sql, &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// The canary, and the part of its base64 that is the same wherever it sits in a longer text
/// (one per alignment: the first and last groups depend on the neighbouring bytes).
fn needles(canary: &str) -> Vec<Vec<u8>> {
    let mut needles = vec![canary.as_bytes().to_vec()];
    for offset in 0..3 {
        let mut text = vec![b'x'; offset];
        text.extend_from_slice(canary.as_bytes());
        let encoded = STANDARD.encode(&text);
        let start = if offset == 0 { 0 } else { 4 };
        needles.push(encoded.as_bytes()[start..encoded.len() - 4].to_vec());
    }
    needles
}

#[tokio::test]
async fn no_column_holds_a_canary_in_clear_or_in_base64() {
    let app = spawn_app().await;
    let canary = format!("canary-{}", Uuid::new_v4().simple());
    let project = properties_path(&app.create_project("demo").await);
    for n in 1..=3 {
        app.patch_properties(&project, json!({ "db": { "password": canary, "n": n } }))
            .await;
    }
    let environment = properties_path(&app.create_environment("demo", "dev").await);
    app.patch_properties(&environment, json!({ "token": canary }))
        .await;
    let remote = json!({ "data": { "attributes": { "name": "origin", "url": "https://example.com/demo.git",
        "user": "deploy", "password": canary, "ssh_key_data": format!("-----BEGIN KEY-----\n{canary}\n-----END KEY-----") } } });
    expect_status(
        app.post_json("/api/projects/demo/git_remotes", &remote)
            .await,
        201,
    )
    .await;
    app.create_secret("db", json!({ "TOKEN": canary })).await;
    let shown = expect_status(app.get(&project).await, 200).await;
    assert_eq!(
        shown["data"]["attributes"]["data"]["db"]["password"],
        canary
    );

    let columns = stored_columns(&app).await;

    // 2 properties, 4 + 2 versions, a remote and its 2 credentials, a secret, 8 events
    assert!(columns.len() >= 20, "{} columns", columns.len());
    for (label, bytes) in &columns {
        for needle in needles(&canary) {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{label} holds `{}`",
                String::from_utf8_lossy(&needle)
            );
        }
    }
}

#[tokio::test]
async fn a_tampered_properties_document_is_a_500_saying_so_and_nothing_is_written() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    app.patch_properties(&path, json!({ "password": "canary-tamper" }))
        .await;
    let id = properties_id(&path);
    app.flip_last_byte("properties", "document", &format!("id = '{id}'"))
        .await;

    let response = app.get(&path).await;

    let text = response.text().await.unwrap();
    assert!(!text.contains("canary"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let error = first_error(&body);
    assert_eq!(error["status"], "500");
    assert_eq!(
        error["detail"].as_str().unwrap(),
        format!(
            "the stored properties {INTEGRITY} and cannot be read; restore it from a backup or set it again"
        )
    );
    let update = app
        .patch_json(&path, &document(json!({ "a": 1 }), None))
        .await;
    expect_status(update, 500).await;
    assert_eq!(app.count("properties_versions").await, 2);
    // The history keeps its own copy, which is intact.
    let version = expect_status(app.get(&format!("{path}/versions/2")).await, 200).await;
    assert_eq!(
        version["data"]["attributes"]["data"]["password"],
        "canary-tamper"
    );
}

#[tokio::test]
async fn a_tampered_or_moved_secret_is_a_500_saying_so() {
    let app = spawn_app().await;
    app.create_secret("a", json!({ "A": "canary-a" })).await;
    app.create_secret("b", json!({ "B": "canary-b" })).await;
    let moved =
        "UPDATE secrets SET data = (SELECT data FROM secrets WHERE name = 'a') WHERE name = 'b'";
    app.db().await.execute(moved, &[]).await.unwrap();

    let document = expect_status(app.get("/api/secrets/b").await, 500).await;

    let detail = first_error(&document)["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("the stored secret `b` {INTEGRITY}")),
        "{detail}"
    );
    expect_status(app.get("/api/secrets/a").await, 200).await;
    app.flip_last_byte("secrets", "data", "name = 'a'").await;
    let document = expect_status(app.get("/api/secrets/a").await, 500).await;
    assert!(
        first_error(&document)["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("the stored secret `a` {INTEGRITY}"))
    );
    expect_status(app.get("/api/secrets").await, 500).await;
}
