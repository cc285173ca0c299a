//! The HTTP endpoint of `--metrics`: [`v6fw_api::http`]'s bounded server on
//! a thread of its own, answering `GET /metrics` (and `/`, for a browser)
//! until the daemon stops.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use v6fw_api::http::{Handler, Limits, Request, Response, Server, Status};

use super::{render, Sources};

/// OpenMetrics 1.0's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running endpoint.
pub struct MetricsServer(Server);

impl MetricsServer {
    /// Binds `addr` and serves `sources` until `shutdown` is set (or
    /// [`MetricsServer::stop`]).
    pub fn start(
        addr: SocketAddr,
        sources: Arc<Sources>,
        shutdown: &Arc<AtomicBool>,
    ) -> anyhow::Result<MetricsServer> {
        let handler: Handler = Box::new(move |r: Request<'_>| answer(r.path, &sources));
        Server::start(
            addr,
            Limits::default(),
            "v6fw-metrics",
            handler,
            Arc::clone(shutdown),
        )
        .map(MetricsServer)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot serve metrics on {addr}: {e} (choose another address with --metrics)"
            )
        })
    }

    /// The address it listens on (the port the kernel chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.0.addr()
    }

    /// Stops the endpoint and joins its thread (never waiting on a client).
    pub fn stop(self) {
        self.0.stop();
    }
}

/// The answer to a `GET` or `HEAD` of `path`.
fn answer(path: &str, sources: &Sources) -> Response {
    match path {
        "/metrics" | "/" => match render(sources.read()) {
            Ok(text) => Response {
                status: Status::Ok,
                content_type: CONTENT_TYPE,
                body: text.into_bytes(),
            },
            Err(_) => Response::text(Status::InternalError, "cannot encode the metrics\n"),
        },
        _ => Response::text(Status::NotFound, "not found: the metrics are at /metrics\n"),
    }
}
