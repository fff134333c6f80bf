//! The long-running service: the scheduler and the HTTP server on one store, systemd
//! notification (READY, STATUS, WATCHDOG), and signals: SIGHUP reloads the config, SIGTERM and
//! SIGINT stop cleanly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sd_notify::NotifyState;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::context;
use super::notify::Notifier;
use crate::config::Config;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::schedule;
use crate::serve::{self, AppState, Cache};

/// After SIGTERM, how long the HTTP server may take to finish open requests.
const SERVER_GRACE: Duration = Duration::from_secs(3);

pub async fn run(config_path: PathBuf, config: Config) -> anyhow::Result<ExitCode> {
    let listen = config.server.listen;
    let ctx = context(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local}");

    let token = CancellationToken::new();
    let (config_tx, config_rx) = watch::channel(ctx.config.clone());
    let live = Arc::new(Live::new());
    let metrics = Metrics::new();
    let state = AppState::new(serve::Shared {
        store: ctx.store.clone(),
        config: config_rx.clone(),
        cache: Arc::new(Cache::new()),
        live: live.clone(),
        metrics: metrics.clone(),
    });
    let changed = live.clone();
    (ctx.store).watch_changes(token.clone(), Arc::new(move || changed.changed()));
    tokio::spawn(serve::websub::run(state.clone(), token.clone()));
    let server = tokio::spawn(serve::run(listener, state, token.clone()));
    let (control, refresh_rx) = start_control(&ctx.config.server.control, token.clone());
    let notifier = Arc::new(Notifier::from_env());
    tokio::spawn(handle_signals(
        config_path,
        config_tx,
        notifier.clone(),
        token.clone(),
    ));
    tokio::spawn(watchdog(live.clone(), notifier.clone(), token.clone()));
    notifier
        .send_important(&[
            NotifyState::Ready,
            NotifyState::Status(&format!("listening on {local}")),
        ])
        .await;

    // A status the manager has no room for is dropped: the next one replaces it anyway.
    let on_status: schedule::StatusHook = Box::new(move |status| {
        notifier.send(&[NotifyState::Status(status)]);
    });
    let token_ = token.clone();
    schedule::run_daemon(ctx, config_rx, refresh_rx, live, metrics, on_status, token_).await;
    if let Some(control) = control {
        // It removes its socket file once cancelled.
        let _ = control.await;
    }

    stop_server(server).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Waits for the HTTP server to finish its open requests, for [`SERVER_GRACE`] at most.
async fn stop_server(server: tokio::task::JoinHandle<std::io::Result<()>>) {
    match tokio::time::timeout(SERVER_GRACE, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "HTTP server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("HTTP server did not finish open requests in time"),
    }
}

/// The control socket (`aggregate refresh`), and the receiving end of what it asks the
/// scheduler. Without a socket the service still runs: only `refresh` cannot reach it.
fn start_control(
    path: &Path,
    token: CancellationToken,
) -> (
    Option<tokio::task::JoinHandle<()>>,
    tokio::sync::mpsc::Receiver<schedule::RefreshRequest>,
) {
    let (refresh_tx, refresh_rx) = tokio::sync::mpsc::channel(8);
    let listener = super::control::bind(path).unwrap_or_else(|e| {
        tracing::error!(socket = %path.display(), error = %e, "cannot create the control socket (server.control); aggregate refresh cannot reach this service");
        None
    });
    let task = listener.map(|listener| {
        tokio::spawn(super::control::serve(
            listener,
            path.to_owned(),
            refresh_tx,
            token,
        ))
    });
    (task, refresh_rx)
}

async fn handle_signals(
    config_path: PathBuf,
    config_tx: watch::Sender<Arc<Config>>,
    notifier: Arc<Notifier>,
    token: CancellationToken,
) {
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        token.cancel();
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&config_path, &config_tx, &notifier).await,
            _ = term.recv() => break tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => break tracing::info!("SIGINT: stopping"),
        }
    }
    token.cancel();
    notifier.send_important(&[NotifyState::Stopping]).await;
}

/// Loads and validates the config file again; a bad one is refused and the running one stays.
/// Storage and the listen address need a restart: a new value is reported and not applied.
async fn reload(path: &Path, config_tx: &watch::Sender<Arc<Config>>, notifier: &Notifier) {
    notifier
        .send_important(&[
            NotifyState::Reloading,
            NotifyState::monotonic_usec_now().unwrap_or(NotifyState::Status("reloading")),
        ])
        .await;
    match Config::load(path) {
        Err(e) => {
            tracing::error!(error = %e, "config reload refused; the running config stays in force")
        }
        Ok(mut new) => {
            let old = config_tx.borrow().clone();
            if new.storage.path != old.storage.path || new.storage.postgres != old.storage.postgres
            {
                tracing::warn!("storage.path or storage.url changed: takes effect after a restart");
                new.storage.path = old.storage.path.clone();
                new.storage.postgres = old.storage.postgres.clone();
            }
            if new.server.listen != old.server.listen {
                tracing::warn!("server.listen changed: takes effect after a restart");
                new.server.listen = old.server.listen;
            }
            if new.server.header_timeout != old.server.header_timeout {
                tracing::warn!("server.header_timeout changed: takes effect after a restart");
                new.server.header_timeout = old.server.header_timeout;
            }
            if new.server.control != old.server.control {
                tracing::warn!("server.control changed: takes effect after a restart");
                new.server.control = old.server.control.clone();
            }
            config_tx.send_replace(Arc::new(new));
        }
    }
    notifier.send_important(&[NotifyState::Ready]).await;
}

/// Pings systemd's watchdog while the scheduler is turning; a stalled scheduler stops the pings
/// and systemd restarts the service.
/// Does nothing unless systemd asked for pings (`WatchdogSec=`); then pings at half its period.
async fn watchdog(live: Arc<Live>, notifier: Arc<Notifier>, token: CancellationToken) {
    let Some(every) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval(every / 2);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {
                if !live.stalled() {
                    // A ping the manager has no room for waits for the next tick.
                    notifier.send(&[NotifyState::Watchdog]);
                } else {
                    tracing::error!("scheduler stalled; withholding the watchdog ping");
                }
            }
        }
    }
}
