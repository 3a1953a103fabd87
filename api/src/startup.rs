//! [`Application`]: the server bound to its port, ready to run until a shutdown token is
//! cancelled. `main` and the integration tests start Gantry's API the same way.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use gantry_shared::crypto::Cipher;
use gantry_shared::db;
use gantry_shared::metrics::Scrape;
use gantry_shared::outbox::{self, OutboxSignal};
use gantry_shared::settings::{AmqpSettings, Settings};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::{router, telemetry};

/// How long in-flight requests may take to finish once shutdown starts.
const SHUTDOWN_GRACE_SECONDS: u64 = 10;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    amqp: AmqpSettings,
    /// The database, for the log followers' `LISTEN` connection.
    database: tokio_postgres::Config,
}

impl Application {
    /// Binds `api.host:api.port` (port 0 picks a free port) and prepares the server. The
    /// database is connected lazily, so the API starts (and reports not ready) while it is down.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::pool(&settings.database).context("creating the database pool")?;
        let database = db::config(&settings.database).context("reading the database URL")?;
        let cipher =
            Cipher::from_settings(&settings.encryption).context("loading the encryption keys")?;
        let address = format!("{}:{}", settings.api.host, settings.api.port);
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let scrape = Scrape::new(pool.clone(), settings.amqp.clone());
        let state = web::Data::new(AppState::new(
            pool,
            cipher,
            &settings,
            OutboxSignal::default(),
            scrape,
            gantry_shared::logs::Notifier::spawn(database.clone()),
        ));
        let server = serve(listener, state.clone())?;
        tracing::info!(%address, port, "gantry-api listening");
        Ok(Self {
            port,
            server,
            state,
            amqp: settings.amqp,
            database,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests, relays the outbox and listens for log lines until `shutdown` is
    /// cancelled, then lets in-flight requests finish and stops the relay and the listener.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let relay_stop = CancellationToken::new();
        let relay = tokio::spawn(outbox::run_relay(
            self.state.pool.clone(),
            self.amqp,
            self.state.outbox.clone(),
            relay_stop.clone(),
        ));
        let listener = tokio::spawn(
            self.state
                .logs
                .clone()
                .listen(self.database, relay_stop.clone()),
        );
        let handle = self.server.handle();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        let served = self.server.await.context("running the HTTP server");
        stopper.abort();
        relay_stop.cancel();
        relay.await.context("stopping the outbox relay")?;
        listener.await.context("stopping the log listener")?;
        served
    }
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(Compress::default())
            .wrap(from_fn(telemetry::trace_request))
            .configure(router::configure)
    })
    .listen(listener)
    .context("listening")?
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
    .run();
    Ok(server)
}
