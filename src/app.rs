//! The composition root: the only place that builds and wires the store, catalog, clients,
//! dispatcher, outbox and HTTP server. `serve` and the integration tests build the same app.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::ActionCtx;
use crate::config::{Catalog, Settings};
use crate::dispatch::Dispatcher;
use crate::http::{self, ApiState};
use crate::limits::Guards;
use crate::metrics::Metrics;
use crate::notify::slack::{ChatApi, SlackWebApi};
use crate::notify::{outbox, Reporter};
use crate::sources::{docker_events, SourceState};
use crate::store::{Intake, SqliteStore, Store};

/// A built, bound, not yet serving application.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    request_timeout: Duration,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    background: TaskTracker,
}

impl Application {
    /// Builds everything from settings and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.check_exposure()?;
        // reqwest and slack-morphism both link rustls; name the provider once for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        create_sqlite_dir(&settings.database_url)?;
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::connect(&settings.database_url)
                .await
                .with_context(|| format!("opening the database {}", settings.database_url))?,
        );
        let catalog = Arc::new(Catalog::load(
            &settings.routes_dir,
            &settings.responders_dir,
        )?);
        tracing::info!(
            routes = catalog.routes.routes.len(),
            responders = catalog.responders.len(),
            "Catalog loaded."
        );
        let actions = ActionCtx::connect().map_err(anyhow::Error::msg)?;
        check_docker(&actions.docker).await;

        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let background = TaskTracker::new();
        let outbox_wake = Arc::new(Notify::new());
        let chat = slack_client(&settings)?;
        let reporter = Reporter::new(
            store.clone(),
            chat.is_some(),
            settings.oncall_mention.clone(),
            outbox_wake.clone(),
        );
        if let Some(chat) = chat {
            background.spawn(outbox::deliver(
                store.clone(),
                chat,
                settings.slack_channel.clone(),
                outbox_wake,
                metrics.clone(),
                shutdown.clone(),
            ));
        }

        let journal_wake = Arc::new(Notify::new());
        let approvals = Arc::new(Notify::new());
        let intake = Intake::start(store.clone(), journal_wake.clone());
        let docker = actions.docker.clone();
        let dispatcher = Dispatcher {
            store: store.clone(),
            catalog,
            mode: settings.mode,
            actions,
            guards: Guards::new(settings.max_runs, settings.actions_per_minute),
            reporter,
            wake: journal_wake,
            active: Arc::default(),
            tracker: TaskTracker::new(),
            config: Arc::new(settings.playbook_config.clone()),
            approval_ttl: settings.approval_ttl,
            approvals: approvals.clone(),
            metrics: metrics.clone(),
        };
        background.spawn(dispatcher.run(shutdown.clone()));
        background.spawn(docker_events::stream::run(
            docker,
            settings.oom_containers.clone(),
            intake.clone(),
            shutdown.clone(),
        ));

        let token = settings.webhook_token.clone().map(Arc::new);
        if token.is_none() {
            tracing::warn!("RESPONDER_WEBHOOK_TOKEN is not set: webhooks are accepted without authentication (allowed on loopback only).");
        }
        if settings.pagerduty_webhook_secret.is_none() {
            tracing::info!(
                "PAGERDUTY_WEBHOOK_SECRET is not set: POST /webhook/pagerduty answers 503."
            );
        }
        let sources = SourceState {
            intake,
            webhook_token: token.clone(),
            pagerduty_secret: settings.pagerduty_webhook_secret.clone().map(Arc::new),
            body_limit: settings.body_limit,
            metrics: metrics.clone(),
        };
        let router = http::router(
            sources,
            ApiState {
                store: store.clone(),
                token,
                admin_token: settings.admin_token.clone().map(Arc::new),
                approvals,
                metrics,
                request_timeout: settings.request_timeout,
            },
        );
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {} (RESPONDER_LISTEN)", settings.listen))?;
        tracing::info!(address = %listener.local_addr()?, mode = %settings.mode, "Listening.");
        Ok(Self {
            listener,
            router,
            request_timeout: settings.request_timeout,
            store,
            shutdown,
            background,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The store, for tests that inspect the record directly.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// A token that stops the application when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains background work.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        http::serve(self.listener, self.router, self.request_timeout, shutdown).await;
        self.background.close();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.background.wait()).await;
        tracing::info!("Stopped.");
        Ok(())
    }
}

fn slack_client(settings: &Settings) -> anyhow::Result<Option<Arc<dyn ChatApi>>> {
    let Some(token) = settings.slack_bot_token.clone() else {
        tracing::warn!("Slack delivery is off: SLACK_BOT_TOKEN is not set. Incidents, steps and messages are still recorded (GET /api/incidents).");
        return Ok(None);
    };
    let client = SlackWebApi::new(&settings.slack_api_url, token)
        .context("configuring the Slack client (SLACK_API_URL)")?;
    tracing::info!(channel = %settings.slack_channel, "Slack delivery is on.");
    Ok(Some(Arc::new(client)))
}

/// Creates the directory of a `sqlite://path` database so a fresh clone just runs.
fn create_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Says at startup whether Docker answers; the service still starts (alerts are recorded and
/// steps fail with a clear error) so an engine restart does not take the responder down.
async fn check_docker(docker: &bollard::Docker) {
    match tokio::time::timeout(Duration::from_secs(3), docker.ping()).await {
        Ok(Ok(_)) => tracing::info!("Docker engine reachable."),
        Ok(Err(e)) => {
            tracing::warn!(error.message = %e, "Docker engine not reachable (DOCKER_HOST or /var/run/docker.sock); Docker steps will fail until it is.")
        }
        Err(_) => tracing::warn!(
            "Docker engine did not answer within 3s; Docker steps will fail until it does."
        ),
    }
}
