//! `PATCH /api/projects/{project}/git_remotes/{id}`: url, user, password, ssh_key_data, archived.
//! `null` clears a credential; `{{hidden}}` (what a read shows) keeps it. The name is immutable:
//! changes refer to their remote by name.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::credentials::{PASSWORD, SSH_KEY_DATA, seal};
use super::record::{HIDDEN, select_git_remote};
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::{JsonApiBody, nullable};
use crate::domain::{RemoteUrl, Secret, UserName};
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::routes::{patching, paths};
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGitRemoteAttributes {
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    user: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    password: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    ssh_key_data: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    archived: Option<Option<bool>>,
}

struct GitRemoteChanges {
    url: Option<RemoteUrl>,
    user: Option<Option<UserName>>,
    password: Option<Option<Secret>>,
    ssh_key_data: Option<Option<Secret>>,
    archived: Option<bool>,
}

impl GitRemoteChanges {
    fn parse(name: &str, attributes: UpdateGitRemoteAttributes) -> Result<Self, ApiError> {
        patching::immutable("name", name, attributes.name)?;
        let keep_hidden =
            |value: Option<Option<String>>| value.filter(|v| v.as_deref() != Some(HIDDEN));
        Ok(Self {
            url: patching::required("url", attributes.url)?
                .map(|url| RemoteUrl::parse(&url))
                .transpose()
                .map_err(|e| ApiError::invalid_attribute("url", e))?,
            user: patching::optional("user", attributes.user, UserName::parse)?,
            password: patching::optional(
                PASSWORD,
                keep_hidden(attributes.password),
                Secret::parse,
            )?,
            ssh_key_data: patching::optional(
                SSH_KEY_DATA,
                keep_hidden(attributes.ssh_key_data),
                Secret::parse,
            )?,
            archived: patching::required("archived", attributes.archived)?,
        })
    }
}

#[utoipa::path(
    patch,
    path = "/api/projects/{project}/git_remotes/{id}",
    tag = "git_remotes",
    summary = "Change a Git remote's URL or credentials, or archive it.",
    params(crate::openapi::params::GitRemotePath),
    request_body = crate::body::RequestDocument<UpdateGitRemoteAttributes>,
    responses(
        (status = 200, description = "The updated Git remote.", body = crate::jsonapi::Single<super::record::GitRemoteAttributes>),
        (status = 404, description = "No such project or Git remote."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path.0, git_remote = %path.1, user = user.name()), err(level = "info"))]
pub async fn update_git_remote(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<(String, String)>,
    JsonApiBody(attributes): JsonApiBody<UpdateGitRemoteAttributes>,
) -> Result<HttpResponse, ApiError> {
    let (project, id) = (
        paths::code(&path.0, "project")?,
        paths::uuid(&path.1, "git remote")?,
    );
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let current = select_git_remote(&tx, &project, id)
        .await
        .context("loading the git remote")?
        .ok_or_else(|| paths::not_found("git remote", &path.1))?;
    let changes = GitRemoteChanges::parse(&current.attributes.name, attributes)?;
    let sealed = |secret: &Option<Option<Secret>>, column: &str| {
        secret
            .as_ref()
            .map(|s| s.as_ref().map(|s| seal(&state.cipher, id, column, s)))
    };
    let row = RemoteUpdate {
        url: changes.url.as_ref().map(RemoteUrl::as_str),
        user: changes
            .user
            .as_ref()
            .map(|u| u.as_ref().map(UserName::as_str)),
        password: sealed(&changes.password, PASSWORD),
        ssh_key_data: sealed(&changes.ssh_key_data, SSH_KEY_DATA),
        archived: changes.archived,
    };
    update_git_remote_row(&tx, id, &row)
        .await
        .context("updating the git remote")?;
    let updated = select_git_remote(&tx, &project, id)
        .await
        .context("reading the git remote")?
        .ok_or_else(|| paths::not_found("git remote", &path.1))?;
    let event = Event {
        kind: "api:git_remotes:update",
        actor: user.name(),
        target: format!("/projects/{project}/git_remotes/{id}"),
        payload: json!({ "name": current.attributes.name }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::ok(updated.into_resource()))
}

/// Column values to write; `None` keeps a column, `Some(None)` clears a nullable one.
struct RemoteUpdate<'a> {
    url: Option<&'a str>,
    user: Option<Option<&'a str>>,
    password: Option<Option<Vec<u8>>>,
    ssh_key_data: Option<Option<Vec<u8>>>,
    archived: Option<bool>,
}

async fn update_git_remote_row(
    client: &impl GenericClient,
    id: Uuid,
    row: &RemoteUpdate<'_>,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE git_remotes SET url = COALESCE($2, url), \
             username = CASE WHEN $3::boolean THEN $4::text ELSE username END, \
             password = CASE WHEN $5::boolean THEN $6::bytea ELSE password END, \
             ssh_key_data = CASE WHEN $7::boolean THEN $8::bytea ELSE ssh_key_data END, \
             archived = COALESCE($9, archived), updated_at = now() WHERE id = $1",
            &[
                &id,
                &row.url,
                &row.user.is_some(),
                &row.user.flatten(),
                &row.password.is_some(),
                &row.password.as_ref().and_then(Option::as_deref),
                &row.ssh_key_data.is_some(),
                &row.ssh_key_data.as_ref().and_then(Option::as_deref),
                &row.archived,
            ],
        )
        .await
}
