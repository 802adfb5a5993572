//! Metrics for Prometheus: `[metrics] listen = "127.0.0.1:9586"` serves
//! `GET /metrics` in the text exposition format — each peer's traffic and
//! last handshake, the live sessions, the packets dropped by reason, and for
//! a mesh member its peers, admitted operators, store and gossip counters.
//!
//! Nothing secret is shown: peers appear by public key, and no endpoint,
//! address or card is listed, so the metrics of a hidden producer reveal no
//! more than `wg show` on it would of its sentries.
//!
//! Each scrape asks the run loop and the mesh member for their counters, so
//! the figures are those of the moment. A connection gets one answer and is
//! closed; at most [`MAX_CONNECTIONS`] are served at once, each within
//! [`CONNECTION_TIMEOUT`].

mod exposition;
mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use self::exposition::{CONTENT_TYPE, Snapshot};
use self::http::{MAX_HEAD_LEN, Route};
use crate::dataplane::handle::DeviceHandle;
use crate::modes::mesh_member::MeshCounters;
use crate::modes::ready;

/// The most connections served at once; more are closed unanswered.
pub(crate) const MAX_CONNECTIONS: usize = 8;
/// The longest a connection may take to send its request and take the
/// answer.
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a scrape's figures come from.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// The interface's name, a label of every sample.
    pub interface: String,
    /// The device.
    pub device: DeviceHandle,
    /// The mesh member, when the interface is one.
    pub mesh: Option<mpsc::Sender<oneshot::Sender<MeshCounters>>>,
}

/// Binds the metrics listener on `address`; done before anything on the
/// system changes, so a port in use stops the daemon at once.
///
/// # Errors
///
/// When the address cannot be bound.
pub(crate) fn bind(address: SocketAddr) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("listening for metrics on {address}"))?;
    listener
        .set_nonblocking(true)
        .context("making the metrics listener non-blocking")?;
    Ok(listener)
}

/// Serves scrapes on `listener` until the task is dropped.
///
/// # Errors
///
/// When the listener cannot be handed to the runtime.
pub(crate) async fn serve(listener: std::net::TcpListener, sources: Sources) -> Result<()> {
    let listener = TcpListener::from_std(listener).context("the metrics listener")?;
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!("accepting a metrics connection: {error}");
                // Out of descriptors, say: give the others time to close.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!("a metrics connection from {from} closed: too many at once");
            continue;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let answered = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &sources)).await;
            match answered {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!("metrics for {from}: {error:#}"),
                Err(_) => tracing::debug!("metrics for {from}: timed out"),
            }
            drop(permit);
        });
    }
}

/// Reads one request from `stream` and answers it.
async fn answer(mut stream: TcpStream, sources: &Sources) -> Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !http::head_complete(&head) {
        if head.len() >= MAX_HEAD_LEN {
            let refused = http::response(
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
                false,
            );
            return stream.write_all(&refused).await.context("answering");
        }
        let read = stream.read(&mut buf).await.context("reading the request")?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..read]);
    }
    let response = match http::route(&head) {
        Route::Metrics { head_only } => {
            let text = exposition::render(&snapshot(sources).await?);
            http::response("200 OK", CONTENT_TYPE, &text, head_only)
        }
        Route::NotFound => http::response(
            "404 Not Found",
            "text/plain",
            "the metrics are at /metrics\n",
            false,
        ),
        Route::MethodNotAllowed => {
            http::response("405 Method Not Allowed", "text/plain", "", false)
        }
        Route::BadRequest => http::response("400 Bad Request", "text/plain", "", false),
    };
    stream.write_all(&response).await.context("answering")?;
    stream.shutdown().await.context("closing")
}

/// The counters of the moment.
async fn snapshot(sources: &Sources) -> Result<Snapshot> {
    let device = sources.device.counters().await?;
    let mesh = match &sources.mesh {
        Some(mesh) => {
            let (answer, counters) = oneshot::channel();
            mesh.send(answer)
                .await
                .map_err(|_| anyhow!("the mesh member stopped"))?;
            Some(counters.await.context("the mesh member stopped")?)
        }
        None => None,
    };
    Ok(Snapshot {
        interface: sources.interface.clone(),
        device,
        mesh,
        now: ready::unix_now(),
    })
}
