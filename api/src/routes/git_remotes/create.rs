//! `POST /api/projects/{project}/git_remotes`.

use actix_web::{HttpResponse, web};
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::credentials::{PASSWORD, SSH_KEY_DATA, seal};
use super::record::select_git_remote;
use crate::audit::{self, Event};
use crate::auth::User;
use crate::body::JsonApiBody;
use crate::domain::{Invalid, RemoteName, RemoteUrl, Secret, UserName};
use crate::error::{ApiError, Context, conflict_on_unique};
use crate::jsonapi;
use crate::routes::{paths, projects};
use crate::state::AppState;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGitRemoteAttributes {
    name: String,
    url: String,
    user: Option<String>,
    password: Option<String>,
    ssh_key_data: Option<String>,
}

struct NewGitRemote {
    name: RemoteName,
    url: RemoteUrl,
    user: Option<UserName>,
    password: Option<Secret>,
    ssh_key_data: Option<Secret>,
}

fn optional<T>(
    name: &str,
    value: Option<String>,
    parse: fn(String) -> Result<T, Invalid>,
) -> Result<Option<T>, ApiError> {
    value
        .map(parse)
        .transpose()
        .map_err(|e| ApiError::invalid_attribute(name, e))
}

impl TryFrom<CreateGitRemoteAttributes> for NewGitRemote {
    type Error = ApiError;

    fn try_from(attributes: CreateGitRemoteAttributes) -> Result<Self, ApiError> {
        Ok(Self {
            name: RemoteName::parse(&attributes.name)
                .map_err(|e| ApiError::invalid_attribute("name", e))?,
            url: RemoteUrl::parse(&attributes.url)
                .map_err(|e| ApiError::invalid_attribute("url", e))?,
            user: optional("user", attributes.user, UserName::parse)?,
            password: optional(PASSWORD, attributes.password, Secret::parse)?,
            ssh_key_data: optional(SSH_KEY_DATA, attributes.ssh_key_data, Secret::parse)?,
        })
    }
}

#[utoipa::path(
    post,
    path = "/api/projects/{project}/git_remotes",
    tag = "git_remotes",
    summary = "Add a Git remote to a project.",
    params(crate::openapi::params::ProjectPath),
    request_body = crate::body::RequestDocument<CreateGitRemoteAttributes>,
    responses(
        (status = 201, description = "The new Git remote.", body = crate::jsonapi::Single<super::record::GitRemoteAttributes>),
        (status = 404, description = "No such project."),
        (status = 409, description = "A remote with this name exists."),
    ),
)]
#[tracing::instrument(skip_all, fields(project = %path, user = user.name()), err(level = "info"))]
pub async fn create_git_remote(
    state: web::Data<AppState>,
    user: User,
    path: web::Path<String>,
    JsonApiBody(attributes): JsonApiBody<CreateGitRemoteAttributes>,
) -> Result<HttpResponse, ApiError> {
    let project_code = paths::code(&path, "project")?;
    let remote = NewGitRemote::try_from(attributes)?;
    let mut client = state.client().await?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let project_id = projects::project_id(&tx, &project_code).await?;
    let id = Uuid::now_v7();
    let sealed = Sealed {
        password: remote
            .password
            .as_ref()
            .map(|s| seal(&state.cipher, id, PASSWORD, s)),
        ssh_key_data: remote
            .ssh_key_data
            .as_ref()
            .map(|s| seal(&state.cipher, id, SSH_KEY_DATA, s)),
    };
    conflict_on_unique(
        insert_git_remote(&tx, id, project_id, &remote, &sealed).await,
        || {
            format!(
                "a git remote named {} already exists in project {project_code}",
                remote.name.as_str()
            )
        },
        "inserting the git remote",
    )?;
    let created = select_git_remote(&tx, &project_code, id)
        .await
        .context("reading the git remote")?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the new git remote was not found")))?;
    let event = Event {
        kind: "api:git_remotes:create",
        actor: user.name(),
        target: format!("/projects/{project_code}/git_remotes/{id}"),
        payload: json!({ "name": remote.name.as_str(), "url": remote.url.as_str() }),
    };
    audit::commit(tx, &event).await?;
    Ok(jsonapi::created(created.into_resource()))
}

struct Sealed {
    password: Option<Vec<u8>>,
    ssh_key_data: Option<Vec<u8>>,
}

async fn insert_git_remote(
    client: &impl GenericClient,
    id: Uuid,
    project_id: Uuid,
    remote: &NewGitRemote,
    sealed: &Sealed,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO git_remotes (id, project_id, name, url, username, password, ssh_key_data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &id,
                &project_id,
                &remote.name.as_str(),
                &remote.url.as_str(),
                &remote.user.as_ref().map(UserName::as_str),
                &sealed.password,
                &sealed.ssh_key_data,
            ],
        )
        .await
}
