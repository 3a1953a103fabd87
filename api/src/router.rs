//! The route table (DESIGN §6). `/health`, `/ready`, `/metrics` and `/api-docs/openapi.json` are
//! open; everything under `/api` needs a bearer token, including paths that do not exist (so
//! probing reveals nothing), and each route declares what it needs of the caller ([`Access`]),
//! which `auth` checks before the handler runs.

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder};

use crate::auth::{self, Access, AccessTable, Role, Via};
use crate::error::ApiError;
use crate::openapi;
use crate::routes::{
    changes, downloads, environments, events, git_remotes, health, info, log_lines, projects,
    properties, secrets, settings, steps, tokens, workers,
};

/// The prefix of every route behind the token check.
const API: &str = "/api";

pub fn configure(cfg: &mut ServiceConfig) {
    for endpoint in open_endpoints() {
        cfg.service(endpoint.resource);
    }
    let mut access = AccessTable::default();
    let mut api = web::scope(API).wrap(from_fn(auth::require_token));
    for endpoint in api_endpoints() {
        for (method, needs) in endpoint.methods {
            access.insert(method, format!("{API}{}", endpoint.path), needs);
        }
        api = api.service(endpoint.resource);
    }
    cfg.app_data(web::Data::new(access))
        .service(api.default_service(web::to(not_found)))
        .default_service(web::to(not_found));
}

/// Every operation the router serves, as (method, path template) and what it needs of the
/// caller: what the OpenAPI document must describe (a test holds the two together).
pub fn operations() -> Vec<(Method, String, Access)> {
    let open = open_endpoints().into_iter().map(|e| (String::new(), e));
    let api = api_endpoints().into_iter().map(|e| (API.to_owned(), e));
    open.chain(api)
        .flat_map(|(prefix, endpoint)| {
            let path = format!("{prefix}{}", endpoint.path);
            endpoint
                .methods
                .into_iter()
                .map(move |(m, access)| (m, path.clone(), access))
        })
        .collect()
}

// What routes need: a role on the project the path leads to, on every project, or the handler
// decides (see auth::access).
const ANYONE: Access = Access::Anyone;
const LIST: Access = Access::Handler(Role::Viewer);
const RUN: Access = Access::Handler(Role::Operator);
const TOKENS: Access = Access::Handler(Role::Admin);
const SERVER_VIEW: Access = Access::Server(Role::Viewer);
const SERVER_ADMIN: Access = Access::Server(Role::Admin);
const VIEW: Access = Access::Project(Role::Viewer, Via::Code);
const OPERATE: Access = Access::Project(Role::Operator, Via::Code);
const ADMINISTER: Access = Access::Project(Role::Admin, Via::Code);
const VIEW_CHANGE: Access = Access::Project(Role::Viewer, Via::Change);
const OPERATE_CHANGE: Access = Access::Project(Role::Operator, Via::Change);
const VIEW_STEP: Access = Access::Project(Role::Viewer, Via::Step);
const OPERATE_STEP: Access = Access::Project(Role::Operator, Via::Step);
const VIEW_PROPERTIES: Access = Access::Project(Role::Viewer, Via::Properties);
const EDIT_PROPERTIES: Access = Access::Project(Role::Operator, Via::Properties);

fn open_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/health").get(ANYONE, health::health),
        Endpoint::at("/ready").get(ANYONE, health::ready),
        Endpoint::at("/metrics").get(ANYONE, health::metrics),
        Endpoint::at("/api-docs/openapi.json").get(ANYONE, openapi::serve),
    ]
}

