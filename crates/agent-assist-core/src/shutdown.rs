//! Graceful shutdown, Cloud Run style.
//!
//! Cloud Run sends SIGTERM and kills the container 10 s later. Both services stop accepting on
//! the signal, let in-flight requests finish, and give up waiting after [`DRAIN_TIMEOUT`] so the
//! process always exits before the kill.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long in-flight work may take after SIGTERM before the process exits anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// A token cancelled on SIGTERM or Ctrl-C. Clone it into everything that must stop.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("shutdown signal received, draining");
        trigger.cancel();
    });
    token
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Runs `server` (which must itself stop once `token` is cancelled) and returns when it has,
/// or [`DRAIN_TIMEOUT`] after cancellation, whichever comes first.
pub async fn drain<F, E>(token: CancellationToken, server: F) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    let deadline = async {
        token.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = server => result,
        _ = deadline => {
            tracing::warn!("drain timeout reached, exiting with requests still in flight");
            Ok(())
        }
    }
}
