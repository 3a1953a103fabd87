//! Starts the real API on port 0 against its own fresh PostgreSQL database and RabbitMQ queue
//! prefix, and offers small request helpers. Dropping the [`TestApp`] stops the server and removes
//! the database and queues (best effort).

use std::path::Path;
use std::time::Duration;

use deadpool_postgres::Pool;
use gantry_api::Application;
use gantry_shared::amqp::{self, Topology};
use gantry_shared::crypto::Cipher;
use gantry_shared::settings::{AmqpSettings, Settings};
use reqwest::{RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub token: String,
    pub pool: Pool,
    pub settings: Settings,
    /// The server's `postgres` database, where test databases are made and dropped.
    admin_url: String,
    database: String,
    shutdown: CancellationToken,
}

fn configuration_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configuration"))
}

/// The URL of database `name` on the server of `url`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

async fn admin_connection(
    admin_url: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a last say on the settings (after the test database is made).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings =
        Settings::load_from(configuration_dir(), "local").expect("loading the test settings");
    if std::env::var_os("TEST_LOG").is_some() {
        // Kept for the whole test process: dropping the guard would stop tracing.
        std::mem::forget(gantry_shared::telemetry::init(
            &settings.telemetry,
            "gantry-api",
        ));
    }
    let id = Uuid::new_v4().simple().to_string();
    let database = format!("gantry_test_{id}");
    let admin_url = with_database(settings.database.url.expose_secret(), "postgres");
    admin_connection(&admin_url)
        .await
        .expect("connecting as admin")
        .batch_execute(&format!("CREATE DATABASE \"{database}\""))
        .await
        .expect("creating the test database");
    let url = with_database(settings.database.url.expose_secret(), &database);
    settings.database.url = SecretString::from(url);
    settings.database.pool_size = 4;
    gantry_api::migrate::run(&settings.database)
        .await
        .expect("migrating the test database");
    settings.api.port = 0;
    settings.amqp.prefix = format!("test_{id}_");
    configure(&mut settings);

    let application = Application::build(settings.clone())
        .await
        .expect("building the application");
    let address = format!("http://127.0.0.1:{}", application.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(application.run_until_stopped(shutdown.clone()));
    let pool = gantry_shared::db::pool(&settings.database).expect("creating the test pool");
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        token: settings.api.admin_token.expose_secret().to_owned(),
        pool,
        settings,
        admin_url,
        database,
        shutdown,
    }
}

/// Another API server on a [`TestApp`]'s database (e.g. with other encryption keys); it stops
/// when dropped and leaves the database to its app.
pub struct TestServer {
    pub address: String,
    shutdown: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Starts another server on this app's database with `configure` applied to a copy of its
    /// settings.
    pub async fn spawn_server_with(&self, configure: impl FnOnce(&mut Settings)) -> TestServer {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        let application = Application::build(settings)
            .await
            .expect("building the second application");
        let address = format!("http://127.0.0.1:{}", application.port());
        let shutdown = CancellationToken::new();
        tokio::spawn(application.run_until_stopped(shutdown.clone()));
        TestServer { address, shutdown }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with the admin token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(reqwest::Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.request(reqwest::Method::PATCH, path)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    /// `PUT /api/secrets/{name}` with `data` as the key/value map.
    pub async fn put_secret(&self, name: &str, data: Value) -> Response {
        let body = json!({ "data": { "type": "secrets", "attributes": { "data": data } } });
        self.put_raw_secret(name, &body.to_string()).await
    }

    /// `PUT /api/secrets/{name}` with `body` sent as it is.
    pub async fn put_raw_secret(&self, name: &str, body: &str) -> Response {
        self.request(reqwest::Method::PUT, &format!("/api/secrets/{name}"))
            .header("Content-Type", "application/vnd.api+json")
            .body(body.to_owned())
            .send()
            .await
            .expect("PUT")
    }

    pub async fn db(&self) -> deadpool_postgres::Client {
        self.pool.get().await.expect("a test database connection")
    }

    pub fn cipher(&self) -> Cipher {
        Cipher::from_settings(&self.settings.encryption).unwrap()
    }
}

/// The attributes of a change of demo/dev from origin at `main`, with `overrides` applied.
pub fn change_attributes(overrides: Value) -> Value {
    let mut base = json!({ "project_code": "demo", "environment_code": "dev", "git_remote_name": "origin", "git_rev": "main" });
    for (key, value) in overrides.as_object().expect("overrides are an object") {
        base[key] = value.clone();
    }
    base
}

/// A properties PATCH body, with or without the version it was made against.
pub fn properties_document(data: Value, version: Option<i64>) -> Value {
    let mut attributes = json!({ "data": data });
    if let Some(version) = version {
        attributes["version"] = json!(version);
    }
    json!({ "data": { "type": "properties", "attributes": attributes } })
}

/// The properties link of a project or environment document.
pub fn properties_path(owner: &Value) -> String {
    owner["data"]["relationships"]["properties"]["links"]["related"]
        .as_str()
        .expect("a properties link")
        .to_owned()
}

/// The id of a single-resource document, as a UUID.
pub fn uuid_of(document: &Value) -> Uuid {
    document["data"]["id"].as_str().unwrap().parse().unwrap()
}

/// The id at the end of a properties path.
pub fn properties_id(path: &str) -> Uuid {
    path.rsplit('/').next().unwrap().parse().unwrap()
}

/// The ids of the resources of a list document, in order.
pub fn ids(document: &Value) -> Vec<String> {
    document["data"]
        .as_array()
        .expect("a list document")
        .iter()
        .map(|resource| resource["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts the status and returns the JSON body (`null` when empty).
pub async fn expect_status(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("reading the body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("a JSON body")
    }
}

/// The first JSON:API error of a document.
pub fn first_error(document: &Value) -> &Value {
    &document["errors"][0]
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let amqp = self.settings.amqp.clone();
        let admin_url = std::mem::take(&mut self.admin_url);
        let database = std::mem::take(&mut self.database);
        // A runtime of its own: Drop cannot await, and the test's runtime may be shutting down.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    cleanup(&amqp, &admin_url, &database),
                )
                .await;
            });
        });
        let _ = cleanup.join();
    }
}

async fn cleanup(settings: &AmqpSettings, admin_url: &str, database: &str) {
    if let Ok(connection) = amqp::connect(settings, "gantry-api-test-cleanup").await {
        if let Ok(channel) = connection.create_channel().await {
            let _ = amqp::delete_topology(&channel, &Topology::new(settings)).await;
        }
        let _ = connection.close(200, "test done".into()).await;
    }
    if let Ok(client) = admin_connection(admin_url).await {
        let _ = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ))
            .await;
    }
}
