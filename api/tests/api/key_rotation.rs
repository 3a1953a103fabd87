//! `rotate-key`: every ciphertext moves to the new key, every version stays readable with the new
//! key alone, a second run does nothing, concurrent writes are not lost, and a row that does not
//! decrypt stops the run naming it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gantry_api::rotate::{BATCH_SIZE, RowKey, Table, left_under_other_keys, rotate_keys};
use gantry_shared::crypto::{
    Cipher, envelope_key_id, git_remote_aad, properties_aad, secret_aad, step_properties_aad,
};
use gantry_shared::settings::EncryptionSettings;
use gantry_shared::store;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, TestServer, expect_status, first_error, properties_id, properties_path, spawn_app,
    uuid_of,
};

const NEW_KEY_ID: &str = "k2";
/// 32 bytes, base64.
const NEW_KEY: &str = "Z2FudHJ5LXJvdGF0aW9uLXRlc3Qta2V5LWItMzJieXQ=";

/// The new key, with the app's key as the previous one (what the rotation runs with).
fn rotating(app: &TestApp) -> Cipher {
    let old = &app.settings.encryption;
    Cipher::from_settings(&EncryptionSettings {
        previous_keys: BTreeMap::from([(old.key_id.clone(), old.key.clone())]),
        ..only_new_key()
    })
    .unwrap()
}

fn only_new_key() -> EncryptionSettings {
    EncryptionSettings {
        key_id: NEW_KEY_ID.into(),
        key: SecretString::from(NEW_KEY),
        previous_keys: BTreeMap::new(),
    }
}

