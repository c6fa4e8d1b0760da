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
use crate::chatops::{self, Access, SlackState};
use crate::config::{Catalog, Settings};
use crate::dispatch::enrich::PagerDutyLookup;
use crate::dispatch::priority::rank;
use crate::dispatch::Dispatcher;
use crate::http::{self, ApiState};
use crate::limits::Guards;
use crate::metrics::Metrics;
use crate::notify::alertmanager::AlertmanagerClient;
use crate::notify::grafana::{AnnotationsApi, GrafanaClient, GrafanaConfig};
use crate::notify::pagerduty::{PagerDutyApi, PagerDutyClient};
use crate::notify::slack::{ChatApi, SlackLink, SlackWebApi};
use crate::notify::{outbox, Reporter};
use crate::responders::overrides::ModeOverrides;
use crate::sources::schedule::{self, Clock};
use crate::sources::{self, docker_events, SourceState};
use crate::store::{self, Intake, Prioritize, Store};

mod web;

/// A built, bound, not yet serving application.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    request_timeout: Duration,
    tls: Option<http::TlsHandle>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
    background: TaskTracker,
    dispatcher: tokio::task::JoinHandle<()>,
    outbox_stop: CancellationToken,
    drain: Duration,
}

/// After the drain, how long open connections get to finish their requests.
const HTTP_GRACE: Duration = Duration::from_secs(10);
/// How long the dispatcher may take to stop (it gives runs 10 s of that).
const DISPATCH_GRACE: Duration = Duration::from_secs(12);
/// How long the rest of the background work (the outbox's last flush) may take.
const BACKGROUND_GRACE: Duration = Duration::from_secs(8);

