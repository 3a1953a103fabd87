//! Tokens with roles, and what every route answers to each kind of caller: no token, a bad one,
//! a revoked one, a viewer of the project, an operator of another project. The routes and what
//! they need come from the router's own table, so a new route is in the matrix by itself.

use gantry_api::auth::{Access, Role};
use gantry_api::router::operations;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, change_attributes, expect_status, first_error, ids, properties_path, spawn_app,
    spawn_app_with,
};

/// What the matrix runs against: project demo (with a change, a step, a remote) and project
/// other, and tokens for the callers.
struct World {
    app: TestApp,
    change: Uuid,
    step: Uuid,
    properties: String,
    remote: String,
    viewer: String,
    revoked: String,
    outsider: String,
    viewer_token_id: String,
}

async fn world() -> World {
    // The 401 matrix fails authentication far more often than the limit allows a minute.
    let app = spawn_app_with(|settings| settings.api.auth_failures_per_minute = 100_000).await;
    app.create_change_targets().await;
    app.create_project("other").await;
    app.create_environment("other", "dev").await;
    let demo = expect_status(app.get("/api/projects/demo").await, 200).await;
    let properties = properties_path(&demo)
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let remotes = expect_status(app.get("/api/projects/demo/git_remotes").await, 200).await;
    let remote = ids(&remotes)[0].clone();
    let change = app.create_change().await;
    let step = insert_step(&app, change).await;
    let (viewer_token_id, viewer) = make_token(&app, "vera", "viewer", Some("demo")).await;
    let (revoked_id, revoked) = make_token(&app, "rex", "admin", None).await;
    expect_status(app.delete(&format!("/api/tokens/{revoked_id}")).await, 204).await;
    let (_, outsider) = make_token(&app, "otto", "operator", Some("other")).await;
    World {
        app,
        change,
        step,
        properties,
        remote,
        viewer,
        revoked,
        outsider,
        viewer_token_id,
    }
}

