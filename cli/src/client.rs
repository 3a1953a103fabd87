//! A JSON:API client of the Gantry REST API. Every refusal becomes an [`ApiError`] carrying the
//! API's own `detail`, so the one error line a user sees says what to fix.

use anyhow::Context;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

/// A request the API refused: its status and the details of its JSON:API error document.
#[derive(Debug, thiserror::Error)]
#[error("{detail}{}", self.place())]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// `source.pointer` of the first error, when it names a place in the request body.
    pub pointer: Option<String>,
}

impl ApiError {
    /// ` (at /data/attributes/…)` when the API named the place in the request body.
    fn place(&self) -> String {
        match self.pointer.as_deref() {
            Some(pointer) if !pointer.is_empty() => format!(" (at {pointer})"),
            _ => String::new(),
        }
    }

    async fn from_response(response: Response) -> Self {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let document: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let errors = document["errors"].as_array().cloned().unwrap_or_default();
        let detail = errors
            .iter()
            .filter_map(|e| e["detail"].as_str().or(e["title"].as_str()))
            .collect::<Vec<_>>()
            .join("; ");
        let detail = match detail.is_empty() {
            false => detail,
            true if text.trim().is_empty() => format!("the API answered {status}"),
            true => format!("the API answered {status}: {}", text.trim()),
        };
        Self {
            status,
            detail,
            pointer: errors
                .first()
                .and_then(|e| e["source"]["pointer"].as_str())
                .map(str::to_owned),
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// `{"data":{"attributes": attributes}}`, the body of every create and update.
pub fn document(attributes: Value) -> Value {
    json!({ "data": { "attributes": attributes } })
}

impl Client {
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("gantry-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// A request to `path` (which starts with `/`) with the bearer token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends the request; a refusal is an [`ApiError`].
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the Gantry API at {}", self.base))?;
        match response.status().is_success() {
            true => Ok(response),
            false => Err(ApiError::from_response(response).await.into()),
        }
    }

    /// Sends the request and reads its JSON document (`Null` for an empty body, as a 204 has).
    pub async fn json(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send(request).await?;
        let text = response.text().await.context("reading the API's answer")?;
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).context("the API answered with something other than JSON")
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let request = self.request(Method::POST, path);
        self.json(match body {
            Some(body) => request.json(&body),
            None => request,
        })
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(self.request(Method::PATCH, path).json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.send(self.request(Method::DELETE, path)).await?;
        Ok(())
    }

    /// Every resource of a list, following `links.next` across pages; at most `limit` of them.
    pub async fn list(
        &self,
        path: &str,
        query: &[(String, String)],
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut page = self
            .json(self.request(Method::GET, path).query(query))
            .await?;
        loop {
            let data = page["data"].as_array().cloned().unwrap_or_default();
            let empty = data.is_empty();
            items.extend(data);
            if let Some(limit) = limit
                && items.len() >= limit
            {
                items.truncate(limit);
                return Ok(items);
            }
            match page["links"]["next"].as_str() {
                Some(next) if !empty => page = self.get(next).await?,
                _ => return Ok(items),
            }
        }
    }
}
