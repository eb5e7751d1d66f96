//! The accept loop and the shutdown signal. The loop is our own rather than `axum::serve`
//! because that one sets no timer, so nothing would bound how long a client may take to
//! send its headers or keep an idle connection.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::extract::ConnectInfo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::{AppState, app};

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// and waits for the case work they started.
///
/// The accept loop is our own rather than `axum::serve` because that one sets no timer,
/// so nothing would bound how long a client may take to send its headers or keep an idle
/// connection: a few trickling sockets would be held forever.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tasks = state.tasks.clone();
    let cases = state.cases.clone();
    let grace = state.shutdown_grace;
    let read_timeout = state.read_timeout;
    let router = app(state);
    let connections = TaskTracker::new();
    let (closing, closed) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    warn!(error = %crate::errors::Chain(&e), "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            read_timeout,
            closed.clone(),
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    connections.close();
    // Drain within a bound: once the signal came, in-flight requests and the case work
    // they started get `grace` in all; what is still running then is dropped unanswered,
    // and its sender delivers it again.
    let drained = tokio::time::timeout(grace, async {
        connections.wait().await;
        tasks.close();
        tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        // The unanswered deliveries come back; the claims their work held go now where
        // nothing reached the desk under them, so the redelivery need not wait them out.
        let stopped = cases.stop_claims().await;
        warn!(
            ?grace,
            claims_released = stopped.released,
            claims_lapsing = stopped.lapsing,
            "shutdown grace elapsed with work still in flight; it will be redelivered"
        );
    }
    Ok(())
}

/// Serves one connection: HTTP/1.1 with keep-alive, headers bounded by `read_timeout`; once
/// `closed` changes, the request under way is finished and the connection closed.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    read_timeout: Duration,
    mut closed: watch::Receiver<bool>,
) {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    // The peer address decides, with the forwarding headers, whether a worker-daemon
    // delivery needs a token.
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req.map(HttpBody::new))
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = closed.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Completes on Ctrl-C or SIGTERM (what Elastic Beanstalk and container runtimes send).
/// The handlers are installed when this is called, not when it is first awaited, so a
/// SIGTERM that arrives while the server is still starting is a clean shutdown too.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        info!("shutdown signal received: finishing in-flight requests");
    }
}
