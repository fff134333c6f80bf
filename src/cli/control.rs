//! The service's control socket (`[server] control`, a Unix domain socket only its owner may
//! open): `aggregate refresh` asks the running service to poll feeds now through it. One JSON
//! request a line, one JSON answer a line:
//!
//! ```text
//! → {"refresh":["https://www.coindesk.com/arc/outboundfeeds/rss/","Decrypt"]}
//! ← {"polling":["https://…"],"running":[],"held":[],"unknown":[]}
//! ```
//!
//! A Unix socket rather than an HTTP route: the HTTP server may face the internet, and file
//! permissions say who is the operator without any password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::schedule::{RefreshReply, RefreshRequest};

/// A request longer than this is not one of ours.
const MAX_REQUEST: u64 = 64 * 1024;
/// A client gets this long to send its request, and the scheduler to answer it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    refresh: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Answer {
    Done(RefreshReply),
    Error { error: String },
}

/// Binds the control socket at `path`. A socket file left by a service that died is replaced;
/// one that another running service answers on is left alone (`None`, with a warning: this
/// service then has no control socket).
pub fn bind(path: &Path) -> std::io::Result<Option<UnixListener>> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            tracing::warn!(
                socket = %path.display(),
                "another aggregate answers on the control socket (server.control); this one runs without one"
            );
            return Ok(None);
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(listener))
}

/// Answers requests on `listener` until `token` is cancelled, then removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    scheduler: mpsc::Sender<RefreshRequest>,
    token: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let scheduler = scheduler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, scheduler).await {
                            tracing::warn!(error = %e, "control request failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::error!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn answer(
    stream: UnixStream,
    scheduler: mpsc::Sender<RefreshRequest>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    let answer = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Answer::Error {
            error: "no request within 5s".into(),
        },
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Answer::Error {
                error: format!("not a request ({e}); send {{\"refresh\":[FEED, ...]}}"),
            },
            Ok(request) => ask(&scheduler, request.refresh).await,
        },
    };
    let mut out = serde_json::to_string(&answer).expect("answers serialise");
    out.push('\n');
    write.write_all(out.as_bytes()).await?;
    write.shutdown().await
}

async fn ask(scheduler: &mpsc::Sender<RefreshRequest>, feeds: Vec<String>) -> Answer {
    let (reply, answer) = oneshot::channel();
    let stopped = || Answer::Error {
        error: "the service is stopping".into(),
    };
    if scheduler
        .send(RefreshRequest { feeds, reply })
        .await
        .is_err()
    {
        return stopped();
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
        Ok(Ok(reply)) => Answer::Done(reply),
        Ok(Err(_)) => stopped(),
        Err(_) => Answer::Error {
            error: "the scheduler did not answer within 5s".into(),
        },
    }
}

/// Asks the service listening on `path` to poll `feeds` now (all when empty). `Ok(None)`:
/// no service is listening there.
pub async fn request_refresh(
    path: &Path,
    feeds: &[String],
) -> anyhow::Result<Option<RefreshReply>> {
    let stream = match UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => anyhow::bail!("cannot reach the service at {}: {e}", path.display()),
    };
    let (read, mut write) = stream.into_split();
    let mut request = serde_json::to_string(&Request {
        refresh: feeds.to_vec(),
    })?;
    request.push('\n');
    write.write_all(request.as_bytes()).await?;
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    tokio::time::timeout(REQUEST_TIMEOUT * 2, reader.read_line(&mut line))
        .await
        .map_err(|_| anyhow::anyhow!("the service at {} did not answer", path.display()))??;
    match serde_json::from_str::<Answer>(&line) {
        Ok(Answer::Done(reply)) => Ok(Some(reply)),
        Ok(Answer::Error { error }) => anyhow::bail!("the service refused: {error}"),
        Err(e) => anyhow::bail!(
            "the service at {} answered something unreadable ({e}): {line:?}",
            path.display()
        ),
    }
}
