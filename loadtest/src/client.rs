//! A small client of the Gantry REST API (JSON:API documents, bearer token).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use gantry_shared::domain::ChangeStatus;
use serde_json::{Value, json};

/// Change statuses of work not finished yet.
const ACTIVE_STATUSES: &str = "initializing,pending,queued,running";

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// An answer: the HTTP status and the document (a JSON string when the body is not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            // Many requests are in flight at once: keep enough idle connections for reuse.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()
                .expect("a plain HTTP client builds"),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// Sends a request; `if_match` is a properties version sent as `If-Match: "<n>"`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<i64>,
    ) -> anyhow::Result<Answer> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(version) = if_match {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {}{path}", self.base))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer to {method} {path}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> anyhow::Result<Value> {
        let answer = self.send(method.clone(), path, body, None).await?;
        if answer.status != expected {
            bail!(
                "{method} {path} answered {}: {}",
                answer.status,
                answer.body
            );
        }
        Ok(answer.body)
    }

    /// The absolute URL of `path` on the API's host.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET whose body is read as it comes (a followed log), once it answered 200.
    pub async fn open(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        if response.status() != 200 {
            bail!("GET {path} answered {}", response.status());
        }
        Ok(response)
    }

    /// A plain-text document at an absolute URL (another process's `/metrics`), without the token.
    pub async fn fetch_text(&self, url: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()
            .with_context(|| format!("GET {url}"))?;
        Ok(response.text().await?)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.expect(reqwest::Method::GET, path, None, 200).await
    }

    /// Creates a resource from its attributes (201 expected).
    pub async fn post(&self, path: &str, attributes: Value) -> anyhow::Result<Value> {
        let body = json!({"data": {"attributes": attributes}});
        self.expect(reqwest::Method::POST, path, Some(&body), 201)
            .await
    }

    /// Updates a resource from its attributes (200 expected).
    pub async fn patch(&self, path: &str, attributes: Value) -> anyhow::Result<Value> {
        let body = json!({"data": {"attributes": attributes}});
        self.expect(reqwest::Method::PATCH, path, Some(&body), 200)
            .await
    }

    /// Cancels a change (204 expected).
    pub async fn cancel_change(&self, id: &str) -> anyhow::Result<()> {
        self.expect(
            reqwest::Method::DELETE,
            &format!("/api/changes/{id}"),
            None,
            204,
        )
        .await
        .map(drop)
    }

    /// Every resource of a list, following its `links.next`.
    pub async fn list_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next {
            let page = self.get(&path).await?;
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
            next = page["links"]["next"].as_str().map(str::to_owned);
        }
        Ok(items)
    }

    /// The body of `POST /api/changes`.
    pub fn change_body(project: &str, environment: &str, action: &str) -> Value {
        json!({"data": {"attributes": {
            "project_code": project, "environment_code": environment,
            "git_remote_name": "origin", "git_rev": "main", "action": action,
        }}})
    }

    /// Creates a change and returns its id.
    pub async fn create_change(
        &self,
        project: &str,
        environment: &str,
        action: &str,
    ) -> anyhow::Result<String> {
        let body = Self::change_body(project, environment, action);
        let created = self
            .expect(reqwest::Method::POST, "/api/changes", Some(&body), 201)
            .await?;
        resource_id(&created)
    }

    /// `POST /api/changes` with an `Idempotency-Key`, whatever it answers (within 10 s).
    pub async fn post_change_with_key(&self, body: &Value, key: &str) -> anyhow::Result<Answer> {
        let response = self
            .http
            .post(format!("{}/api/changes", self.base))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .timeout(Duration::from_secs(10))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {}/api/changes", self.base))?;
        let status = response.status().as_u16();
        let text = response.text().await.context("reading the answer")?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// Replaces the server secret `name` with `data` (200 or 201 expected).
    pub async fn put_secret(&self, name: &str, data: Value) -> anyhow::Result<()> {
        let body = json!({"data": {"attributes": {"data": data}}});
        let answer = self
            .send(
                reqwest::Method::PUT,
                &format!("/api/secrets/{name}"),
                Some(&body),
                None,
            )
            .await?;
        if answer.status != 200 && answer.status != 201 {
            bail!(
                "PUT /api/secrets/{name} answered {}: {}",
                answer.status,
                answer.body
            );
        }
        Ok(())
    }

    /// Polls the change every `every` until it is final (a load generator may poll; the product
    /// does not); returns its document with its steps.
    pub async fn wait_final(
        &self,
        id: &str,
        every: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            // Polled without its steps: a poll must cost the system under test little (the
            // figures come from the change's own timestamps, not from when a poll saw it).
            let change = self.get(&format!("/api/changes/{id}")).await?;
            if status_of(&change)
                .parse::<ChangeStatus>()
                .is_ok_and(ChangeStatus::is_final)
            {
                return self.get(&format!("/api/changes/{id}?include=steps")).await;
            }
            if Instant::now() > deadline {
                bail!(
                    "change {id} is still {} after {timeout:?}",
                    status_of(&change)
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Polls until no change of the project is active any more.
    pub async fn wait_project_idle(
        &self,
        project: &str,
        every: Duration,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let path = format!(
            "/api/changes?filter[project_code_eq]={project}&filter[status_code_in]={ACTIVE_STATUSES}&limit=1"
        );
        loop {
            let page = self.get(&path).await?;
            if page["data"].as_array().is_none_or(Vec::is_empty) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("project {project} still has active changes after {timeout:?}");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// The changes of the project that did not end in `success`.
    pub async fn unsuccessful_changes(&self, project: &str) -> anyhow::Result<Vec<Value>> {
        self.list_all(&format!(
            "/api/changes?filter[project_code_eq]={project}&filter[status_code_not_eq]=success&limit=100"
        ))
        .await
    }
}

/// `data.id` of a resource document.
pub fn resource_id(document: &Value) -> anyhow::Result<String> {
    document["data"]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no data.id in {document}"))
}

/// `data.attributes.status_code` of a change or step document.
pub fn status_of(document: &Value) -> &str {
    document["data"]["attributes"]["status_code"]
        .as_str()
        .unwrap_or_default()
}

/// The properties id a project or environment document links to.
pub fn properties_id(resource: &Value) -> anyhow::Result<String> {
    resource["data"]["relationships"]["properties"]["data"]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no properties relationship in {resource}"))
}

/// A timestamp attribute (`created_at`, `finished_at`, …) of a resource object.
pub fn time_of(resource: &Value, attribute: &str) -> anyhow::Result<DateTime<Utc>> {
    let text = resource["attributes"][attribute]
        .as_str()
        .with_context(|| format!("no {attribute} in {resource}"))?;
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{attribute} {text:?} is not RFC 3339"))?
        .with_timezone(&Utc))
}

/// Milliseconds from `from` to `to` of a resource object.
pub fn millis_between(resource: &Value, from: &str, to: &str) -> anyhow::Result<f64> {
    let span = time_of(resource, to)? - time_of(resource, from)?;
    Ok(span.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0)
}
