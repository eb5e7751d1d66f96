//! `serve` and `consume`: the HTTP endpoint, the SQS consumer, or both, until a signal.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use tracing::{info, warn};

use crate::backend::local::DataDirLock;
use crate::cli::startup::App;
use crate::cli::{BackendKind, Config};
use crate::inbound::consumer::{Consumed, Consumer};
use crate::inbound::gate::ApiTokens;
use crate::inbound::http::{self, AppState};
use crate::ports::ledger::CaseLedger;
use crate::ports::queue::WorkQueue;

use anyhow::Context;

use super::Usage;

/// What `serve` runs: the HTTP endpoint (`/serviceme`; off: only `/healthz`), the SQS
/// consumer, or both.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mode {
    pub http: bool,
    pub consume: bool,
}

pub(super) async fn serve(config: &Config, mode: Mode) -> anyhow::Result<()> {
    let queue_url = queue_url(config, mode)?;
    let tokens = config.api_tokens().map_err(Usage)?;
    config.account_roles().map_err(Usage)?;
    // One serving process per local data directory: then every claim found at start was
    // left by a process that stopped, and is settled now rather than after its lease.
    let _lock = match config.store.backend {
        BackendKind::Local => Some(DataDirLock::acquire(&config.store.data_dir)?),
        BackendKind::Aws => None,
    };
    let mut app = crate::cli::startup::build(config).await?;
    if _lock.is_some() {
        settle_claims(&app).await;
    }
    let publisher = app.publisher.clone();
    let queue = match &queue_url {
        Some(url) => Some(app.work_queue(config, url).await),
        None => None,
    };
    let state = app.into_state(config).await?.with_health_only(!mode.http);
    // Before anything says "listening": a SIGTERM from then on is a clean shutdown.
    let shutdown = http::shutdown_signal();
    let listener = listen(config, &tokens).await?;
    // One signal stops both the HTTP server and the consumer.
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let background = Background::start(config, mode, &state, queue, &stopped);
    let ledger = state.cases.ledger().clone();
    let served = http::serve(listener, state, until_stopped(stopped)).await;
    background.join().await;
    // History the ledger kept waiting (duplicates noted in batches).
    if let Err(e) = ledger.flush().await {
        warn!(error = %crate::errors::Chain(&e), "could not write the last noted duplicates");
    }
    served.context("the server failed")?;
    if let Some(publisher) = publisher {
        publisher.close().await;
    }
    info!("stopped");
    Ok(())
}

/// The queue to consume, when consuming: without QUEUE_URL there is none, which is bad
/// input rather than a failure.
fn queue_url(config: &Config, mode: Mode) -> Result<Option<String>, Usage> {
    match (mode.consume, &config.queue.queue_url) {
        (true, None) => Err(Usage(
            "consuming needs QUEUE_URL (or --queue-url): the SQS queue to read".into(),
        )),
        (true, Some(url)) => Ok(Some(url.clone())),
        (false, _) => Ok(None),
    }
}

/// Settles the claims a stopped process left (the data directory's lock is held, so no
/// running process can own them). A failure is logged, not fatal: the claims then lapse
/// with their lease.
async fn settle_claims(app: &App) {
    match app.cases.recover_claims().await {
        Ok(r) if r == Default::default() => {}
        Ok(r) => info!(
            adopted = r.adopted,
            released = r.released,
            left = r.left,
            "claims left by a stopped process settled at start"
        ),
        Err(e) => {
            warn!(error = %crate::errors::Chain(&e), "could not settle the claims left by a stopped process")
        }
    }
}

/// Binds the configured address and says so (and, when unsigned posts are heard from no
/// one elsewhere, how to change that).
async fn listen(config: &Config, tokens: &ApiTokens) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(config.server.bind, config.server.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    info!(
        %addr,
        backend = config.store.backend.as_str(),
        data_dir = %config.store.data_dir.display(),
        "cw-support-api listening"
    );
    if tokens.is_empty() && !config.server.bind.is_loopback() {
        info!(
            bind = %config.server.bind,
            "API_TOKENS is empty: unsigned posts are heard only from TRUST_SQSD_FROM (this host by default); set API_TOKENS for monitors elsewhere"
        );
    }
    Ok(listener)
}

