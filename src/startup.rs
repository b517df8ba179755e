//! Builds the application: store, mail templates and transport, the outbox worker, the
//! expiry scheduler, the consent sweep and the HTTP server, and runs them until told to
//! stop.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use tokio::sync::{watch, Notify};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::mail::sender::MailSender;
use crate::mail::templates::MailTemplates;
use crate::mail::transport::MailTransport;
use crate::outbox::OutboxWorker;
use crate::service::Subscriptions;
use crate::store::SharedStore;
use crate::web::middleware::access_log::log_request;
use crate::web::middleware::timeout::Deadline;
use crate::web::pages::Pages;
use crate::web::AppState;
use crate::webhooks::WebhookClient;
use secrecy::ExposeSecret;

/// Which background tasks to run. Tests turn them off to drive them step by step.
#[derive(Clone, Copy, Debug)]
pub struct Background {
    pub outbox_worker: bool,
    pub scheduler: bool,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            outbox_worker: true,
            scheduler: true,
        }
    }
}

pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
    worker: OutboxWorker,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Opens the store named in the configuration and builds everything on it.
    pub async fn build(
        config: Config,
        clock: SharedClock,
        background: Background,
    ) -> anyhow::Result<Self> {
        let store = crate::store::open(&config.settings.store.url).await?;
        Self::build_with_store(config, store, clock, background).await
    }

    /// As [`Self::build`], serving on a listener the caller bound: tests bind port 0 and
    /// keep the listener, so no other process can take the port in between.
    pub async fn build_on(
        config: Config,
        clock: SharedClock,
        background: Background,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let store = crate::store::open(&config.settings.store.url).await?;
        Self::assemble(config, store, clock, background, Some(listener)).await
    }

    pub async fn build_with_store(
        config: Config,
        store: SharedStore,
        clock: SharedClock,
        background: Background,
    ) -> anyhow::Result<Self> {
        Self::assemble(config, store, clock, background, None).await
    }

    /// Builds everything; binds `server.bind` unless given a listener.
    async fn assemble(
        config: Config,
        store: SharedStore,
        clock: SharedClock,
        background: Background,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let settings = &config.settings;
        let templates = Arc::new(MailTemplates::load(
            settings.mail.templates_dir.as_deref(),
            &settings.signup.default_locale,
        )?);
        let pages = web::Data::new(Pages::load(
            settings.server.pages_dir.as_deref(),
            &settings.mail.service_name,
        )?);
        let transport = Arc::new(MailTransport::from_url(settings.mail.url.expose_secret())?);
        tracing::info!(store = %describe_store(&settings.store.url), mail = %transport.describe(), "starting");

        refuse_unfinished_restore(&store).await?;
        let wakeup = Arc::new(Notify::new());
        // One service for the process: the routes and the outbox worker share it.
        let subscriptions = Arc::new(Subscriptions::new(
            store.clone(),
            config.clone(),
            clock.clone(),
            wakeup.clone(),
        ));
        let mail = Arc::new(
            MailSender::new(
                templates,
                transport,
                config.clone(),
                subscriptions.links().clone(),
                clock.clone(),
            )
            .map_err(|e| anyhow::anyhow!("mail.dkim: {e}"))?,
        );
        // One client for the process: it pools connections per endpoint for all workers.
        let webhooks = WebhookClient::new(
            Duration::from_secs(settings.webhooks.timeout_secs),
            clock.clone(),
            settings.webhooks.network_policy(),
        )?;
        let worker = OutboxWorker::new(
            store,
            mail,
            webhooks,
            subscriptions.clone(),
            config.clone(),
            clock,
            wakeup,
        );
        let state = web::Data::new(AppState {
            subscriptions,
            pages,
            metrics: crate::telemetry::metrics_handle(),
            site: crate::web::Site::from_config(&config),
        });

        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(&settings.server.bind).map_err(|error| {
                anyhow::anyhow!("cannot listen on {}: {error}", settings.server.bind)
            })?,
        };
        let port = listener.local_addr()?.port();
        let server = http_server(state.clone(), listener)?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        if background.outbox_worker {
            // Claims are atomic in the store, so workers never take the same job.
            for _ in 0..settings.mail.workers {
                tasks.push(tokio::spawn(worker.clone().run(shutdown_rx.clone())));
            }
        }
        if background.scheduler {
            let interval = Duration::from_secs(settings.privacy.purge_interval_secs.max(1));
            tasks.push(tokio::spawn(run_scheduler(
                state.clone(),
                interval,
                shutdown_rx.clone(),
            )));
            let sweep_every = Duration::from_secs(u64::from(settings.consent.sweep_minutes) * 60);
            tasks.push(tokio::spawn(run_consent_sweep(
                state.clone(),
                sweep_every,
                shutdown_rx,
            )));
        }
        Ok(Self {
            server,
            port,
            state,
            worker,
            shutdown,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The outbox worker, for tests that send queued mail step by step.
    pub fn outbox(&self) -> OutboxWorker {
        self.worker.clone()
    }

    /// The shared state, for tests that run background steps (expiry) themselves.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server gracefully from elsewhere (tests, signals).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGTERM or SIGINT: stop accepting, finish requests),
    /// then lets the worker finish its current send.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("stopped");
        result
    }
}

