//! A small HTTP/1.x server whose every limit is ours, for `v6fw run
//! --metrics`: one thread polls nonblocking sockets (mio), reads one
//! request head per connection ([`head`]), answers it with
//! `Connection: close` and closes.
//!
//! What a client can make it spend is bounded, whatever it sends:
//!
//! - at most [`Limits::max_connections`] connections are held; when all are
//!   taken, a new one is still served and the one that has waited longest
//!   without a whole request is closed (then the oldest of the others);
//! - a request head must be complete within [`Limits::read_timeout`] of the
//!   accept and within [`MAX_HEAD_BYTES`] (431 otherwise); the answer must be
//!   written within [`Limits::write_timeout`]; a connection past its deadline
//!   is closed;
//! - no body is ever read: a `Content-Length` above 0 is answered 413, a
//!   `Transfer-Encoding` 400, without allocating anything from either;
//! - one request per connection: anything sent after the head (pipelined
//!   requests) is read into a fixed scratch buffer and dropped, at most
//!   [`DRAIN_BYTES`] of it, before the close;
//! - the memory held is at most `max_connections` × ([`MAX_HEAD_BYTES`] +
//!   one answer), allocated per connection, never grown by what arrives;
//! - stopping never waits on a client: no call blocks, and the thread looks
//!   at its stop flags at least every [`POLL`].
//!
//! An IPv6 address is bound `IPV6_V6ONLY` (so `[::]` is IPv6 only, never
//! IPv4 through mapped addresses), except an IPv4-mapped one.
//!
//! Why a server of our own and not hyper: docs/decisions.md.

pub mod head;
mod serve;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use head::{parse_head, Head, Method, Status, MAX_HEADERS, MAX_HEAD_BYTES};

/// How much of what a client sends after its request head is read and
/// dropped before closing (a close with unread bytes resets the
/// connection, which can lose the answer at the client).
pub const DRAIN_BYTES: usize = 64 << 10;

/// How long the server sleeps at most before looking at its stop flags.
pub const POLL: Duration = Duration::from_millis(100);

/// The server's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections held at once (see the module docs for what
    /// happens to the next one).
    pub max_connections: usize,
    /// How long a client has from its connection to the end of its head.
    pub read_timeout: Duration,
    /// How long writing the answer may take (then draining, at most a
    /// second more).
    pub write_timeout: Duration,
}

impl Default for Limits {
    /// 32 connections, 5 s to send the head, 5 s to take the answer.
    fn default() -> Self {
        Limits {
            max_connections: 32,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// A request the handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// `GET` or `HEAD` (the server leaves the body out for `HEAD`).
    pub method: Method,
    /// The path, without `?query`.
    pub path: &'a str,
}

/// The handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Its status.
    pub status: Status,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its body.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text answer.
    pub fn text(status: Status, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    /// The bytes sent: status line, headers and (unless `head_only`) body.
    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status.code(),
            self.status.reason(),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if self.status == Status::MethodNotAllowed {
            out.extend_from_slice(b"Allow: GET, HEAD\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// What answers requests: called on the server's thread, one request at a
/// time.
pub type Handler = Box<dyn FnMut(Request<'_>) -> Response + Send>;

/// A running server: its thread, until [`Server::stop`] (or drop).
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<mio::Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves from a thread named `name` with `handler`
    /// until [`Server::stop`], or until `shutdown` is set.
    pub fn start(
        addr: SocketAddr,
        limits: Limits,
        name: &str,
        handler: Handler,
        shutdown: Arc<AtomicBool>,
    ) -> std::io::Result<Server> {
        let listener = serve::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (event_loop, waker) =
            serve::EventLoop::new(listener, limits, handler, [Arc::clone(&stop), shutdown])?;
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || event_loop.run())?;
        Ok(Server {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port the kernel chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving, closes every connection and joins the thread: within
    /// about [`POLL`] whatever the clients do.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // A failed wake only delays the stop to the next POLL.
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests;
