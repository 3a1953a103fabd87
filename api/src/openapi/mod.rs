//! The OpenAPI 3.1 description of the API, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they read and write, served at `/api-docs/openapi.json`. Conventions
//! every operation shares (the JSON:API media type, error documents, the bearer token) are added
//! in one place, [`Conventions`], instead of on each handler; a test holds the document to the
//! router's table ([`crate::router::operations`]).

mod conventions;
pub(crate) mod params;
mod schemas;

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::OpenApi;

use crate::routes::{
    changes, downloads, environments, events, git_remotes, health, info, log_lines, projects,
    properties, secrets, settings, steps, tokens, workers,
};
use conventions::Conventions;
pub use params::list_parameters;
pub(crate) use params::list_query;
pub use schemas::{LogEvent, PatchOperation, SettingsEdit};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gantry",
        description = "Change orchestration: run an action of a project's Git repository against \
            one of its environments as a tree of steps, each in its own container. Bodies are \
            JSON:API documents; lists are paged with `page[after]` from `links.next`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Conventions),
    paths(
        health::health, health::ready, health::metrics,
        info::show_info, downloads::dockerfile, events::list_events, workers::list_workers,
        projects::list_projects, projects::create_project, projects::show_project,
        projects::update_project, projects::delete_project,
        environments::list_environments, environments::create_environment,
        environments::show_environment, environments::update_environment,
        environments::delete_environment,
        settings::show_project_settings, settings::update_project_settings,
        settings::list_project_settings_versions, settings::show_environment_settings,
        settings::update_environment_settings, settings::list_environment_settings_versions,
        git_remotes::list_git_remotes, git_remotes::create_git_remote,
        git_remotes::show_git_remote, git_remotes::update_git_remote,
        git_remotes::delete_git_remote,
        properties::show_properties, properties::update_properties,
        properties::list_versions, properties::show_version,
        changes::list_changes, changes::create_change, changes::show_change,
        changes::cancel_change, changes::retry_change, changes::show_change_properties,
        log_lines::list_change_log_lines, log_lines::list_step_log_lines,
        steps::show_step, steps::continue_step,
        secrets::list_secrets, secrets::show_secret, secrets::put_secret,
        secrets::delete_secret,
        tokens::list_tokens, tokens::create_token, tokens::revoke_token,
        serve,
    )
)]
struct ApiDoc;

/// The document, built once: it only depends on the code.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serialises")
});

/// The OpenAPI document as a value (for tests and tools).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[utoipa::path(
    get,
    path = "/api-docs/openapi.json",
    tag = "operations",
    summary = "This document.",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description of the API.", body = Object)),
)]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}