fn http_server(state: web::Data<AppState>, listener: TcpListener) -> std::io::Result<Server> {
    let site = &state.site;
    let body_limit = site.body_limit_bytes;
    let cors_origins = site.cors_allowed_origins.clone();
    // The extractors and middleware take only what they need, not the whole state.
    let api_keys = web::Data::new(site.api_keys.clone());
    let deadline = web::Data::new(Deadline {
        limit: Duration::from_secs(site.request_timeout_secs),
        default_locale: state.default_locale().to_string(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(state.pages.clone())
            .app_data(api_keys.clone())
            .app_data(deadline.clone())
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer"))
                    .add((
                        "Content-Security-Policy",
                        crate::web::CONTENT_SECURITY_POLICY,
                    )),
            )
            .wrap(from_fn(crate::web::middleware::frame_options::deny_framing))
            .wrap(from_fn(crate::web::middleware::timeout::enforce_deadline))
            .wrap(from_fn(log_request))
            .configure(|cfg| crate::web::configure(cfg, body_limit, &cors_origins))
            .default_service(web::to(crate::web::not_found))
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}

/// Runs the expiry purge, the confirmation reminders and the retention purge on a fixed
/// interval.
async fn run_scheduler(
    state: web::Data<AppState>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        match state.subscriptions.purge_expired().await {
            Ok(report) => {
                if report.pending_removed > 0 {
                    tracing::info!(
                        pending = report.pending_removed,
                        contacts = report.contacts_removed,
                        "expired confirmations purged"
                    );
                    metrics::counter!("optin_expired_confirmations_total")
                        .increment(report.pending_removed as u64);
                }
                if report.held_removed > 0 {
                    tracing::info!(
                        held = report.held_removed,
                        "expired quarantined signups dropped"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "expiry purge failed; will retry"),
        }
        match state.subscriptions.purge_erased_if_due(interval).await {
            Ok(true) => tracing::info!("erased data purged from the store's files"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "purging erased data from the store's files failed; will retry");
            }
        }
        match state.subscriptions.send_reminders().await {
            Ok(report) if report.mailed + report.skipped > 0 => {
                tracing::info!(
                    mailed = report.mailed,
                    skipped = report.skipped,
                    "confirmation reminders"
                );
                metrics::counter!("optin_confirmation_reminders_total", "outcome" => "mailed")
                    .increment(report.mailed as u64);
                metrics::counter!("optin_confirmation_reminders_total", "outcome" => "skipped")
                    .increment(report.skipped as u64);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reminder sweep failed; will retry"),
        }
        match state.subscriptions.purge_inactive().await {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(
                    removed,
                    "inactive contacts removed after their retention period"
                );
                metrics::counter!("optin_retention_removed_total").increment(removed as u64);
            }
            Err(error) => tracing::warn!(%error, "retention purge failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs the consent sweep at start and then every `consent.sweep_minutes`: renewal
/// requests now due, and consent that has lapsed.
async fn run_consent_sweep(
    state: web::Data<AppState>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    // The first tick is at once: the sweep at start.
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => sweep_consent_once(&state).await,
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

async fn sweep_consent_once(state: &AppState) {
    let report = match state.subscriptions.sweep_consent().await {
        Ok(report) => report,
        Err(error) => return tracing::warn!(%error, "consent sweep failed; will retry"),
    };
    if report.renewals_asked > 0 || report.lapsed > 0 {
        tracing::info!(
            renewals_asked = report.renewals_asked,
            lapsed = report.lapsed,
            "consent sweep"
        );
    }
    metrics::counter!("optin_consent_renewals_asked_total").increment(report.renewals_asked as u64);
    metrics::counter!("optin_consent_lapsed_total").increment(report.lapsed as u64);
}

/// A store that a restore or copy left unfinished holds only part of what it should:
/// serving from it would answer for contacts as if the rest never existed. A store that
/// does not answer yet is not refused (Redis may come up after the service).
async fn refuse_unfinished_restore(store: &SharedStore) -> anyhow::Result<()> {
    match store.restore_mark().await {
        Ok(Some(mark)) => anyhow::bail!(
            "the store holds an unfinished {} (started {}): it is incomplete. Empty it (remove the file, or FLUSHALL on every Redis primary) and run `optin restore --config <file> --from <dump>` (or `optin migrate`) again",
            mark.by,
            mark.started_at.to_rfc3339()
        ),
        Ok(None) => Ok(()),
        Err(error) => {
            tracing::warn!(%error, "could not check the store for an unfinished restore");
            Ok(())
        }
    }
}

/// The store URL without credentials, for the log.
fn describe_store(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.scheme().starts_with("redis") => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string()
        }
        _ => format!("embedded ({url})"),
    }
}
