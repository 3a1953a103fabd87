//! The route table (DESIGN §6). `/health`, `/ready` and `/metrics` are open; everything under `/api` needs a
//! bearer token, including paths that do not exist (so probing reveals nothing).

use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig, delete, get, patch, post, put};
use actix_web::{HttpRequest, HttpResponse, Resource};

use crate::auth;
use crate::error::ApiError;
use crate::routes::{
    changes, downloads, environments, events, git_remotes, health, info, log_lines, projects,
    properties, secrets, settings, steps,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/health", get().to(health::health))
        .route("/ready", get().to(health::ready))
        .route("/metrics", get().to(health::metrics))
        .service(
            web::scope("/api")
                .wrap(from_fn(auth::require_token))
                .service(resource("/info").route(get().to(info::show_info)))
                .service(resource("/downloads/Dockerfile").route(get().to(downloads::dockerfile)))
                .configure(project_routes)
                .configure(properties_routes)
                .configure(change_routes)
                .configure(secret_routes)
                .service(resource("/events").route(get().to(events::list_events)))
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

fn project_routes(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/projects")
            .route(get().to(projects::list_projects))
            .route(post().to(projects::create_project)),
    )
    .service(
        resource("/projects/{project}")
            .route(get().to(projects::show_project))
            .route(patch().to(projects::update_project))
            .route(delete().to(projects::delete_project)),
    )
    .service(
        resource("/projects/{project}/environments")
            .route(get().to(environments::list_environments))
            .route(post().to(environments::create_environment)),
    )
    .service(
        resource("/projects/{project}/environments/{environment}")
            .route(get().to(environments::show_environment))
            .route(patch().to(environments::update_environment))
            .route(delete().to(environments::delete_environment)),
    )
    .service(
        resource("/projects/{project}/settings")
            .route(get().to(settings::show_project_settings))
            .route(patch().to(settings::update_project_settings)),
    )
    .service(
        resource("/projects/{project}/settings/versions")
            .route(get().to(settings::list_project_settings_versions)),
    )
    .service(
        resource("/projects/{project}/environments/{environment}/settings")
            .route(get().to(settings::show_environment_settings))
            .route(patch().to(settings::update_environment_settings)),
    )
    .service(
        resource("/projects/{project}/environments/{environment}/settings/versions")
            .route(get().to(settings::list_environment_settings_versions)),
    )
    .service(
        resource("/projects/{project}/git_remotes")
            .route(get().to(git_remotes::list_git_remotes))
            .route(post().to(git_remotes::create_git_remote)),
    )
    .service(
        resource("/projects/{project}/git_remotes/{id}")
            .route(get().to(git_remotes::show_git_remote))
            .route(patch().to(git_remotes::update_git_remote))
            .route(delete().to(git_remotes::delete_git_remote)),
    );
}

fn properties_routes(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/properties/{id}")
            .route(get().to(properties::show_properties))
            .route(patch().to(properties::update_properties)),
    )
    .service(resource("/properties/{id}/versions").route(get().to(properties::list_versions)))
    .service(
        resource("/properties/{id}/versions/{version}").route(get().to(properties::show_version)),
    );
}

fn change_routes(cfg: &mut ServiceConfig) {
    cfg.service(
        resource("/changes")
            .route(get().to(changes::list_changes))
            .route(post().to(changes::create_change)),
    )
    .service(
        resource("/changes/{id}")
            .route(get().to(changes::show_change))
            .route(delete().to(changes::cancel_change)),
    )
    .service(resource("/changes/{id}/retry").route(post().to(changes::retry_change)))
    .service(resource("/changes/{id}/properties").route(get().to(changes::show_change_properties)))
    .service(resource("/changes/{id}/log_lines").route(get().to(log_lines::list_change_log_lines)))
    .service(resource("/steps/{id}").route(get().to(steps::show_step)))
    .service(resource("/steps/{id}/continue").route(post().to(steps::continue_step)))
    .service(resource("/steps/{id}/log_lines").route(get().to(log_lines::list_step_log_lines)));
}

fn secret_routes(cfg: &mut ServiceConfig) {
    cfg.service(resource("/secrets").route(get().to(secrets::list_secrets)))
        .service(
            resource("/secrets/{name}")
                .route(get().to(secrets::show_secret))
                .route(put().to(secrets::put_secret))
                .route(delete().to(secrets::delete_secret)),
        );
}

/// A resource whose unsupported methods get a JSON:API 405.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("no resource at {}", req.path())))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(format!(
        "{} is not supported on {}",
        req.method(),
        req.path()
    )))
}
