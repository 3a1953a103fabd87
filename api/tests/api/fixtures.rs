//! Arranging a test's state through the API (or behind its back, as a worker would) and reading
//! back what the API wrote.

use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, change_attributes, expect_status, properties_document, properties_path, uuid_of,
};

impl TestApp {
    /// Creates project `code` and returns the response document.
    pub async fn create_project(&self, code: &str) -> Value {
        let body = json!({ "data": { "type": "projects", "attributes": { "code": code, "name": format!("Project {code}") } } });
        expect_status(self.post_json("/api/projects", &body).await, 201).await
    }

    pub async fn create_environment(&self, project: &str, code: &str) -> Value {
        let body = json!({ "data": { "attributes": { "code": code, "name": format!("Environment {code}") } } });
        expect_status(
            self.post_json(&format!("/api/projects/{project}/environments"), &body)
                .await,
            201,
        )
        .await
    }

    pub async fn create_git_remote(&self, project: &str, name: &str) -> Value {
        let body = json!({ "data": { "attributes": { "name": name, "url": "https://example.com/demo.git" } } });
        expect_status(
            self.post_json(&format!("/api/projects/{project}/git_remotes"), &body)
                .await,
            201,
        )
        .await
    }

    /// A project `demo` with environment `dev` and remote `origin`, ready for changes.
    pub async fn create_change_targets(&self) {
        self.create_project("demo").await;
        self.create_environment("demo", "dev").await;
        self.create_git_remote("demo", "origin").await;
    }

    /// Creates project `demo` and returns the path of its properties.
    pub async fn project_properties(&self) -> String {
        properties_path(&self.create_project("demo").await)
    }

    /// Sets secret `name`, which must not exist yet.
    pub async fn create_secret(&self, name: &str, data: Value) {
        expect_status(self.put_secret(name, data).await, 201).await;
    }

    /// Patches the properties at `path` (with no version) and returns the response document.
    pub async fn patch_properties(&self, path: &str, data: Value) -> Value {
        expect_status(
            self.patch_json(path, &properties_document(data, None))
                .await,
            200,
        )
        .await
    }

    pub async fn post_change(&self, attributes: Value) -> Response {
        self.post_json(
            "/api/changes",
            &json!({ "data": { "attributes": attributes } }),
        )
        .await
    }

    /// Creates a change of demo/dev from origin at `main` and returns its id.
    pub async fn create_change(&self) -> Uuid {
        let response = self.post_change(change_attributes(json!({}))).await;
        uuid_of(&expect_status(response, 201).await)
    }

    /// Moves a change to `status` behind the API's back, as a worker would.
    pub async fn set_change_status(&self, change: Uuid, status: &str) {
        let sql = "UPDATE changes SET status_code = $2 WHERE id = $1";
        self.db()
            .await
            .execute(sql, &[&change, &status])
            .await
            .expect("updating the change status");
    }

    /// Flips the last bit of the ciphertext in `column` of the one row of `table` matching
    /// `filter`, behind the API's back.
    pub async fn flip_last_byte(&self, table: &str, column: &str, filter: &str) {
        let sql = format!(
            "UPDATE {table} SET {column} = set_byte({column}, length({column}) - 1, \
             get_byte({column}, length({column}) - 1) # 1) WHERE {filter}"
        );
        let flipped = self.db().await.execute(&sql, &[]).await.unwrap();
        assert_eq!(flipped, 1, "{sql}");
    }

    /// Follows the `next` link of a list page, which must have one.
    pub async fn next_page(&self, page: &Value) -> Value {
        let next = page["links"]["next"].as_str().expect("a next link");
        expect_status(self.get(next).await, 200).await
    }

    /// The one audit event of type `kind`: its actor, target and payload.
    pub async fn event(&self, kind: &str) -> (String, String, Value) {
        let sql = "SELECT actor, target, payload FROM events WHERE type = $1";
        let row = self
            .db()
            .await
            .query_one(sql, &[&kind])
            .await
            .expect("exactly one event of that type");
        (row.get(0), row.get(1), row.get(2))
    }

    /// The one event of type `kind` whose payload's `status` is `status`.
    pub async fn event_where(&self, kind: &str, status: &str) -> (String, String, Value) {
        let sql = "SELECT actor, target, payload FROM events WHERE type = $1 \
                   AND payload->>'status' = $2";
        let row = self
            .db()
            .await
            .query_one(sql, &[&kind, &status])
            .await
            .expect("exactly one such event");
        (row.get(0), row.get(1), row.get(2))
    }

    /// The messages waiting in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<gantry_shared::messages::Message> {
        self.db()
            .await
            .query("SELECT payload FROM outbox ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| serde_json::from_slice(row.get::<_, &[u8]>(0)).unwrap())
            .collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.db()
            .await
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }
}
