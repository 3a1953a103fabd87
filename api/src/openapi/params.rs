//! Parameters shared by many operations: the path segments that name a resource, and the query
//! string of a list route, described from the route's own [`ListSpec`] so the document says
//! exactly what the route accepts. The path structs are descriptions only: handlers take the
//! segments as strings and parse them themselves (a malformed id is a 404 like a missing one).
//! Codes follow `gantry_shared::domain::Code`: 1 to 50 lowercase letters, digits or underscores.
#![allow(dead_code)]

use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr, Required};

use crate::query::ListSpec;

/// `{project}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The project's code.
    #[param(example = "hello", pattern = "^[a-z0-9_]{1,50}$")]
    pub project: String,
}

/// `{project}` and `{environment}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EnvironmentPath {
    /// The project's code.
    #[param(example = "hello", pattern = "^[a-z0-9_]{1,50}$")]
    pub project: String,
    /// The environment's code.
    #[param(example = "dev", pattern = "^[a-z0-9_]{1,50}$")]
    pub environment: String,
}

/// `{id}`: a resource's UUID.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// The resource's id.
    pub id: uuid::Uuid,
}

/// The query parameters of a list (or show) route with this spec: `limit`, `page[after]`, and
/// the `filter[…]`, `sort`, `include` and flags it supports.
pub fn list_parameters(spec: &ListSpec) -> Vec<Parameter> {
    let mut parameters = Vec::new();
    if spec.max_limit > 1 {
        parameters.push(query(
            "limit",
            &format!("Rows per page (default {}).", spec.default_limit),
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(spec.max_limit)),
        ));
        parameters.push(query(
            "page[after]",
            "The cursor of the next page, as given by the previous page's `links.next`.",
            ObjectBuilder::new().schema_type(Type::String),
        ));
    }
    for filter in spec.filters {
        parameters.push(query(
            &format!("filter[{filter}]"),
            &filter_description(filter),
            filter_schema(filter),
        ));
    }
    if !spec.sorts.is_empty() {
        parameters.push(query("sort", "The order of the rows.", one_of(spec.sorts)));
    }
    if !spec.includes.is_empty() {
        parameters.push(query(
            "include",
            "Related resources to include.",
            one_of(spec.includes),
        ));
    }
    for flag in spec.flags {
        parameters.push(query(
            flag,
            "A switch: `true` or `false` (the default).",
            ObjectBuilder::new().schema_type(Type::Boolean),
        ));
    }
    parameters
}

fn filter_description(filter: &str) -> String {
    let (attribute, predicate) = filter.rsplit_once('_').unwrap_or((filter, "eq"));
    match predicate {
        "gt" => format!("Rows whose `{attribute}` is after this RFC 3339 time."),
        "lt" => format!("Rows whose `{attribute}` is before this RFC 3339 time."),
        "in" => format!("Rows whose `{attribute}` is one of these comma-separated values."),
        _ => format!("Rows whose `{attribute}` equals this value."),
    }
}

fn filter_schema(filter: &str) -> ObjectBuilder {
    let string = ObjectBuilder::new().schema_type(Type::String);
    match filter.rsplit_once('_').map(|(_, predicate)| predicate) {
        Some("gt" | "lt") => string.format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        _ => string,
    }
}

fn one_of(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
}

fn query(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(RefOr::<Schema>::T(Schema::Object(schema.build()))))
        .build()
}

/// Declares `$name` as the query parameters of the list route described by `$spec`, for
/// `params(...)` in the route's `#[utoipa::path]`.
macro_rules! list_query {
    ($name:ident, $spec:expr) => {
        /// The query string this route accepts.
        pub struct $name;

        impl utoipa::IntoParams for $name {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                $crate::openapi::list_parameters(&$spec)
            }
        }
    };
}
pub(crate) use list_query;

/// `{project}` and a Git remote's `{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GitRemotePath {
    /// The project's code.
    #[param(example = "hello", pattern = "^[a-z0-9_]{1,50}$")]
    pub project: String,
    /// The Git remote's id.
    pub id: uuid::Uuid,
}

/// A properties document's `{id}` and one of its `{version}`s.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PropertiesVersionPath {
    /// The properties' id.
    pub id: uuid::Uuid,
    /// The version number (1 is the empty document every owner starts with).
    #[param(minimum = 1)]
    pub version: i64,
}

/// A secret's `{name}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SecretPath {
    /// The secret's name.
    #[param(example = "deploy-keys")]
    pub name: String,
}
