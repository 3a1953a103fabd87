//! `GET /api/changes/{id}[?include=steps]`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::record::select_change;
use crate::error::{ApiError, Context};
use crate::jsonapi;
use crate::query::{ListQuery, ListSpec};
use crate::routes::{paths, steps};
use crate::state::AppState;

const SPEC: ListSpec = ListSpec {
    default_limit: 1,
    max_limit: 1,
    filters: &[],
    sorts: &[],
    includes: &["steps"],
    flags: &[],
};

crate::openapi::list_query!(ChangeShowQuery, SPEC);

#[utoipa::path(
    get,
    path = "/api/changes/{id}",
    tag = "changes",
    summary = "A change, with its steps when asked for (`include=steps`).",
    params(crate::openapi::params::IdPath, ChangeShowQuery),
    responses(
        (status = 200, description = "The change.", body = crate::jsonapi::Including<super::record::ChangeAttributes, crate::routes::steps::record::StepAttributes>),
        (status = 404, description = "No such change."),
    ),
)]
#[tracing::instrument(skip_all, fields(change = %path), err(level = "info"))]
pub async fn show_change(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = paths::uuid(&path, "change")?;
    let query = ListQuery::parse(&req, &SPEC)?;
    let client = state.client().await?;
    let change = select_change(&client, id)
        .await
        .context("loading the change")?
        .ok_or_else(|| paths::not_found("change", &path))?;
    let included = match query.include.iter().any(|i| i == "steps") {
        true => {
            let steps = steps::select_steps_of_change(&client, id)
                .await
                .context("loading the steps")?;
            Some(
                steps
                    .into_iter()
                    .map(steps::StepRecord::into_resource)
                    .collect(),
            )
        }
        false => None,
    };
    Ok(jsonapi::ok_with_included(change.into_resource(), included))
}