impl Application {
    /// Builds everything from settings and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`], with the clock schedules read: tests set one by hand.
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        settings.check_exposure()?;
        // reqwest and slack-morphism both link rustls; name the provider once for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        create_sqlite_dir(&settings.database_url)?;
        let store = store::connect(&settings.database_url, &settings.store_options())
            .await
            .with_context(|| {
                format!(
                    "opening the database {}",
                    store::redact_url(&settings.database_url)
                )
            })?;
        tracing::info!(
            owner = store.owner(),
            "Store open; this replica holds its runs under this name."
        );
        let catalog = Arc::new(Catalog::load(
            &settings.routes_dir,
            &settings.responders_dir,
        )?);
        let playbook_config = catalog.playbook_config(&settings.playbook_config)?;
        tracing::info!(
            routes = catalog.routes.routes.len(),
            responders = catalog.responders.len(),
            "Catalog loaded."
        );
        let actions =
            ActionCtx::connect(settings.docker_host.as_deref()).map_err(anyhow::Error::msg)?;
        check_docker(&actions.docker).await;

        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let background = TaskTracker::new();
        let outbox_wake = Arc::new(Notify::new());
        let cluster_outbox_wake = outbox_wake.clone();
        // The outbox outlives the dispatcher, so the last steps' messages can still go out.
        let outbox_stop = CancellationToken::new();
        // The one Slack client: the outbox, group lookups and response_url follow-ups share it.
        let slack_link = SlackLink::new(&settings.slack_api_url)
            .context("configuring the Slack client (SLACK_API_URL)")?;
        let chat = slack_client(&settings, &slack_link)?;
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
                outbox_stop.clone(),
            ));
        }
        let pagerduty_wake = Arc::new(Notify::new());
        let cluster_pagerduty_wake = pagerduty_wake.clone();
        let pd = &settings.pagerduty;
        let reporter =
            reporter.with_pagerduty(pd.notes_on(), pd.events_on(), pagerduty_wake.clone());
        if let Some(pagerduty) = pagerduty_client(&settings)? {
            background.spawn(outbox::deliver_pagerduty(
                store.clone(),
                pagerduty,
                pagerduty_wake,
                metrics.clone(),
                shutdown.clone(),
            ));
        }
        let grafana_wake = Arc::new(Notify::new());
        let cluster_grafana_wake = grafana_wake.clone();
        let reporter = match grafana_client(&settings)? {
            Some((grafana, config)) => {
                background.spawn(outbox::deliver_grafana(
                    store.clone(),
                    grafana,
                    config,
                    grafana_wake.clone(),
                    metrics.clone(),
                    shutdown.clone(),
                ));
                reporter.with_grafana(grafana_wake)
            }
            None => reporter,
        };

        let journal_wake = Arc::new(Notify::new());
        let approvals = Arc::new(Notify::new());
        let ranking = catalog.clone();
        let intake = Intake::start(store.clone(), journal_wake.clone(), shutdown.clone())
            .prioritized(Prioritize(Arc::new(move |alert| rank(&ranking, alert))))
            .bounded(store.clone(), settings.max_backlog, shutdown.clone());
        let docker = actions.docker.clone();
        let modes = Arc::new(ModeOverrides::new(
            settings.mode,
            &store
                .mode_overrides()
                .await
                .context("reading the mode overrides")?,
        ));
        let slack = SlackState {
            settings: Arc::new(settings.slack_chat.clone()),
            store: store.clone(),
            intake: intake.clone(),
            catalog: catalog.clone(),
            modes: modes.clone(),
            actions: actions.clone(),
            approvals: approvals.clone(),
            reporter: reporter.clone(),
            access: Arc::new(Access::new(
                slack_link.clone(),
                settings.slack_bot_token.clone(),
            )),
            slack: slack_link,
            body_limit: settings.body_limit,
            replays: Arc::default(),
        };
        let scheduled = catalog.clone();
        let responders: Arc<[_]> = catalog.responders.values().cloned().collect();
        let public_url = settings.public_url.clone();
        let alertmanager = alertmanager_client(&settings, &catalog)?;
        let dispatcher = Dispatcher {
            store: store.clone(),
            catalog,
            mode: settings.mode,
            modes,
            actions,
            guards: Guards::new(settings.max_runs, settings.actions_per_minute),
            reporter,
            wake: journal_wake,
            active: Arc::default(),
            tracker: TaskTracker::new(),
            config: Arc::new(playbook_config),
            approval_ttl: settings.approval_ttl,
            approvals: approvals.clone(),
            metrics: metrics.clone(),
            max_runs: u32::try_from(settings.max_runs).unwrap_or(u32::MAX),
            actions_per_minute: settings.actions_per_minute.get(),
            reap_every: settings.lease / 3,
            cluster_wake: Arc::new(Notify::new()),
            post_unrouted: settings.slack_post_unrouted,
            folds: Arc::default(),
            public_url,
            alertmanager,
            pagerduty_lookup: match pagerduty_lookup(&settings)? {
                Some(lookup) => Some(lookup),
                None => {
                    tracing::info!("PagerDuty alert lookups are off: PAGERDUTY_API_TOKEN is not set; incidents get labels from their titles only.");
                    None
                }
            },
        };
        if let Some(wakeups) = store
            .wakeups()
            .await
            .context("listening for other replicas' changes")?
        {
            tracing::info!("Listening for other replicas' changes (LISTEN/NOTIFY); polling stays as the fallback.");
            let wakes = Wakes {
                journal: dispatcher.wake.clone(),
                outbox: vec![
                    cluster_outbox_wake,
                    cluster_pagerduty_wake,
                    cluster_grafana_wake,
                ],
                approvals: dispatcher.approvals.clone(),
                cluster: dispatcher.cluster_wake.clone(),
            };
            background.spawn(wakes.forward(wakeups, shutdown.clone()));
        }
        let dispatcher = tokio::spawn(dispatcher.run(shutdown.clone()));
        background.spawn(schedule::run(
            scheduled,
            store.clone(),
            intake.clone(),
            clock,
            shutdown.clone(),
        ));
        background.spawn(docker_events::stream::run(
            docker,
            settings.oom_containers.clone(),
            intake.clone(),
            shutdown.clone(),
        ));

        let token = settings.webhook_token.clone().map(Arc::new);
        let (access, tls, reloader) = web::web_access(&settings, token);
        if let Some(reloader) = reloader {
            background.spawn(reloader.run(shutdown.clone()));
        }
        if settings.slack_chat.signing_secret.is_none() {
            tracing::info!("SLACK_SIGNING_SECRET is not set: POST /slack/commands and /slack/interactions answer 503.");
        }
        if settings.pagerduty_webhook_secret.is_none() {
            tracing::info!(
                "PAGERDUTY_WEBHOOK_SECRET is not set: POST /webhook/pagerduty answers 503."
            );
        }
        let intake_health = intake.health();
        let budget = http::BodyBudget::new(settings.body_limit, settings.body_budget);
        let sources = SourceState {
            intake,
            access: access.clone(),
            pagerduty_secret: settings.pagerduty_webhook_secret.clone().map(Arc::new),
            budget: budget.clone(),
            metrics: metrics.clone(),
        };
        let webhooks = sources::routes(sources).merge(chatops::routes(slack, &budget));
        let router = http::router(
            webhooks,
            ApiState {
                store: store.clone(),
                access,
                admin_token: settings.admin_token.clone().map(Arc::new),
                approvals,
                metrics,
                health: intake_health,
                request_timeout: settings.request_timeout,
                budget,
                responders,
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
            tls,
            store,
            shutdown,
            background,
            dispatcher,
            outbox_stop,
            drain: settings.shutdown_drain,
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

    /// Serves until the shutdown token is cancelled, then stops in a bounded time: webhooks
    /// get 503 for the drain period, open requests finish, runs get 10 s to finish (the rest
    /// are reported as interrupted at the next start), and the outbox sends what is due.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let drain = self.drain;
        // Webhooks answer 503 while draining (the intake is closed); only then does the
        // listener close, so senders see a refusal they retry, not a reset.
        let stop_accepting = CancellationToken::new();
        let draining = {
            let (shutdown, stop) = (shutdown.clone(), stop_accepting.clone());
            async move {
                shutdown.cancelled().await;
                tracing::info!(drain = %humantime::format_duration(drain), "Shutting down: new alerts are refused with 503.");
                tokio::time::sleep(drain).await;
                stop.cancel();
            }
        };
        let serve = http::serve(
            self.listener,
            self.router,
            self.request_timeout,
            self.tls,
            stop_accepting,
        );
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(drain + HTTP_GRACE).await;
        };
        tokio::select! {
            ((), ()) = async { tokio::join!(serve, draining) } => {}
            () = deadline => tracing::warn!("Connections still open after the grace period; closing them."),
        }
        if tokio::time::timeout(DISPATCH_GRACE, self.dispatcher)
            .await
            .is_err()
        {
            tracing::warn!("The dispatcher did not stop in time.");
        }
        self.outbox_stop.cancel();
        self.background.close();
        if tokio::time::timeout(BACKGROUND_GRACE, self.background.wait())
            .await
            .is_err()
        {
            tracing::warn!("Background work did not stop in time.");
        }
        tracing::info!("Stopped.");
        Ok(())
    }
}