/// The key id of every stored ciphertext.
async fn envelope_key_ids(app: &TestApp) -> Vec<String> {
    let sql = "SELECT document FROM properties UNION ALL SELECT document FROM properties_versions \
         UNION ALL SELECT password FROM git_remotes WHERE password IS NOT NULL \
         UNION ALL SELECT ssh_key_data FROM git_remotes WHERE ssh_key_data IS NOT NULL \
         UNION ALL SELECT data FROM secrets UNION ALL SELECT properties FROM steps WHERE properties IS NOT NULL";
    let rows = app.db().await.query(sql, &[]).await.unwrap();
    rows.iter()
        .map(|r| {
            envelope_key_id(&r.get::<_, Vec<u8>>(0))
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

async fn get_from(app: &TestApp, server: &TestServer, path: &str, status: u16) -> Value {
    let response = app
        .client
        .get(format!("{}{path}", server.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    expect_status(response, status).await
}

/// A step of `change` that ran with `properties`, sealed as the worker seals them.
async fn insert_step(app: &TestApp, change: Uuid, properties: &Value) -> Uuid {
    let id = Uuid::now_v7();
    let sealed = app
        .cipher()
        .encrypt_json(properties, &step_properties_aad(id));
    let sql = "INSERT INTO steps (id, change_id, position, action, name, has_command, status_code, properties) \
               VALUES ($1, $2, 0, 'default', 'default', true, 'success', $3)";
    app.db()
        .await
        .execute(sql, &[&id, &change, &sealed])
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn after_a_rotation_the_new_key_alone_reads_every_version_and_a_second_run_does_nothing() {
    let app = spawn_app().await;
    let project = properties_path(&app.create_project("demo").await);
    let mut project_versions = vec![json!({})];
    for n in 2..=4 {
        let data = json!({ "n": n, "password": format!("secret-{n}") });
        app.patch_properties(&project, data.clone()).await;
        project_versions.push(data);
    }
    let environment = properties_path(&app.create_environment("demo", "dev").await);
    app.patch_properties(&environment, json!({ "region": "eu" }))
        .await;
    let remote = json!({ "data": { "attributes": { "name": "origin", "url": "https://example.com/demo.git",
        "password": "remote-password", "ssh_key_data": "remote-ssh-key" } } });
    let remote = uuid_of(
        &expect_status(
            app.post_json("/api/projects/demo/git_remotes", &remote)
                .await,
            201,
        )
        .await,
    );
    app.create_secret("db", json!({ "DB_PASSWORD": "pw-1234" }))
        .await;
    let step_properties = json!({ "merged": true });
    let step = insert_step(&app, app.create_change().await, &step_properties).await;

    let report = rotate_keys(&app.pool, &rotating(&app)).await.unwrap();

    let re_encrypted = |table| report.table(table).re_encrypted;
    assert_eq!(re_encrypted(Table::Properties), 2);
    assert_eq!(re_encrypted(Table::PropertiesVersions), 6);
    assert_eq!(re_encrypted(Table::GitRemotes), 1);
    assert_eq!(re_encrypted(Table::Secrets), 1);
    assert_eq!(re_encrypted(Table::Steps), 1);
    let key_ids = envelope_key_ids(&app).await;
    assert_eq!(key_ids.len(), 12);
    assert!(key_ids.iter().all(|id| id == NEW_KEY_ID), "{key_ids:?}");
    assert_eq!(
        left_under_other_keys(&app.pool, NEW_KEY_ID).await.unwrap(),
        vec![]
    );
    let again = rotate_keys(&app.pool, &rotating(&app)).await.unwrap();
    assert_eq!(again.re_encrypted(), 0, "{again}");
    assert_eq!(again.table(Table::PropertiesVersions).already_current, 6);
    // A process still sealing with the old key writes behind the run: the check finds it.
    let late = BTreeMap::from([("LATE".to_owned(), "late-value".to_owned())]);
    gantry_shared::secrets::put(&app.db().await, &app.cipher(), "late", &late)
        .await
        .unwrap();
    assert_eq!(
        left_under_other_keys(&app.pool, NEW_KEY_ID).await.unwrap(),
        vec![(Table::Secrets, 1)]
    );
    // The app still configured with the old key alone can no longer read them.
    let document = expect_status(app.get(&project).await, 500).await;
    let detail = first_error(&document)["detail"].as_str().unwrap();
    assert!(
        detail.contains("encrypted with key `k2`, which is not configured"),
        "{detail}"
    );

    let server = app
        .spawn_server_with(|s| s.encryption = only_new_key())
        .await;
    for (n, data) in project_versions.iter().enumerate() {
        let path = format!("{project}/versions/{}", n + 1);
        let version = get_from(&app, &server, &path, 200).await;
        assert_eq!(version["data"]["attributes"]["data"], *data, "{path}");
    }
    let current = get_from(&app, &server, &environment, 200).await;
    assert_eq!(current["data"]["attributes"]["version"], 2);
    assert_eq!(
        current["data"]["attributes"]["data"],
        json!({ "region": "eu" })
    );
    let env_v1 = get_from(&app, &server, &format!("{environment}/versions/1"), 200).await;
    assert_eq!(env_v1["data"]["attributes"]["data"], json!({}));
    let secret = get_from(&app, &server, "/api/secrets/db", 200).await;
    assert_eq!(secret["data"]["attributes"]["keys"], json!(["DB_PASSWORD"]));
    let step = get_from(&app, &server, &format!("/api/steps/{step}"), 200).await;
    assert_eq!(step["data"]["attributes"]["properties"], step_properties);
    let path = format!("/api/projects/demo/git_remotes/{remote}");
    let shown = get_from(&app, &server, &path, 200).await;
    assert_eq!(shown["data"]["attributes"]["password"], "{{hidden}}");
    // The API never decrypts remote credentials (the worker does): check them with the new key.
    let new_only = Cipher::from_settings(&only_new_key()).unwrap();
    let row = app
        .db()
        .await
        .query_one(
            "SELECT password, ssh_key_data FROM git_remotes WHERE id = $1",
            &[&remote],
        )
        .await
        .unwrap();
    let decrypt = |i: usize, column: &str| {
        new_only
            .decrypt_str(&row.get::<_, Vec<u8>>(i), &git_remote_aad(remote, column))
            .unwrap()
    };
    assert_eq!(decrypt(0, "password"), "remote-password");
    assert_eq!(decrypt(1, "ssh_key_data"), "remote-ssh-key");
}

#[tokio::test]
async fn a_table_larger_than_a_batch_is_rotated_in_several_batches() {
    let app = spawn_app().await;
    let cipher = app.cipher();
    // More than two batches, the last one partial.
    let rows = 2 * BATCH_SIZE + 100;
    let names: Vec<String> = (0..rows).map(|i| format!("s{i:04}")).collect();
    let sealed: Vec<Vec<u8>> = names
        .iter()
        .map(|name| cipher.encrypt(br#"{"A":"x"}"#, &secret_aad(name)))
        .collect();
    app.db()
        .await
        .execute(
            "INSERT INTO secrets (name, data) SELECT * FROM unnest($1::text[], $2::bytea[])",
            &[&names, &sealed],
        )
        .await
        .unwrap();

    let report = rotate_keys(&app.pool, &rotating(&app)).await.unwrap();

    assert_eq!(report.table(Table::Secrets).re_encrypted, rows as u64);
    let key_ids = envelope_key_ids(&app).await;
    assert_eq!(key_ids.len(), rows as usize);
    assert!(key_ids.iter().all(|id| id == NEW_KEY_ID));
    let again = rotate_keys(&app.pool, &rotating(&app)).await.unwrap();
    assert_eq!(again.table(Table::Secrets).already_current, rows as u64);
    assert_eq!(again.re_encrypted(), 0);
}

/// Waits until some session of the test database waits for a row lock.
async fn until_a_session_waits_for_a_lock(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let sql = "SELECT count(*) FROM pg_stat_activity \
               WHERE datname = current_database() AND wait_event_type = 'Lock'";
    while app
        .db()
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(Instant::now() < deadline, "no session waited for a lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_write_made_while_the_rotation_runs_is_not_lost() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    let id = properties_id(&path);
    let mut writer = app.db().await;
    let tx = writer.transaction().await.unwrap();
    let written = json!({ "written": "during the rotation" });
    let sealed = app.cipher().encrypt_json(&written, &properties_aad(id, 2));
    tx.execute(
        "UPDATE properties SET version = 2, document = $2 WHERE id = $1",
        &[&id, &sealed],
    )
    .await
    .unwrap();

    let (pool, cipher) = (app.pool.clone(), rotating(&app));
    let rotation = tokio::spawn(async move { rotate_keys(&pool, &cipher).await });
    until_a_session_waits_for_a_lock(&app).await;
    tx.commit().await.unwrap();
    let report = rotation.await.unwrap().unwrap();

    assert_eq!(report.table(Table::Properties).re_encrypted, 1);
    let new_only = Cipher::from_settings(&only_new_key()).unwrap();
    let current = store::load(&app.db().await, &new_only, id, false)
        .await
        .unwrap();
    assert_eq!((current.version, current.document), (2, written));
}

#[tokio::test]
async fn a_row_that_does_not_decrypt_stops_the_run_naming_it_and_a_rerun_finishes() {
    let app = spawn_app().await;
    let path = app.project_properties().await;
    app.create_secret("a", json!({ "A": "one-1" })).await;
    app.create_secret("b", json!({ "B": "two-2" })).await;
    app.flip_last_byte("secrets", "data", "name = 'b'").await;

    let error = rotate_keys(&app.pool, &rotating(&app)).await.unwrap_err();

    assert_eq!(error.table, Table::Secrets);
    assert_eq!(error.row, Some(RowKey::Name("b".into())));
    let message = error.to_string();
    assert!(
        message.starts_with(
            "re-encrypting secrets row `b` failed: the ciphertext failed authentication"
        ),
        "{message}"
    );
    assert!(message.contains("rolled back"), "{message}");
    assert_eq!(error.committed.table(Table::Properties).re_encrypted, 1);
    let properties_key = "SELECT document FROM properties WHERE id = $1";
    let row = app
        .db()
        .await
        .query_one(properties_key, &[&properties_id(&path)])
        .await
        .unwrap();
    assert_eq!(envelope_key_id(&row.get::<_, Vec<u8>>(0)), Some(NEW_KEY_ID));
    let secret_a = "SELECT data FROM secrets WHERE name = 'a'";
    let row = app.db().await.query_one(secret_a, &[]).await.unwrap();
    let old_key = app.settings.encryption.key_id.as_str();
    assert_eq!(envelope_key_id(&row.get::<_, Vec<u8>>(0)), Some(old_key));

    expect_status(app.delete("/api/secrets/b").await, 204).await;
    let rerun = rotate_keys(&app.pool, &rotating(&app)).await.unwrap();
    assert_eq!(rerun.table(Table::Secrets).re_encrypted, 1);
    assert_eq!(rerun.table(Table::Properties).already_current, 1);
}

/// Runs `gantry-api rotate-key` as an operator would: the new key in `encryption.key_id`/`key`,
/// the old one under `encryption.previous_keys`, all from the environment.
fn rotate_key_command(app: &TestApp) -> std::process::Output {
    use secrecy::ExposeSecret;
    let old = &app.settings.encryption;
    std::process::Command::new(env!("CARGO_BIN_EXE_gantry-api"))
        .arg("rotate-key")
        .env(
            "GANTRY_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../configuration"),
        )
        .env(
            "GANTRY_DATABASE__URL",
            app.settings.database.url.expose_secret(),
        )
        .env("GANTRY_ENCRYPTION__KEY_ID", NEW_KEY_ID)
        .env("GANTRY_ENCRYPTION__KEY", NEW_KEY)
        .env(
            format!("GANTRY_ENCRYPTION__PREVIOUS_KEYS__{}", old.key_id),
            old.key.expose_secret(),
        )
        .output()
        .expect("gantry-api runs")
}

#[tokio::test]
async fn the_rotate_key_command_rotates_everything_and_a_second_run_finds_nothing_to_do() {
    let app = spawn_app().await;
    let project = properties_path(&app.create_project("demo").await);
    app.patch_properties(&project, json!({ "a": 1 })).await;
    app.create_secret("db", json!({ "DB_PASSWORD": "pw-1234" }))
        .await;

    let first = rotate_key_command(&app);

    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("`k2`"), "{stdout}");
    let key_ids = envelope_key_ids(&app).await;
    assert_eq!(key_ids.len(), 4, "{key_ids:?}");
    assert!(key_ids.iter().all(|id| id == NEW_KEY_ID), "{key_ids:?}");
    let second = rotate_key_command(&app);
    assert!(second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stdout).contains(" 0 in all"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
}