/// Completes once the shutdown signal has been relayed (or its sender is gone).
async fn until_stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The work that runs beside the HTTP server until the signal: the consumer, the
/// reconciler that stands in for cron.yaml, the notice sender and the duplicate flusher.
struct Background {
    consumer: Option<JoinHandle<Consumed>>,
    reconciler: Option<JoinHandle<()>>,
    sender: JoinHandle<()>,
    flusher: JoinHandle<()>,
    /// Escalates pages and sends their messages (where the backend keeps pages).
    pager: Option<JoinHandle<()>>,
}

impl Background {
    fn start(
        config: &Config,
        mode: Mode,
        state: &AppState,
        queue: Option<Arc<dyn WorkQueue>>,
        stopped: &watch::Receiver<bool>,
    ) -> Self {
        let consumer = queue.map(|queue| spawn_consumer(config, state, queue, stopped));
        // Without a worker daemon there is no cron.yaml: the consumer schedules `reconcile`
        // itself, through the same path as the daemon's periodic task.
        let reconciler = (mode.consume && !config.queue.reconcile_interval.is_zero())
            .then(|| spawn_reconciler(state, config.queue.reconcile_interval, stopped));
        // The notices the outbox holds (and those queued from now on) are sent by this
        // process, until the signal; what is left is sent after the next start, or by
        // another instance.
        let sender = {
            let (notifier, rx) = (state.cases.notifier().clone(), stopped.clone());
            tokio::spawn(async move { notifier.deliver_until(rx).await })
        };
        let flusher = spawn_flusher(state.cases.ledger().clone(), stopped);
        // Pages escalate from the ledger: a step due while no process ran fires at the
        // start, and one instance of a fleet runs each (leases).
        let pager = state.cases.pager().map(|pager| {
            let (pager, rx) = (pager.clone(), stopped.clone());
            tokio::spawn(async move { pager.run_until(rx).await })
        });
        Background {
            consumer,
            reconciler,
            sender,
            flusher,
            pager,
        }
    }

    /// Waits for each to finish what it was doing when the signal came.
    async fn join(self) {
        let _ = self.flusher.await;
        let _ = self.sender.await;
        if let Some(p) = self.pager {
            let _ = p.await;
        }
        if let Some(r) = self.reconciler {
            let _ = r.await;
        }
        if let Some(c) = self.consumer {
            let _ = c.await;
        }
    }
}

fn spawn_consumer(
    config: &Config,
    state: &AppState,
    queue: Arc<dyn WorkQueue>,
    stopped: &watch::Receiver<bool>,
) -> JoinHandle<Consumed> {
    let (state, rx) = (state.clone(), stopped.clone());
    let consumer = Consumer {
        queue,
        concurrency: config.queue.consume_concurrency,
        retry_visibility: config.queue.retry_visibility,
        shutdown_grace: config.server.shutdown_grace,
    };
    tokio::spawn(async move { consumer.run(state, until_stopped(rx)).await })
}

/// Delivers the `reconcile` task every `every`, as the worker daemon would.
fn spawn_reconciler(
    state: &AppState,
    every: std::time::Duration,
    stopped: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    let (state, mut rx) = (state.clone(), stopped.clone());
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = rx.wait_for(|s| *s) => return,
            }
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-aws-sqsd-taskname",
                http::RECONCILE_TASK.parse().expect("header"),
            );
            let id = format!("reconcile-{}", chrono::Utc::now().timestamp());
            if let Ok(v) = id.parse() {
                headers.insert("x-aws-sqsd-msgid", v);
            }
            http::deliver(&state, http::Origin::Queue, &headers, Default::default()).await;
        }
    })
}

/// Duplicates the ledger counts in memory are written at least this often, so another
/// process (`cases list`) sees them within seconds.
fn spawn_flusher(ledger: Arc<dyn CaseLedger>, stopped: &watch::Receiver<bool>) -> JoinHandle<()> {
    let mut rx = stopped.clone();
    tokio::spawn(async move {
        let every = crate::ports::ledger::DuplicateTally::WAIT;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = rx.wait_for(|s| *s) => return,
            }
            if let Err(e) = ledger.flush().await {
                warn!(error = %crate::errors::Chain(&e), "could not write the noted duplicates");
            }
        }
    })
}
