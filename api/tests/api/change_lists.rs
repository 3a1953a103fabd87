//! The change list: filters, sort, cursor paging and refused parameters.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, change_attributes as attributes, expect_status, first_error, ids, spawn_app, uuid_of,
};

async fn seed_changes(app: &TestApp, statuses: &[(&str, &str)]) -> Vec<Uuid> {
    app.create_change_targets().await;
    app.create_environment("demo", "prod").await;
    let mut ids = Vec::new();
    for (environment, status) in statuses {
        let response = app
            .post_change(attributes(json!({ "environment_code": environment })))
            .await;
        let id = uuid_of(&expect_status(response, 201).await);
        app.set_change_status(id, status).await;
        ids.push(id);
    }
    ids
}

fn uuids(document: &Value) -> Vec<Uuid> {
    ids(document).iter().map(|id| id.parse().unwrap()).collect()
}

async fn listed(app: &TestApp, query: &str) -> Vec<Uuid> {
    uuids(&expect_status(app.get(&format!("/api/changes{query}")).await, 200).await)
}

#[tokio::test]
async fn changes_are_listed_newest_first_and_filtered() {
    let app = spawn_app().await;
    let ids = seed_changes(
        &app,
        &[("dev", "success"), ("prod", "error"), ("dev", "running")],
    )
    .await;

    assert_eq!(listed(&app, "").await, [ids[2], ids[1], ids[0]]);
    assert_eq!(
        listed(&app, "?sort=created_at").await,
        [ids[0], ids[1], ids[2]]
    );
    assert_eq!(
        listed(&app, "?filter[status_code_eq]=error").await,
        [ids[1]]
    );
    assert_eq!(
        listed(&app, "?filter[status_code_in]=success,running").await,
        [ids[2], ids[0]]
    );
    assert_eq!(
        listed(&app, "?filter[status_code_not_eq]=running").await,
        [ids[1], ids[0]]
    );
    assert_eq!(
        listed(&app, "?filter[environment_code_eq]=dev&sort=created_at").await,
        [ids[0], ids[2]]
    );
    assert_eq!(
        listed(&app, "?filter[project_code_eq]=other").await,
        Vec::<Uuid>::new()
    );
    let created: String = app
        .db()
        .await
        .query_one("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM changes WHERE id = $1", &[&ids[1]])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        listed(
            &app,
            &format!("?filter[created_at_gt]={created}&sort=created_at")
        )
        .await,
        [ids[2]]
    );
    assert_eq!(
        listed(&app, &format!("?filter[created_at_lt]={created}")).await,
        [ids[0]]
    );
}

#[tokio::test]
async fn changes_are_paged_with_a_cursor_in_the_next_link() {
    let app = spawn_app().await;
    let ids = seed_changes(
        &app,
        &[
            ("dev", "success"),
            ("dev", "success"),
            ("dev", "success"),
            ("dev", "error"),
        ],
    )
    .await;

    let first = expect_status(
        app.get("/api/changes?limit=3&filter[status_code_eq]=success")
            .await,
        200,
    )
    .await;
    let next = first["links"]["next"].as_str();

    assert_eq!(uuids(&first).len(), 3);
    assert!(next.is_none(), "three matches fit in a page of three");
    let first = expect_status(app.get("/api/changes?limit=2").await, 200).await;
    let second = app.next_page(&first).await;
    assert_eq!(
        [uuids(&first), uuids(&second)].concat(),
        [ids[3], ids[2], ids[1], ids[0]]
    );
    assert!(second["links"]["next"].is_null());
}

#[tokio::test]
async fn bad_filters_sorts_limits_and_cursors_are_refused_naming_the_parameter() {
    let app = spawn_app().await;
    let cases = [
        ("?filter[colour_eq]=red", "filter[colour_eq]"),
        ("?filter[status_code_cont]=err", "filter[status_code_cont]"),
        ("?filter[status_code_eq]=done", "filter[status_code_eq]"),
        ("?filter[created_at_gt]=yesterday", "filter[created_at_gt]"),
        ("?sort=name", "sort"),
        ("?limit=0", "limit"),
        ("?limit=many", "limit"),
        ("?page[after]=garbage", "page[after]"),
        ("?colour=red", "colour"),
    ];

    for (query, parameter) in cases {
        let error = expect_status(app.get(&format!("/api/changes{query}")).await, 400).await;

        assert_eq!(
            first_error(&error)["source"]["parameter"],
            parameter,
            "{query}"
        );
        assert!(
            first_error(&error)["detail"].as_str().unwrap().contains(
                parameter
                    .trim_start_matches("filter[")
                    .trim_end_matches(']')
            )
        );
    }
}
