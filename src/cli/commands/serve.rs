//! `serve` and `consume`: the HTTP endpoint, the SQS consumer, or both, until a signal.

use std::net::SocketAddr;

use axum::http::HeaderMap;

use tracing::{info, warn};

use crate::cli::{BackendKind, Config};
use crate::inbound::http;

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
    let queue_url = match (mode.consume, &config.queue_url) {
        (true, None) => {
            return Err(Usage(
                "consuming needs QUEUE_URL (or --queue-url): the SQS queue to read".into(),
            )
            .into());
        }
        (true, Some(url)) => Some(url.clone()),
        (false, _) => None,
    };
    let tokens = config.api_tokens().map_err(Usage)?;
    config.account_roles().map_err(Usage)?;
    // One serving process per local data directory: then every claim found at start was
    // left by a process that stopped, and is settled now rather than after its lease.
    let _lock = match config.backend {
        BackendKind::Local => Some(crate::backend::local::DataDirLock::acquire(
            &config.data_dir,
        )?),
        BackendKind::Aws => None,
    };
    let mut app = crate::cli::startup::build(config).await?;
    if _lock.is_some() {
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
    let publisher = app.publisher.clone();
    let queue = match &queue_url {
        Some(url) => Some(app.work_queue(config, url).await),
        None => None,
    };
    let state = app.into_state(config).await?.with_health_only(!mode.http);
    // Before anything says "listening": a SIGTERM from then on is a clean shutdown.
    let shutdown = http::shutdown_signal();
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    info!(
        %addr,
        backend = config.backend.as_str(),
        data_dir = %config.data_dir.display(),
        "cw-support-api listening"
    );
    if tokens.is_empty() && !config.bind.is_loopback() {
        info!(
            bind = %config.bind,
            "API_TOKENS is empty: unsigned posts are heard only from TRUST_SQSD_FROM (this host by default); set API_TOKENS for monitors elsewhere"
        );
    }
    // One signal stops both the HTTP server and the consumer.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let consumer = queue.map(|queue| {
        let state = state.clone();
        let rx = stopped.clone();
        let (concurrency, retry_visibility, grace) = (
            config.consume_concurrency,
            config.retry_visibility,
            config.shutdown_grace,
        );
        tokio::spawn(async move {
            let consumer = crate::inbound::consumer::Consumer {
                queue,
                concurrency,
                retry_visibility,
                shutdown_grace: grace,
            };
            consumer.run(state, wait(rx)).await
        })
    });
    // Without a worker daemon there is no cron.yaml: the consumer schedules `reconcile`
    // itself, through the same path as the daemon's periodic task.
    let reconciler = (mode.consume && !config.reconcile_interval.is_zero()).then(|| {
        let (state, every, mut rx) = (state.clone(), config.reconcile_interval, stopped.clone());
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
    });
    // The notices the outbox holds (and those queued from now on) are sent by this process,
    // until the signal; what is left is sent after the next start, or by another instance.
    let sender = {
        let (notifier, rx) = (state.cases.notifier().clone(), stopped.clone());
        tokio::spawn(async move { notifier.deliver_until(rx).await })
    };
    let ledger = state.cases.ledger().clone();
    // Duplicates the ledger counts in memory are written at least this often, so another
    // process (`cases list`) sees them within seconds.
    let flusher = {
        let (ledger, mut rx) = (ledger.clone(), stopped.clone());
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
    };
    let served = http::serve(listener, state, wait(stopped)).await;
    let _ = flusher.await;
    let _ = sender.await;
    if let Some(r) = reconciler {
        let _ = r.await;
    }
    if let Some(c) = consumer {
        let _ = c.await;
    }
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
