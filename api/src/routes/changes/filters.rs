//! The filters of the change list, parsed from `filter[<attribute>_<predicate>]` parameters.
//! Several filters on one attribute combine with AND (an `eq` and an `in` intersect).

use chrono::{DateTime, Utc};
use gantry_shared::domain::ChangeStatus;

use crate::error::ApiError;
use crate::query::filter_timestamp;

/// Every filter the change list supports.
pub(super) const SUPPORTED: &[&str] = &[
    "status_code_eq",
    "status_code_not_eq",
    "status_code_in",
    "project_code_eq",
    "project_code_in",
    "environment_code_eq",
    "environment_code_in",
    "action_eq",
    "created_by_eq",
    "created_at_gt",
    "created_at_lt",
];

#[derive(Debug, Default, PartialEq)]
pub(super) struct ChangeFilters {
    pub statuses: Option<Vec<String>>,
    pub excluded_statuses: Option<Vec<String>>,
    pub projects: Option<Vec<String>>,
    pub environments: Option<Vec<String>>,
    pub action: Option<String>,
    pub created_by: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Set from the caller's token, not from the query: the one project it may see.
    pub project_id: Option<uuid::Uuid>,
}

impl ChangeFilters {
    /// `filters` are `(key inside filter[…], value)` pairs whose keys are in [`SUPPORTED`].
    pub fn parse(filters: &[(String, String)]) -> Result<Self, ApiError> {
        let mut parsed = Self::default();
        for (key, value) in filters {
            let list = || value.split(',').map(str::to_owned).collect::<Vec<_>>();
            match key.as_str() {
                "status_code_eq" | "status_code_in" => {
                    narrow(&mut parsed.statuses, statuses(key, value)?)
                }
                "status_code_not_eq" => parsed.excluded_statuses = Some(statuses(key, value)?),
                "project_code_eq" => narrow(&mut parsed.projects, vec![value.clone()]),
                "project_code_in" => narrow(&mut parsed.projects, list()),
                "environment_code_eq" => narrow(&mut parsed.environments, vec![value.clone()]),
                "environment_code_in" => narrow(&mut parsed.environments, list()),
                "action_eq" => parsed.action = Some(value.clone()),
                "created_by_eq" => parsed.created_by = Some(value.clone()),
                "created_at_gt" => parsed.created_after = Some(filter_timestamp(key, value)?),
                "created_at_lt" => parsed.created_before = Some(filter_timestamp(key, value)?),
                other => {
                    return Err(ApiError::bad_parameter(
                        &format!("filter[{other}]"),
                        format!("unknown filter `{other}`"),
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

fn narrow(slot: &mut Option<Vec<String>>, values: Vec<String>) {
    match slot {
        Some(existing) => existing.retain(|v| values.contains(v)),
        None => *slot = Some(values),
    }
}

fn statuses(key: &str, value: &str) -> Result<Vec<String>, ApiError> {
    value
        .split(',')
        .map(|status| {
            status
                .parse::<ChangeStatus>()
                .map(|s| s.as_str().to_owned())
                .map_err(|_| {
                    ApiError::bad_parameter(
                        &format!("filter[{key}]"),
                        format!("`{status}` in `filter[{key}]` is not a change status"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn eq_and_in_on_one_attribute_intersect() {
        let filters = ChangeFilters::parse(&pairs(&[
            ("status_code_in", "error,success"),
            ("status_code_eq", "error"),
        ]))
        .unwrap();
        assert_eq!(filters.statuses, Some(vec!["error".to_owned()]));
    }

    #[test]
    fn unknown_statuses_and_bad_timestamps_are_refused() {
        assert!(ChangeFilters::parse(&pairs(&[("status_code_eq", "done")])).is_err());
        assert!(ChangeFilters::parse(&pairs(&[("created_at_gt", "yesterday")])).is_err());
    }
}
