//! Operational routes: health, readiness, info, the default Dockerfile, unknown routes.

use gantry_shared::amqp::{self, Topology};
use gantry_shared::messages::Queue;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use secrecy::SecretString;

use crate::helpers::{expect_status, first_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_200_without_a_token() {
    let app = spawn_app().await;

    let response = app.client.get(app.url("/health")).send().await.unwrap();

    let body = expect_status(response, 200).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_answers_200_when_the_database_answers() {
    let app = spawn_app().await;

    let response = app.client.get(app.url("/ready")).send().await.unwrap();

    expect_status(response, 200).await;
}

#[tokio::test]
async fn an_unreachable_database_makes_ready_and_api_routes_answer_503_with_an_opaque_body() {
    let app = spawn_app_with(|settings| {
        settings.database.url =
            SecretString::from("postgres://postgres@127.0.0.1:1/nowhere".to_owned());
    })
    .await;

    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    let projects = app.get("/api/projects").await;

    expect_status(ready, 503).await;
    assert_eq!(projects.headers()["retry-after"], "5");
    let body = expect_status(projects, 503).await;
    let detail = first_error(&body)["detail"].as_str().unwrap();
    assert!(
        !detail.contains("127.0.0.1") && !detail.to_lowercase().contains("connect"),
        "{detail}"
    );
}

#[tokio::test]
async fn info_reports_the_version_and_the_user_but_no_secret() {
    let app = spawn_app().await;

    let body = expect_status(app.get("/api/info").await, 200).await;

    let attributes = &body["data"]["attributes"];
    assert_eq!(attributes["version"], gantry_shared::VERSION);
    assert_eq!(attributes["user"], "admin");
    assert_eq!(
        attributes["api"]["max_body_bytes"],
        app.settings.api.max_body_bytes
    );
    assert!(!body.to_string().contains(&app.token));
}

#[tokio::test]
async fn info_counts_the_dead_lettered_messages_of_each_queue() {
    let app = spawn_app().await;
    let connection = amqp::connect(&app.settings.amqp, "gantry-api-test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = Topology::new(&app.settings.amqp);
    amqp::declare(&channel, &topology).await.unwrap();
    let before = expect_status(app.get("/api/info").await, 200).await;

    for _ in 0..2 {
        channel
            .basic_publish(
                "".into(),
                topology.dead_letter_queue(Queue::Steps).as_str().into(),
                BasicPublishOptions::default(),
                b"poison",
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // The broker counts a message once it has routed it: the count is read until it shows.
    let counts = |body: &serde_json::Value| body["data"]["attributes"]["dead_letters"].clone();
    let expected =
        serde_json::json!({ "gantry.changes": 0, "gantry.results": 0, "gantry.steps": 2 });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let body = expect_status(app.get("/api/info").await, 200).await;
        if counts(&body) == expected || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    assert_eq!(
        counts(&before),
        serde_json::json!({ "gantry.changes": 0, "gantry.results": 0, "gantry.steps": 0 })
    );
    assert_eq!(counts(&after), expected);
}

#[tokio::test]
async fn the_default_dockerfile_is_served_as_text() {
    let app = spawn_app().await;

    let response = app.get("/api/downloads/Dockerfile").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        response.text().await.unwrap(),
        gantry_shared::DEFAULT_DOCKERFILE
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_api_errors() {
    let app = spawn_app().await;

    let missing = expect_status(app.get("/api/nothing_here").await, 404).await;
    let method = app
        .request(reqwest::Method::PUT, "/api/projects")
        .send()
        .await
        .unwrap();

    assert_eq!(first_error(&missing)["status"], "404");
    let method = expect_status(method, 405).await;
    assert_eq!(first_error(&method)["status"], "405");
}
