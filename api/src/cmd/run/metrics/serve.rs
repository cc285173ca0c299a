//! The HTTP endpoint of `--metrics`: `tiny_http` on a thread of its own,
//! answering `GET /metrics` (and `/`, for a browser) until the daemon stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tiny_http::{Header, Method, Request, Response, Server};

use super::{render, Sources};

/// OpenMetrics 1.0's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How often the server thread looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(200);

/// The running endpoint.
pub struct MetricsServer {
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and serves `sources` until `shutdown` is set (or
    /// [`MetricsServer::stop`]).
    pub fn start(
        addr: SocketAddr,
        sources: Arc<Sources>,
        shutdown: &Arc<AtomicBool>,
    ) -> anyhow::Result<MetricsServer> {
        let server = Server::http(addr).map_err(|e| {
            anyhow::anyhow!(
                "cannot serve metrics on {addr}: {e} (choose another address with --metrics)"
            )
        })?;
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        let server = Arc::new(server);
        let (s, stop) = (Arc::clone(&server), Arc::clone(shutdown));
        let thread = std::thread::Builder::new()
            .name("v6fw-metrics".into())
            .spawn(move || serve(&s, &sources, &stop))
            .context("cannot start the metrics thread")?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr,
        })
    }

    /// The address it listens on (the port the kernel chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the endpoint and joins its thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &Server, sources: &Sources, shutdown: &AtomicBool) {
    while !shutdown.load(Ordering::SeqCst) {
        match server.recv_timeout(POLL) {
            Ok(Some(request)) => answer(request, sources),
            Ok(None) => {}
            Err(e) => {
                tracing::error!("the metrics endpoint stopped: {e}");
                return;
            }
        }
    }
}

/// Answers one request; a client that went away is not an error.
fn answer(request: Request, sources: &Sources) {
    let response = match (request.method(), request.url()) {
        (Method::Get | Method::Head, "/metrics" | "/") => match render(sources.read()) {
            Ok(text) => with_type(Response::from_string(text)),
            Err(_) => Response::from_string("cannot encode the metrics\n").with_status_code(500),
        },
        (Method::Get | Method::Head, _) => {
            Response::from_string("not found: the metrics are at /metrics\n").with_status_code(404)
        }
        _ => Response::from_string("only GET /metrics is served\n").with_status_code(405),
    };
    let _ = request.respond(response);
}

/// Adds the OpenMetrics content type (a constant ASCII header, which
/// `from_bytes` does not refuse).
fn with_type<R: std::io::Read>(response: Response<R>) -> Response<R> {
    match Header::from_bytes(&b"Content-Type"[..], CONTENT_TYPE.as_bytes()) {
        Ok(h) => response.with_header(h),
        Err(()) => response,
    }
}