/// The outbox's Slack calls over the shared client, when a bot token is set.
fn slack_client(settings: &Settings, link: &SlackLink) -> anyhow::Result<Option<Arc<dyn ChatApi>>> {
    let Some(token) = settings.slack_bot_token.clone() else {
        tracing::warn!("Slack delivery is off: SLACK_BOT_TOKEN is not set. Incidents, steps and messages are still recorded (GET /api/incidents).");
        return Ok(None);
    };
    let client = SlackWebApi::over(link.clone(), token).context("configuring the Slack client")?;
    tracing::info!(channel = %settings.slack_channel, "Slack delivery is on.");
    Ok(Some(Arc::new(client)))
}

/// The PagerDuty client when any PagerDuty output is on; says at startup which are.
fn pagerduty_client(settings: &Settings) -> anyhow::Result<Option<Arc<dyn PagerDutyApi>>> {
    let pd = &settings.pagerduty;
    let (notes, events) = (pd.notes_on(), pd.events_on());
    if !notes {
        tracing::info!(
            "PagerDuty notes are off: PAGERDUTY_API_TOKEN and PAGERDUTY_FROM are not both set."
        );
    }
    if !events {
        tracing::info!("PagerDuty events are off: PAGERDUTY_ROUTING_KEY is not set.");
    }
    if !(notes || events) {
        return Ok(None);
    }
    tracing::info!(notes, events, api_url = %pd.api_url, events_url = %pd.events_url, "PagerDuty delivery is on.");
    let client = PagerDutyClient::new(pd.clone()).context("configuring the PagerDuty client")?;
    Ok(Some(Arc::new(client)))
}

