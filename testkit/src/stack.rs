//! A whole Gantry per test: the real api and worker on a fresh database and RabbitMQ prefix, the
//! host's Docker engine, and Git repositories made from files in a temporary directory.

use std::path::Path;
use std::time::{Duration, Instant};

use gantry_shared::amqp::{self, Topology};
use gantry_shared::domain::ChangeStatus;
use gantry_shared::settings::Settings;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::repo::Repo;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestStack {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub settings: Settings,
    /// The worker's `/metrics` and `/health` port.
    pub metrics_port: u16,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    db_name: String,
    _git_cache: tempfile::TempDir,
    repos: Vec<Repo>,
}

pub fn test_settings() -> Settings {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configuration"));
    Settings::load_from(dir, "local").expect("the local configuration loads")
}

pub async fn spawn_stack() -> TestStack {
    spawn_stack_with(|_| {}).await
}

/// A stack whose settings `adjust` changes first (shorter leases, say).
pub async fn spawn_stack_with(adjust: impl FnOnce(&mut Settings)) -> TestStack {
    spawn_stack_with_worker_database(adjust, |url| url.to_owned()).await
}

/// A stack whose worker reaches the database at the URL `worker_url` makes of the api's (through
/// a [`crate::Gate`], say).
pub async fn spawn_stack_with_worker_database(
    adjust: impl FnOnce(&mut Settings),
    worker_url: impl FnOnce(&str) -> String,
) -> TestStack {
    let id = Uuid::new_v4().simple().to_string();
    let mut settings = test_settings();
    adjust(&mut settings);
    let db_name = format!("gantry_test_{id}");
    let (admin, conn) = tokio_postgres::connect(ADMIN_URL, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL is running");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .await
        .expect("creating the test database");
    let url = format!("postgres://postgres@127.0.0.1:5432/{db_name}");
    let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    gantry_migrations::run(&mut client)
        .await
        .expect("migrations apply");
    let git_cache = tempfile::tempdir().unwrap();
    settings.database.url = SecretString::from(url);
    settings.database.pool_size = 8;
    settings.api.port = 0;
    settings.worker.metrics_port = 0;
    settings.amqp.prefix = format!("test_{id}_");
    settings.worker.git_cache_dir = git_cache.path().to_owned();
    settings.worker.reaper_interval_seconds = 1;
    let shutdown = CancellationToken::new();
    let app = gantry_api::Application::build(settings.clone())
        .await
        .expect("the api starts");
    let port = app.port();
    let api_shutdown = shutdown.clone();
    let api_task = tokio::spawn(async move {
        let _ = app.run_until_stopped(api_shutdown).await;
    });
    let mut worker_settings = settings.clone();
    worker_settings.database.url =
        SecretString::from(worker_url(settings.database.url.expose_secret()));
    let worker = gantry_worker::Worker::build(worker_settings)
        .await
        .expect("the worker starts (Docker engine running?)");
    let metrics_port = worker.metrics_port();
    let worker_task = tokio::spawn(worker.run_until_stopped(shutdown.clone()));
    TestStack {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        token: settings.api.admin_token.expose_secret().to_owned(),
        settings,
        metrics_port,
        shutdown,
        tasks: vec![api_task, worker_task],
        db_name,
        _git_cache: git_cache,
        repos: Vec::new(),
    }
}

impl TestStack {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.expect("the api answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The worker's Prometheus endpoint.
    pub fn worker_metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// The text of a `/metrics` page (the api's `{base}/metrics` or the worker's), which must
    /// answer 200.
    pub async fn scrape(&self, url: &str) -> String {
        let response = self.client.get(url).send().await.expect("/metrics answers");
        assert_eq!(response.status(), 200, "{url}");
        response.text().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, attributes: Value) -> Value {
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                path,
                Some(json!({"data": {"attributes": attributes}})),
            )
            .await;
        assert_eq!(status, 201, "POST {path}: {body}");
        body
    }

    /// Creates the project of [`Self::project_with_repo`] on a new repository whose only file is
    /// the actions manifest `manifest`; the repository lives as long as the stack.
    pub async fn project_with_manifest(&mut self, manifest: &str) -> (String, String) {
        self.project_with_files(manifest, &[]).await
    }

    /// Like [`Self::project_with_manifest`], with more repository files (paths and contents) next to
    /// the manifest.
    pub async fn project_with_files(
        &mut self,
        manifest: &str,
        files: &[(&str, &str)],
    ) -> (String, String) {
        let mut all = vec![(".gantry/actions.yaml", manifest)];
        all.extend_from_slice(files);
        let repo = Repo::new(&all);
        let ids = self.project_with_repo(&repo.path()).await;
        self.repos.push(repo);
        ids
    }

    /// Replaces a properties document unconditionally; returns the new version.
    pub async fn set_properties(&self, id: &str, document: Value) -> i64 {
        let (status, body) = self
            .request(
                reqwest::Method::PATCH,
                &format!("/api/properties/{id}"),
                Some(json!({"data": {"attributes": {"data": document}}})),
            )
            .await;
        assert_eq!(status, 200, "PATCH properties {id}: {body}");
        body["data"]["attributes"]["version"].as_i64().unwrap()
    }

    /// Replaces the settings of environment `environment` of project `demo` (200 expected).
    pub async fn set_environment_settings(&self, environment: &str, data: Value) {
        let path = format!("/api/projects/demo/environments/{environment}/settings");
        let body = json!({"data": {"attributes": {"data": data}}});
        let (status, body) = self
            .request(reqwest::Method::PATCH, &path, Some(body))
            .await;
        assert_eq!(status, 200, "PATCH {path}: {body}");
    }

    /// Creates a change and waits until it is final; returns its id and its document with steps.
    pub async fn run_change(&self, action: &str, rev: &str) -> (String, Value) {
        let change_id = self.create_change(action, rev).await;
        let change = self.wait_final(&change_id).await;
        (change_id, change)
    }

    /// Creates project `demo`, environment `dev` and remote `origin` pointing at `repo`; returns
    /// the properties ids of the project and the environment.
    pub async fn project_with_repo(&self, repo: &Path) -> (String, String) {
        let project = self
            .post("/api/projects", json!({"code": "demo", "name": "Demo"}))
            .await;
        let env = self
            .post(
                "/api/projects/demo/environments",
                json!({"code": "dev", "name": "Development"}),
            )
            .await;
        self.post(
            "/api/projects/demo/git_remotes",
            json!({"name": "origin", "url": repo.to_str().unwrap()}),
        )
        .await;
        (properties_id(&project), properties_id(&env))
    }

    pub async fn create_change(&self, action: &str, rev: &str) -> String {
        let body = self
            .post(
                "/api/changes",
                json!({"project_code": "demo", "environment_code": "dev", "git_remote_name": "origin", "git_rev": rev, "action": action}),
            )
            .await;
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Polls the change until it is final (tests may poll; the product never does).
    pub async fn wait_final(&self, change_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let body = self
                .get(&format!("/api/changes/{change_id}?include=steps"))
                .await;
            let status = body["data"]["attributes"]["status_code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if status
                .parse::<ChangeStatus>()
                .is_ok_and(ChangeStatus::is_final)
            {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "change {change_id} still {status} after 180 s; log:\n{}",
                self.log(change_id).await.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn log(&self, change_id: &str) -> Vec<String> {
        let body = self
            .get(&format!("/api/changes/{change_id}/log_lines?limit=10000"))
            .await;
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["attributes"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn properties(&self, id: &str) -> (i64, Value) {
        let body = self.get(&format!("/api/properties/{id}")).await;
        (
            body["data"]["attributes"]["version"].as_i64().unwrap(),
            body["data"]["attributes"]["data"].clone(),
        )
    }

    /// Runs SQL against the stack's database (to stage faults).
    pub async fn sql(&self, statement: &str) -> u64 {
        self.db().await.execute(statement, &[]).await.unwrap()
    }

    /// A new connection to the stack's database.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(
            self.settings.database.url.expose_secret(),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        client
    }

    /// The containers the steps of `change_id` ran in (`step_containers`), in the order they
    /// were given their steps: step containers are parked before their steps are claimed, so
    /// their labels do not name the change.
    pub async fn containers_of(&self, change_id: &str) -> Vec<String> {
        self.db()
            .await
            .query(
                "SELECT c.container FROM step_containers c JOIN steps s ON s.id = c.step_id \
                 WHERE s.change_id = $1::text::uuid ORDER BY c.created_at, c.container",
                &[&change_id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
        if let Ok(connection) = amqp::connect(&self.settings.amqp, "gantry-test-cleanup").await
            && let Ok(channel) = connection.create_channel().await
        {
            let _ = amqp::delete_topology(&channel, &Topology::new(&self.settings.amqp)).await;
        }
        if let Ok((admin, conn)) = tokio_postgres::connect(ADMIN_URL, tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.db_name
                ))
                .await;
        }
    }
}

pub fn properties_id(resource: &Value) -> String {
    resource["data"]["relationships"]["properties"]["data"]["id"]
        .as_str()
        .expect("a properties relationship")
        .to_owned()
}
