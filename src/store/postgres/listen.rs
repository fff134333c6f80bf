//! Changes made by other instances: every commit that changes what an output shows sends a
//! notification on [`CHANNEL`] (delivered at commit, only if it commits), and each instance
//! listens on a connection of its own, so that its rendered feeds are marked stale within
//! moments of another instance's write. A notification lost while the listener was
//! disconnected cannot be known, so after every (re)connection everything is marked stale.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

/// The notification channel.
pub const CHANNEL: &str = "aggregate_changes";

/// Reconnection waits double from the first to the last, while the database is away.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_LAST: Duration = Duration::from_secs(30);

/// Calls `on_change` after every notification and every (re)connection, until `token` is
/// cancelled.
pub async fn listen(
    config: Arc<tokio_postgres::Config>,
    token: CancellationToken,
    on_change: Arc<dyn Fn() + Send + Sync>,
) {
    let mut wait = RETRY_FIRST;
    loop {
        let heard = tokio::select! {
            _ = token.cancelled() => return,
            heard = listen_once(&config, &on_change) => heard,
        };
        match heard {
            // It was connected and listening: the next try starts quickly again.
            Ok(()) => wait = RETRY_FIRST,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other instances' changes; retrying")
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_LAST);
    }
}

/// One connection's life: LISTEN, then every notification until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    on_change: &Arc<dyn Fn() + Send + Sync>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (heard, mut notified) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let driver = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if heard.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    tracing::debug!("listening for other instances' changes");
    on_change();
    while notified.recv().await.is_some() {
        on_change();
    }
    drop(client);
    match driver.await {
        Ok(ended) => {
            tracing::warn!("the connection listening for other instances' changes closed");
            ended
        }
        Err(_) => Ok(()),
    }
}
