//! The worker's own HTTP server: `GET /metrics` (Prometheus) and `GET /health`. It serves nothing
//! else and holds no state; scraping reads queue depths and backlogs like the api does.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use gantry_shared::metrics::Scrape;

/// Binds `metrics_host:metrics_port` (port 0 picks a free port); returns the listener and its port.
pub fn bind(host: &str, port: u16) -> anyhow::Result<(TcpListener, u16)> {
    let address = format!("{host}:{port}");
    let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
    let port = listener
        .local_addr()
        .context("reading the bound address")?
        .port();
    Ok((listener, port))
}

pub fn serve(listener: TcpListener, scrape: Scrape) -> anyhow::Result<Server> {
    let scrape = web::Data::new(scrape);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(scrape.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/health", web::get().to(health))
    })
    .workers(1)
    .listen(listener)
    .context("listening")?
    .disable_signals()
    .shutdown_timeout(1)
    .run();
    Ok(server)
}

async fn metrics(scrape: web::Data<Scrape>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(gantry_shared::metrics::CONTENT_TYPE)
        .body(scrape.render().await)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}
