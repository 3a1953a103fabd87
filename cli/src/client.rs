//! A thin JSON:API client of the Gantry REST API.

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {}{path}", self.base))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Sends and returns the document, or an error with the API's own error detail.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, document) = self.send(method.clone(), path, body).await?;
        if status >= 400 {
            bail!(
                "{method} {path} answered {status}: {}",
                error_detail(&document)
            );
        }
        Ok(document)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Creates a resource; an existing one (409) is fetched instead, so scripts can re-run.
    pub async fn ensure(
        &self,
        collection: &str,
        member: &str,
        attributes: Value,
    ) -> anyhow::Result<Value> {
        let (status, document) = self
            .send(
                reqwest::Method::POST,
                collection,
                Some(json!({"data": {"attributes": attributes}})),
            )
            .await?;
        match status {
            201 => Ok(document),
            409 => self.get(member).await,
            _ => bail!(
                "POST {collection} answered {status}: {}",
                error_detail(&document)
            ),
        }
    }
}

fn error_detail(document: &Value) -> String {
    document["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["detail"]
                        .as_str()
                        .or(e["title"].as_str())
                        .unwrap_or("?")
                        .to_owned()
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| document.to_string())
}
