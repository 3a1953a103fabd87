//! Query strings of list routes: `filter[<attribute>_<predicate>]`, `sort`, `include`, `limit`
//! and the cursor `page[after]`. Every parameter a route does not support is refused (400, naming
//! it) rather than ignored, so a mistyped filter never silently returns everything.

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// What a route accepts.
pub struct ListSpec {
    pub default_limit: i64,
    pub max_limit: i64,
    /// Supported `filter[…]` keys, e.g. `status_code_eq`.
    pub filters: &'static [&'static str],
    pub sorts: &'static [&'static str],
    pub includes: &'static [&'static str],
    /// Supported boolean parameters, e.g. `follow` (`true` or `false`).
    pub flags: &'static [&'static str],
}

impl ListSpec {
    /// A plain paged list: no filters, sorts, includes or flags.
    pub const fn paged(default_limit: i64, max_limit: i64) -> Self {
        Self {
            default_limit,
            max_limit,
            filters: &[],
            sorts: &[],
            includes: &[],
            flags: &[],
        }
    }
}

/// A parsed query string.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub limit: i64,
    pub after: Option<String>,
    pub sort: Option<String>,
    /// `(key inside filter[…], value)` in request order.
    pub filters: Vec<(String, String)>,
    pub include: Vec<String>,
    /// The flags given as `true`.
    pub flags: Vec<String>,
    pairs: Vec<(String, String)>,
}

const PAGE_AFTER: &str = "page[after]";

/// One page of a list, and the link to the next page when there is one.
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

impl ListQuery {
    pub fn parse(req: &HttpRequest, spec: &ListSpec) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
        let mut query = ListQuery {
            limit: spec.default_limit,
            ..Default::default()
        };
        for (index, (key, value)) in pairs.iter().enumerate() {
            if pairs[..index].iter().any(|(earlier, _)| earlier == key) {
                return Err(ApiError::bad_parameter(
                    key,
                    format!("the parameter `{key}` is given more than once"),
                ));
            }
            // PostgreSQL text cannot hold NUL: a cursor or filter with one names nothing, and
            // must be refused here rather than fail the query.
            if value.contains('\0') {
                return Err(ApiError::bad_parameter(
                    key,
                    format!("`{key}` must not contain a NUL character"),
                ));
            }
            query.accept(spec, key, value)?;
        }
        query.pairs = pairs;
        Ok(query)
    }

    fn accept(&mut self, spec: &ListSpec, key: &str, value: &str) -> Result<(), ApiError> {
        match key {
            "limit" => self.limit = parse_limit(value, spec.max_limit)?,
            PAGE_AFTER => self.after = Some(value.to_owned()),
            "sort" if !spec.sorts.is_empty() => self.sort = Some(one_of(key, value, spec.sorts)?),
            flag if spec.flags.contains(&flag) => match value {
                "true" => self.flags.push(flag.to_owned()),
                "false" => {}
                _ => {
                    return Err(ApiError::bad_parameter(
                        key,
                        format!("`{key}` must be `true` or `false`, got `{value}`"),
                    ));
                }
            },
            "include" if !spec.includes.is_empty() => {
                self.include = value
                    .split(',')
                    .map(|i| one_of(key, i, spec.includes))
                    .collect::<Result<_, _>>()?;
            }
            _ => match key
                .strip_prefix("filter[")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                Some(filter) if spec.filters.contains(&filter) => {
                    self.filters.push((filter.to_owned(), value.to_owned()))
                }
                Some(filter) => return Err(unknown_filter(key, filter, spec.filters)),
                None => {
                    return Err(ApiError::bad_parameter(
                        key,
                        format!("unknown query parameter `{key}`"),
                    ));
                }
            },
        }
        Ok(())
    }

    /// The link to the page after `cursor`: this query with `page[after]` replaced.
    fn next_link(&self, path: &str, cursor: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != PAGE_AFTER)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push((PAGE_AFTER, cursor));
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{path}?{encoded}")
    }

    /// Whether the flag was given as `true`.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// Fetching `limit + 1` rows tells whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts `rows` (fetched with [`Self::fetch_limit`]) to the page, with the next link built
    /// from the last row's cursor.
    pub fn page<T>(&self, mut rows: Vec<T>, path: &str, cursor: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = match (more, rows.last()) {
            (true, Some(last)) => Some(self.next_link(path, &cursor(last))),
            _ => None,
        };
        Page { rows, next }
    }

    /// `page[after]` parsed as an integer cursor (ids, versions), if given.
    pub fn after_integer(&self) -> Result<Option<i64>, ApiError> {
        self.after_parsed()
    }

    /// `page[after]` parsed as a UUID cursor, if given.
    pub fn after_uuid(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        self.after_parsed()
    }

    fn after_parsed<T: std::str::FromStr>(&self) -> Result<Option<T>, ApiError> {
        self.after
            .as_deref()
            .map(|after| {
                after.parse::<T>().map_err(|_| {
                    ApiError::bad_parameter(
                        PAGE_AFTER,
                        format!(
                            "`{PAGE_AFTER}` must be a cursor from a `next` link, got `{after}`"
                        ),
                    )
                })
            })
            .transpose()
    }
}

/// The value of filter `key` (e.g. `created_at_gt`) as an RFC 3339 timestamp.
pub fn filter_timestamp(key: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_parameter(
                &format!("filter[{key}]"),
                format!("`{value}` in `filter[{key}]` is not an RFC 3339 timestamp"),
            )
        })
}

fn parse_limit(value: &str, max: i64) -> Result<i64, ApiError> {
    match value.parse::<i64>() {
        Ok(limit) if limit >= 1 => Ok(limit.min(max)),
        _ => Err(ApiError::bad_parameter(
            "limit",
            format!("`limit` must be a positive integer, got `{value}`"),
        )),
    }
}

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<String, ApiError> {
    match allowed.contains(&value) {
        true => Ok(value.to_owned()),
        false => Err(ApiError::bad_parameter(
            key,
            format!(
                "`{key}` must be one of {}, got `{value}`",
                allowed.join(", ")
            ),
        )),
    }
}

fn unknown_filter(key: &str, filter: &str, supported: &[&str]) -> ApiError {
    let supported = match supported {
        [] => "this list has no filters".to_owned(),
        list => format!("supported filters: {}", list.join(", ")),
    };
    ApiError::bad_parameter(
        key,
        format!("unknown filter `{filter}` in `{key}`; {supported}"),
    )
}
