//! Graceful stop. On the signal: `/readyz` turns 503 (and systemd hears
//! `STOPPING=1`); after `drain_delay` the listener stops accepting, idle
//! connections close, waiting long-polls answer with what they have, and
//! requests in flight finish; the outbox worker drops the sends under
//! way and hands their leases back, so another instance on the same
//! database sends them at once instead of after the lease runs out; the
//! pool closes. All within `deadline`, or the process says it was cut short.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::startup::Server;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub deadline: Duration,
    pub drain_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { deadline: Duration::from_secs(30), drain_delay: Duration::ZERO }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    #[error("the server task failed: {0}")]
    Task(String),
    #[error("not stopped within {0:?}: {1} were cut short")]
    Deadline(Duration, &'static str),
}

/// Tells systemd (`Type=notify`) where the service stands. Without
/// `NOTIFY_SOCKET` (not under systemd) it does nothing; a failure to send
/// is logged, never fatal: the service works without the notice.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send_notify(&path, state) {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

fn send_notify(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    // "@name" is a socket in Linux's abstract namespace.
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// What is left of `deadline` since `started`.
fn left(started: Instant, deadline: Duration) -> Duration {
    deadline.saturating_sub(started.elapsed())
}

impl Server {
    /// Serves until `stop` resolves, then stops gracefully within `options`.
    pub async fn serve_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
        options: Options,
    ) -> Result<(), ShutdownError> {
        let Server { listener, router, twostep, outbox, health, store, .. } = self;
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let mut serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = close_rx.await;
                })
                .await
        });
        sd_notify("READY=1");
        tokio::select! {
            () = stop => {}
            done = &mut serving => {
                return match done {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(ShutdownError::Serve(e)),
                    Err(e) => Err(ShutdownError::Task(e.to_string())),
                };
            }
        }
        let started = Instant::now();
        // Not ready first: whoever hears STOPPING=1 must already see 503.
        health.set_draining();
        sd_notify("STOPPING=1");
        tracing::info!(deadline = ?options.deadline, drain_delay = ?options.drain_delay, "shutting down: draining");
        tokio::time::sleep(options.drain_delay).await;
        twostep.drain();
        let _ = close_tx.send(());
        let mut cut_short = None;
        match tokio::time::timeout(left(started, options.deadline), &mut serving).await {
            Ok(Ok(Ok(()))) => tracing::info!("listener closed; requests in flight finished"),
            Ok(Ok(Err(e))) => return Err(ShutdownError::Serve(e)),
            Ok(Err(e)) => return Err(ShutdownError::Task(e.to_string())),
            Err(_) => {
                serving.abort();
                cut_short = Some("requests in flight");
            }
        }
        if tokio::time::timeout(left(started, options.deadline), outbox).await.is_err() {
            cut_short.get_or_insert("outbox deliveries");
        }
        if tokio::time::timeout(left(started, options.deadline), store.close()).await.is_err() {
            cut_short.get_or_insert("database connections");
        }
        if let Some(what) = cut_short {
            return Err(ShutdownError::Deadline(options.deadline, what));
        }
        tracing::info!(took = ?started.elapsed(), "stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::linux::net::SocketAddrExt;

    use super::*;

    #[test]
    fn notices_reach_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("twostep-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        send_notify(path.as_os_str(), "READY=1").expect("send");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("twostep-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let abstract_listener = std::os::unix::net::UnixDatagram::bind_addr(&addr).expect("bind abstract");
        send_notify(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").expect("send");
        let n = abstract_listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"STOPPING=1");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn what_is_left_never_goes_below_zero() {
        let started = Instant::now();
        assert!(left(started, Duration::from_secs(5)) <= Duration::from_secs(5));
        assert_eq!(left(started, Duration::ZERO), Duration::ZERO);
    }
}