/// Makes a token with the admin token; returns its id and the token.
async fn make_token(
    app: &TestApp,
    user: &str,
    role: &str,
    project: Option<&str>,
) -> (String, String) {
    let body = json!({ "data": { "attributes": { "user_name": user, "role": role, "project_code": project } } });
    let made = expect_status(app.post_json("/api/tokens", &body).await, 201).await;
    let token = made["data"]["attributes"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (made["data"]["id"].as_str().unwrap().to_owned(), token)
}

async fn insert_step(app: &TestApp, change: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    app.db()
        .await
        .execute(
            "INSERT INTO steps (id, change_id, position, action, name, has_command, status_code) \
             VALUES ($1, $2, 0, 'job', 'job', true, 'waiting')",
            &[&id, &change],
        )
        .await
        .unwrap();
    id
}

impl World {
    /// `pattern` with its parameters filled in from this world.
    fn path(&self, pattern: &str) -> String {
        let id = if pattern.starts_with("/api/changes/") {
            self.change.to_string()
        } else if pattern.starts_with("/api/steps/") {
            self.step.to_string()
        } else if pattern.starts_with("/api/properties/") {
            self.properties.clone()
        } else if pattern.starts_with("/api/tokens/") {
            self.viewer_token_id.clone()
        } else {
            self.remote.clone()
        };
        pattern
            .replace("{project}", "demo")
            .replace("{environment}", "dev")
            .replace("{version}", "1")
            .replace("{name}", "db")
            .replace("{id}", &id)
    }

    /// Calls every `/api` route with `token` and asserts the status `expected` gives for what
    /// the route needs.
    async fn expect_on_every_route(&self, token: &str, expected: impl Fn(Access) -> u16) {
        for (method, pattern, access) in api_operations() {
            let path = self.path(&pattern);
            let (status, body) = self.call(&method, &path, Some(token)).await;
            assert_eq!(status, expected(access), "{method} {path}: {body}");
        }
    }

    async fn call(&self, method: &Method, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .request(method.clone(), self.app.url(path))
            .header("Content-Type", "application/vnd.api+json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if [Method::POST, Method::PATCH, Method::PUT].contains(method) {
            request = request.body(r#"{"data":{"attributes":{}}}"#);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn api_operations() -> Vec<(Method, String, Access)> {
    operations()
        .into_iter()
        .filter(|(_, path, _)| path.starts_with("/api/"))
        .map(|(method, path, access)| {
            (
                Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                path,
                access,
            )
        })
        .collect()
}

#[tokio::test]
async fn without_a_good_token_every_route_is_401() {
    let world = world().await;
    for (method, pattern, _) in api_operations() {
        let path = world.path(&pattern);
        for token in [None, Some("not-a-token"), Some(world.revoked.as_str())] {
            let (status, _) = world.call(&method, &path, token).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}");
        }
    }
}

#[tokio::test]
async fn a_viewer_reads_its_project_and_changes_nothing() {
    let world = world().await;
    world
        .expect_on_every_route(&world.viewer, |access| match access {
            Access::Anyone => 200,
            Access::Server(_) => 403,
            Access::Project(Role::Viewer, _) => 200,
            Access::Project(..) => 403,
            Access::Handler(Role::Viewer) => 200,
            Access::Handler(_) => 403,
        })
        .await;
    assert_unchanged(&world).await;
}

#[tokio::test]
async fn an_operator_of_another_project_finds_nothing_of_this_one() {
    let world = world().await;
    world
        .expect_on_every_route(&world.outsider, |access| match access {
            Access::Anyone => 200,
            Access::Server(_) => 403,
            Access::Project(..) => 404,
            Access::Handler(Role::Viewer) => 200,
            // An operator may create changes, and this body is refused before anything else.
            Access::Handler(Role::Operator) => 422,
            Access::Handler(_) => 403,
        })
        .await;
    let token = Some(world.outsider.as_str());
    let (_, projects) = world.call(&Method::GET, "/api/projects", token).await;
    assert_eq!(ids(&projects), ["other"]);
    let (_, changes) = world.call(&Method::GET, "/api/changes", token).await;
    assert_eq!(ids(&changes), Vec::<String>::new());
    // A change of this project is refused as if the project did not exist.
    let refused = world
        .app
        .client
        .post(world.app.url("/api/changes"))
        .bearer_auth(&world.outsider)
        .json(&json!({ "data": { "attributes": change_attributes(json!({})) } }))
        .send()
        .await
        .unwrap();
    let refused = expect_status(refused, 422).await;
    assert_eq!(
        first_error(&refused)["source"]["pointer"],
        "/data/attributes/project_code"
    );
    assert_unchanged(&world).await;
}

/// Nothing the matrix sent changed anything: no new change, no new properties version, the step
/// still waiting, no token added or revoked.
async fn assert_unchanged(world: &World) {
    let db = world.app.db().await;
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM changes").await, 1);
    assert_eq!(
        count("SELECT max(version) FROM properties_versions").await,
        1
    );
    assert_eq!(count("SELECT count(*) FROM api_tokens").await, 3);
    assert_eq!(
        count("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM steps WHERE status_code = 'waiting'").await,
        1
    );
    let change = expect_status(
        world
            .app
            .get(&format!("/api/changes/{}", world.change))
            .await,
        200,
    )
    .await;
    assert_ne!(change["data"]["attributes"]["status_code"], "cancelled");
}

#[tokio::test]
async fn an_operator_runs_changes_of_its_project_as_itself_and_a_token_is_shown_once() {
    let app = spawn_app().await;
    app.create_change_targets().await;
    let (id, token) = make_token(&app, "olga", "operator", Some("demo")).await;
    assert!(token.starts_with("gty_") && token.len() > 60, "{token}");

    let created = app
        .client
        .post(app.url("/api/changes"))
        .bearer_auth(&token)
        .json(&json!({ "data": { "attributes": change_attributes(json!({})) } }))
        .send()
        .await
        .unwrap();

    let change = expect_status(created, 201).await;
    assert_eq!(change["data"]["attributes"]["created_by"], "olga");
    let (actor, _, _) = app.event("api:changes:create").await;
    assert_eq!(actor, "olga");
    let listed = expect_status(app.get("/api/tokens").await, 200).await;
    let shown = &listed["data"][0]["attributes"];
    assert_eq!(shown["user_name"], "olga");
    assert_eq!(shown["role"], "operator");
    assert_eq!(shown["project_code"], "demo");
    assert!(
        shown.get("token").is_none(),
        "the token is shown once: {shown}"
    );
    let stored: String = app
        .db()
        .await
        .query_one(
            "SELECT token_digest FROM api_tokens WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_ne!(stored, token, "only the digest is stored");
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once_and_refusals_are_recorded() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    let (id, token) = make_token(&app, "vic", "viewer", None).await;
    let info = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/info"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(info(token.clone()).await, 200);

    expect_status(app.delete(&format!("/api/tokens/{id}")).await, 204).await;

    assert_eq!(info(token.clone()).await, 401);
    let (actor, _, payload) = app.event("api:refused").await;
    assert_eq!(actor, "anonymous");
    assert_eq!(payload["status"], 401);
    let (actor, _, _) = app.event("api:tokens:revoke").await;
    assert_eq!(actor, "admin");
}

#[tokio::test]
async fn a_project_admin_manages_its_projects_tokens_only() {
    let app = spawn_app().await;
    app.create_project("demo").await;
    app.create_project("other").await;
    let (_, admin) = make_token(&app, "ada", "admin", Some("demo")).await;
    let post = |project: Option<&str>| {
        let body = json!({ "data": { "attributes": { "user_name": "x", "role": "viewer", "project_code": project } } });
        app.client
            .post(app.url("/api/tokens"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };

    assert_eq!(post(Some("demo")).await.unwrap().status(), 201);
    assert_eq!(post(Some("other")).await.unwrap().status(), 422);
    assert_eq!(post(None).await.unwrap().status(), 403);
}

#[tokio::test]
async fn repeated_failed_authentications_are_answered_429_with_retry_after() {
    let app = spawn_app_with(|settings| settings.api.auth_failures_per_minute = 3).await;
    let attempt = || {
        app.client
            .get(app.url("/api/info"))
            .bearer_auth("guess")
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt().await.unwrap().status(), 401);
    }

    let limited = attempt().await.unwrap();

    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Even the right token waits: the address is not tried again until the minute is over.
    let admin = app.get("/api/info").await;
    assert_eq!(admin.status(), 429);
    // Each refusal is an event, but of the 429s only the window's first: a flood writes nothing.
    let refusals = |status: i32| {
        let app = &app;
        async move {
            let row = app
                .db()
                .await
                .query_one(
                    "SELECT count(*) FROM events WHERE type = 'api:refused' \
                     AND (payload->>'status')::int = $1",
                    &[&status],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };
    assert_eq!(refusals(401).await, 3);
    assert_eq!(refusals(429).await, 1);
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_against_the_forwarded_client() {
    let app = spawn_app_with(|settings| {
        settings.api.auth_failures_per_minute = 2;
        settings.api.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let attempt = |client: &'static str| {
        app.client
            .get(app.url("/api/info"))
            .bearer_auth("guess")
            .header("X-Forwarded-For", format!("203.0.113.9, {client}"))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(attempt("198.51.100.1").await.unwrap().status(), 401);
    }

    assert_eq!(attempt("198.51.100.1").await.unwrap().status(), 429);
    // Another client behind the same proxy is not blocked with the first; the entry the client
    // wrote itself (203.0.113.9) is not what counts.
    assert_eq!(attempt("198.51.100.2").await.unwrap().status(), 401);
    let (_, _, payload) = app.event_where("api:refused", "429").await;
    assert_eq!(payload["address"], "198.51.100.1");
}