fn api_endpoints() -> Vec<Endpoint> {
    let mut endpoints = vec![
        Endpoint::at("/info").get(ANYONE, info::show_info),
        Endpoint::at("/downloads/Dockerfile").get(ANYONE, downloads::dockerfile),
        Endpoint::at("/events").get(SERVER_VIEW, events::list_events),
        Endpoint::at("/workers").get(SERVER_VIEW, workers::list_workers),
        Endpoint::at("/tokens")
            .get(TOKENS, tokens::list_tokens)
            .post(TOKENS, tokens::create_token),
        Endpoint::at("/tokens/{id}").delete(TOKENS, tokens::revoke_token),
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
            .get(LIST, projects::list_projects)
            .post(SERVER_ADMIN, projects::create_project),
        Endpoint::at("/projects/{project}")
            .get(VIEW, projects::show_project)
            .patch(ADMINISTER, projects::update_project)
            .delete(ADMINISTER, projects::delete_project),
        Endpoint::at("/projects/{project}/environments")
            .get(VIEW, environments::list_environments)
            .post(ADMINISTER, environments::create_environment),
        Endpoint::at("/projects/{project}/environments/{environment}")
            .get(VIEW, environments::show_environment)
            .patch(ADMINISTER, environments::update_environment)
            .delete(ADMINISTER, environments::delete_environment),
        Endpoint::at("/projects/{project}/settings")
            .get(VIEW, settings::show_project_settings)
            .patch(OPERATE, settings::update_project_settings),
        Endpoint::at("/projects/{project}/settings/versions")
            .get(VIEW, settings::list_project_settings_versions),
        Endpoint::at("/projects/{project}/environments/{environment}/settings")
            .get(VIEW, settings::show_environment_settings)
            .patch(OPERATE, settings::update_environment_settings),
        Endpoint::at("/projects/{project}/environments/{environment}/settings/versions")
            .get(VIEW, settings::list_environment_settings_versions),
        Endpoint::at("/projects/{project}/git_remotes")
            .get(VIEW, git_remotes::list_git_remotes)
            .post(ADMINISTER, git_remotes::create_git_remote),
        Endpoint::at("/projects/{project}/git_remotes/{id}")
            .get(VIEW, git_remotes::show_git_remote)
            .patch(ADMINISTER, git_remotes::update_git_remote)
            .delete(ADMINISTER, git_remotes::delete_git_remote),
    ]
}

fn properties_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/properties/{id}")
            .get(VIEW_PROPERTIES, properties::show_properties)
            .patch(EDIT_PROPERTIES, properties::update_properties),
        Endpoint::at("/properties/{id}/versions").get(VIEW_PROPERTIES, properties::list_versions),
        Endpoint::at("/properties/{id}/versions/{version}")
            .get(VIEW_PROPERTIES, properties::show_version),
    ]
}

fn change_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/changes")
            .get(LIST, changes::list_changes)
            .post(RUN, changes::create_change),
        Endpoint::at("/changes/{id}")
            .get(VIEW_CHANGE, changes::show_change)
            .delete(OPERATE_CHANGE, changes::cancel_change),
        Endpoint::at("/changes/{id}/retry").post(OPERATE_CHANGE, changes::retry_change),
        Endpoint::at("/changes/{id}/properties").get(VIEW_CHANGE, changes::show_change_properties),
        Endpoint::at("/changes/{id}/log_lines").get(VIEW_CHANGE, log_lines::list_change_log_lines),
        Endpoint::at("/steps/{id}").get(VIEW_STEP, steps::show_step),
        Endpoint::at("/steps/{id}/continue").post(OPERATE_STEP, steps::continue_step),
        Endpoint::at("/steps/{id}/log_lines").get(VIEW_STEP, log_lines::list_step_log_lines),
    ]
}

fn secret_endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::at("/secrets").get(SERVER_ADMIN, secrets::list_secrets),
        Endpoint::at("/secrets/{name}")
            .get(SERVER_ADMIN, secrets::show_secret)
            .put(SERVER_ADMIN, secrets::put_secret)
            .delete(SERVER_ADMIN, secrets::delete_secret),
    ]
}

/// `get`, `post`, …: [`Endpoint::on`] with that method.
macro_rules! methods {
    ($($name:ident => $method:ident),*) => {$(
        fn $name<F, Args>(self, access: Access, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.on(Method::$method, access, handler)
        }
    )*};
}

/// One path and its handlers per method, remembering the methods and what each needs of the
/// caller so the table can be listed and enforced; other methods get a JSON:API 405.
struct Endpoint {
    path: &'static str,
    methods: Vec<(Method, Access)>,
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

    fn on<F, Args>(mut self, method: Method, access: Access, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.methods.push((method.clone(), access));
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