/// The Grafana client when annotations are on; says at startup whether they are.
fn grafana_client(
    settings: &Settings,
) -> anyhow::Result<Option<(Arc<dyn AnnotationsApi>, GrafanaConfig)>> {
    let Some(config) = settings.grafana.clone() else {
        tracing::info!(
            "Grafana annotations are off: GRAFANA_URL and GRAFANA_API_TOKEN are not both set."
        );
        return Ok(None);
    };
    tracing::info!(url = %config.url, dashboard_uid = config.dashboard_uid.as_deref().unwrap_or("(organization)"), "Grafana annotations are on.");
    let client = GrafanaClient::new(&config).context("configuring the Grafana client")?;
    Ok(Some((Arc::new(client), config)))
}

/// The Alertmanager client silences are made with, when `ALERTMANAGER_URL` is set; says at
/// startup whether routes that ask for silences get them.
fn alertmanager_client(
    settings: &Settings,
    catalog: &Catalog,
) -> anyhow::Result<Option<AlertmanagerClient>> {
    let silencing: Vec<&str> = (catalog.routes.routes.iter())
        .filter(|r| r.silence)
        .map(|r| r.origin.as_str())
        .collect();
    if settings.alertmanager_urls.is_empty() {
        if !silencing.is_empty() {
            tracing::info!(routes = %silencing.join(", "), "Silences are off: these routes say `silence: true` but ALERTMANAGER_URL is not set; their alerts keep notifying people while they are handled.");
        }
        return Ok(None);
    }
    tracing::info!(alertmanager = %settings.alertmanager_urls.join(", "), routes = silencing.len(), "Silences are on for routes with `silence: true`.");
    let client = AlertmanagerClient::new(settings.alertmanager_urls.clone())
        .map_err(|e| anyhow::anyhow!("configuring the Alertmanager client: {e}"))?;
    Ok(Some(client))
}

/// Reads PagerDuty incidents' first alerts for their labels when `PAGERDUTY_API_TOKEN` is set.
pub fn pagerduty_lookup(settings: &Settings) -> anyhow::Result<Option<Arc<PagerDutyLookup>>> {
    if settings.pagerduty.api_token.is_none() {
        return Ok(None);
    }
    let client = PagerDutyClient::new(settings.pagerduty.clone())
        .context("configuring the PagerDuty client")?;
    Ok(Some(Arc::new(PagerDutyLookup::new(Arc::new(client)))))
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

/// Where a wake-up from another replica goes: the loop that acts on that kind of change.
struct Wakes {
    journal: Arc<Notify>,
    outbox: Vec<Arc<Notify>>,
    approvals: Arc<Notify>,
    cluster: Arc<Notify>,
}

impl Wakes {
    async fn forward(
        self,
        mut wakeups: futures::stream::BoxStream<'static, store::Wakeup>,
        shutdown: CancellationToken,
    ) {
        use futures::StreamExt;
        loop {
            let wakeup = tokio::select! {
                next = wakeups.next() => match next {
                    Some(wakeup) => wakeup,
                    None => return,
                },
                _ = shutdown.cancelled() => return,
            };
            match wakeup {
                store::Wakeup::Journal => self.journal.notify_one(),
                store::Wakeup::Outbox => self.outbox.iter().for_each(|w| w.notify_one()),
                store::Wakeup::Approvals => self.approvals.notify_waiters(),
                store::Wakeup::Modes | store::Wakeup::Runs => self.cluster.notify_one(),
            }
        }
    }
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
