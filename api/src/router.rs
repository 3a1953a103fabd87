//! The route table (DESIGN §6). `/health`, `/ready` and `/metrics` are open; everything under `/api` needs a
//! bearer token, including paths that do not exist (so probing reveals nothing).

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder};

use crate::auth;
use crate::error::ApiError;
use crate::openapi;
use crate::routes::{
    changes, downloads, environments, events, git_remotes, health, info, log_lines, projects,
    properties, secrets, settings, steps,
};

/// The prefix of every route behind the token check.
const API: &str = "/api";

pub fn configure(cfg: &mut ServiceConfig) {
    for endpoint in open_endpoints() {
        cfg.service(endpoint.resource);
    }
    let mut api = web::scope(API).wrap(from_fn(auth::require_token));
    for endpoint in api_endpoints() {
        api = api.service(endpoint.resource);
    }
    cfg.service(api.default_service(web::to(not_found)))
        .default_service(web::to(not_found));
}

/// Every operation the router serves, as (method, path template): what the OpenAPI document
/// must describe (a test holds the two together).
pub fn operations() -> Vec<(Method, String)> {
    let open = open_endpoints().into_iter().map(|e| (String::new(), e));
    let api = api_endpoints().into_iter().map(|e| (API.to_owned(), e));
    open.chain(api)
        .flat_map(|(prefix, endpoint)| {
            let path = format!("{prefix}{}", endpoint.path);
            endpoint.methods.into_iter().map(move |m| (m, path.clone()))
        })
        .collect()
}

fn open_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/health").get(health::health),
        Endpoint::at("/ready").get(health::ready),
        Endpoint::at("/metrics").get(health::metrics),
        Endpoint::at("/api-docs/openapi.json").get(openapi::serve),
    ]
}

fn api_endpoints() -> Vec<Endpoint> {
    let mut endpoints = vec![
        Endpoint::at("/info").get(info::show_info),
        Endpoint::at("/downloads/Dockerfile").get(downloads::dockerfile),
        Endpoint::at("/events").get(events::list_events),
    ];
    endpoints.extend(project_endpoints());
    endpoints.extend(properties_endpoints());
    endpoints.extend(change_endpoints());
    endpoints.extend(secret_endpoints());
    endpoints
}

fn project_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/projects")
            .get(projects::list_projects)
            .post(projects::create_project),
        Endpoint::at("/projects/{project}")
            .get(projects::show_project)
            .patch(projects::update_project)
            .delete(projects::delete_project),
        Endpoint::at("/projects/{project}/environments")
            .get(environments::list_environments)
            .post(environments::create_environment),
        Endpoint::at("/projects/{project}/environments/{environment}")
            .get(environments::show_environment)
            .patch(environments::update_environment)
            .delete(environments::delete_environment),
        Endpoint::at("/projects/{project}/settings")
            .get(settings::show_project_settings)
            .patch(settings::update_project_settings),
        Endpoint::at("/projects/{project}/settings/versions")
            .get(settings::list_project_settings_versions),
        Endpoint::at("/projects/{project}/environments/{environment}/settings")
            .get(settings::show_environment_settings)
            .patch(settings::update_environment_settings),
        Endpoint::at("/projects/{project}/environments/{environment}/settings/versions")
            .get(settings::list_environment_settings_versions),
        Endpoint::at("/projects/{project}/git_remotes")
            .get(git_remotes::list_git_remotes)
            .post(git_remotes::create_git_remote),
        Endpoint::at("/projects/{project}/git_remotes/{id}")
            .get(git_remotes::show_git_remote)
            .patch(git_remotes::update_git_remote)
            .delete(git_remotes::delete_git_remote),
    ]
}

fn properties_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/properties/{id}")
            .get(properties::show_properties)
            .patch(properties::update_properties),
        Endpoint::at("/properties/{id}/versions").get(properties::list_versions),
        Endpoint::at("/properties/{id}/versions/{version}").get(properties::show_version),
    ]
}

fn change_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/changes")
            .get(changes::list_changes)
            .post(changes::create_change),
        Endpoint::at("/changes/{id}")
            .get(changes::show_change)
            .delete(changes::cancel_change),
        Endpoint::at("/changes/{id}/retry").post(changes::retry_change),
        Endpoint::at("/changes/{id}/properties").get(changes::show_change_properties),
        Endpoint::at("/changes/{id}/log_lines").get(log_lines::list_change_log_lines),
        Endpoint::at("/steps/{id}").get(steps::show_step),
        Endpoint::at("/steps/{id}/continue").post(steps::continue_step),
        Endpoint::at("/steps/{id}/log_lines").get(log_lines::list_step_log_lines),
    ]
}

fn secret_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/secrets").get(secrets::list_secrets),
        Endpoint::at("/secrets/{name}")
            .get(secrets::show_secret)
            .put(secrets::put_secret)
            .delete(secrets::delete_secret),
    ]
}

/// `get`, `post`, …: [`Endpoint::on`] with that method.
macro_rules! methods {
    ($($name:ident => $method:ident),*) => {$(
        fn $name<F, Args>(self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.on(Method::$method, handler)
        }
    )*};
}

/// One path and its handlers per method, remembering the methods so the table can be listed;
/// other methods get a JSON:API 405.
struct Endpoint {
    path: &'static str,
    methods: Vec<Method>,
    resource: Resource,
}

impl Endpoint {
    fn at(path: &'static str) -> Self {
        Self {
            path,
            methods: Vec::new(),
            resource: web::resource(path).default_service(web::to(method_not_allowed)),
        }
    }

    methods!(get => GET, post => POST, put => PUT, patch => PATCH, delete => DELETE);

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.methods.push(method.clone());
        self.resource = self.resource.route(web::method(method).to(handler));
        self
    }
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
