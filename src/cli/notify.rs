//! systemd notification that never stalls the service. `sd_notify::notify` sends a blocking
//! datagram: a manager that does not read its socket (its queue holds only
//! `net.unix.max_dgram_qlen` datagrams, often 10) froze the runtime at the next STATUS, and
//! SIGTERM then hung at STOPPING. Here the socket is connected once and non-blocking: a status
//! or watchdog ping the queue has no room for is dropped (the next one says as much), and the
//! few messages that matter (READY, RELOADING, STOPPING) are retried for a bounded time.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use sd_notify::NotifyState;

/// How long READY, RELOADING and STOPPING are retried while the manager's queue is full.
const IMPORTANT_FOR: Duration = Duration::from_millis(500);
const RETRY_EVERY: Duration = Duration::from_millis(25);

/// The connection to the service manager; does nothing outside systemd (no `NOTIFY_SOCKET`).
pub struct Notifier {
    socket: Option<UnixDatagram>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier { socket: None };
        };
        match connect(&path) {
            Ok(socket) => Notifier {
                socket: Some(socket),
            },
            Err(e) => {
                tracing::warn!(socket = ?path, error = %e, "cannot reach systemd's notify socket; running without notifications");
                Notifier { socket: None }
            }
        }
    }

    /// Sends `states` if the manager's queue has room now; `false` when it was dropped.
    pub fn send(&self, states: &[NotifyState]) -> bool {
        let Some(socket) = &self.socket else {
            return true;
        };
        let message = message(states);
        match socket.send(message.as_bytes()) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tracing::debug!(
                    message = message.trim_end(),
                    "systemd's notify queue is full; dropped"
                );
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot notify systemd");
                false
            }
        }
    }

    /// Sends `states`, trying again for a bounded time while the manager's queue is full.
    pub async fn send_important(&self, states: &[NotifyState<'_>]) {
        let give_up = tokio::time::Instant::now() + IMPORTANT_FOR;
        while !self.send(states) {
            if tokio::time::Instant::now() >= give_up {
                tracing::warn!(
                    message = message(states).trim_end(),
                    "systemd did not read its notify socket; going on without telling it"
                );
                return;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
}

fn message(states: &[NotifyState]) -> String {
    states.iter().map(|s| format!("{s}\n")).collect()
}

/// A datagram socket connected to `path`: a file, or with a leading `@`, a name in Linux's
/// abstract namespace (as systemd gives it).
fn connect(path: &std::ffi::OsStr) -> std::io::Result<UnixDatagram> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    match bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.connect_addr(&addr)?;
        }
        _ => socket.connect(path)?,
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manager that never reads: sends stop being delivered, and never wait.
    #[test]
    fn a_full_queue_drops_messages_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let _manager = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: Some(connect(path.as_os_str()).unwrap()),
        };
        let mut delivered = 0;
        let mut dropped = 0;
        for _ in 0..10_000 {
            if notifier.send(&[NotifyState::Status("a status line of some length")]) {
                delivered += 1;
            } else {
                dropped += 1;
            }
            if dropped > 3 {
                break;
            }
        }
        assert!(delivered > 0, "the queue takes some");
        assert!(dropped > 3, "then it is full, and sends are dropped");
    }

    #[test]
    fn abstract_addresses_connect() {
        let name = format!("aggregate-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        let notifier = Notifier {
            socket: Some(connect(std::ffi::OsStr::new(&format!("@{name}"))).unwrap()),
        };
        assert!(notifier.send(&[NotifyState::Ready]));
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }
}
