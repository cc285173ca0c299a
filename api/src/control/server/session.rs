//! The per-client part both servers share: the client caps, reading request
//! lines with their limits, dispatching them and writing the replies, over
//! any stream that implements [`Conn`].

#[cfg(unix)]
use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(unix)]
use parking_lot::Mutex;

#[cfg(unix)]
use super::MAX_CLIENTS;
use super::{ACCEPT_POLL, MAX_REQUEST_BYTES, REQUEST_TIMEOUT};
#[cfg(unix)]
use super::{MAX_CLIENTS_PER_USER, ROOT_SLOTS};
use crate::control::protocol::{dispatch, parse_request, Caller, Reply, MAX_ADMIN_REQUEST_BYTES};
use crate::fw::{FirewallManager, FwError};

/// A connected client as the line loop needs it. Writes must give up
/// after [`REQUEST_TIMEOUT`] (the platform code sets that up).
pub(crate) trait Conn: Write + Send + 'static {
    /// Reads what is there, waiting at most `timeout`: `Ok(0)` at the
    /// end of the stream, a `TimedOut`/`WouldBlock` error when nothing came.
    fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize>;

    /// What the peer may do. Asked once, after the first bytes were read.
    /// An error closes the connection.
    fn peer_caller(&mut self) -> std::io::Result<Caller>;
}

/// The clients being served on a Unix socket: how many in all and per uid.
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct Clients {
    counts: Mutex<Counts>,
    idle_timeout: Duration,
}

#[cfg(unix)]
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

/// One taken place in [`Clients`]; given back on drop, however the
/// client thread ends.
#[cfg(unix)]
struct Slot {
    clients: Arc<Clients>,
    uid: u32,
}

#[cfg(unix)]
impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.clients.counts.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_uid.remove(&self.uid);
            }
        }
    }
}

#[cfg(unix)]
impl Clients {
    /// No clients yet; connections idle for `idle_timeout` are closed.
    pub(crate) fn new(idle_timeout: Duration) -> Arc<Clients> {
        Arc::new(Clients {
            counts: Mutex::new(Counts::default()),
            idle_timeout,
        })
    }

    /// A place for a client of `uid`, or the `E_OUTOFMEMORY` that says
    /// why not: root may take any of [`MAX_CLIENTS`]; another uid at
    /// most [`MAX_CLIENTS_PER_USER`], and only while [`ROOT_SLOTS`] stay
    /// free.
    fn take(self: &Arc<Self>, uid: u32) -> Result<Slot, FwError> {
        let mut c = self.counts.lock();
        let mine = c.per_uid.get(&uid).copied().unwrap_or(0);
        let refused = if uid == 0 {
            (c.total >= MAX_CLIENTS).then(|| {
                format!(
                    "the daemon is serving {MAX_CLIENTS} clients already: try again in a moment"
                )
            })
        } else if mine >= MAX_CLIENTS_PER_USER {
            Some(format!(
                "uid {uid} has {mine} connections to the daemon open already (at most {MAX_CLIENTS_PER_USER} per user): close one and try again"
            ))
        } else {
            (c.total >= MAX_CLIENTS - ROOT_SLOTS).then(|| {
                format!(
                    "the daemon is serving {} clients already (the last {ROOT_SLOTS} places are kept for root): try again in a moment, or as root",
                    c.total
                )
            })
        };
        if let Some(m) = refused {
            return Err(FwError::OutOfMemory(m));
        }
        c.total += 1;
        *c.per_uid.entry(uid).or_insert(0) += 1;
        Ok(Slot {
            clients: Arc::clone(self),
            uid,
        })
    }
}

/// Serves a new client of `uid` from its own thread, or turns it away
/// with the `E_OUTOFMEMORY` reply of [`Clients::take`].
#[cfg(unix)]
pub(crate) fn admit_peer<C: Conn>(
    stream: C,
    uid: u32,
    manager: &Arc<FirewallManager>,
    shutdown: &Arc<AtomicBool>,
    clients: &Arc<Clients>,
) {
    let slot = clients.take(uid);
    start_client(stream, slot, manager, shutdown, clients.idle_timeout);
}

/// Serves a client the Windows pipe server admitted (`control::admission`)
/// from its own thread while it holds `slot`, or writes why it was turned
/// away (`E_OUTOFMEMORY`) and closes. `stop` ends the connection once it is
/// idle (shutdown, or its place given to an administrator).
#[cfg(windows)]
pub(crate) fn serve_admitted<C: Conn, S: Send + 'static>(
    stream: C,
    slot: Result<S, String>,
    manager: &Arc<FirewallManager>,
    stop: &Arc<AtomicBool>,
) {
    let slot = slot.map_err(FwError::OutOfMemory);
    start_client(stream, slot, manager, stop, super::IDLE_TIMEOUT);
}

/// Starts the thread that serves `stream` while it holds `slot`, or
/// writes the reason there is no slot and closes.
fn start_client<C: Conn, S: Send + 'static>(
    mut stream: C,
    slot: Result<S, FwError>,
    manager: &Arc<FirewallManager>,
    shutdown: &Arc<AtomicBool>,
    idle_timeout: Duration,
) {
    let slot = match slot {
        Ok(slot) => slot,
        Err(e) => {
            let _ = stream.write_all(Reply::error(&e).to_line().as_bytes());
            return;
        }
    };
    let manager = Arc::clone(manager);
    let shutdown = Arc::clone(shutdown);
    let spawned = std::thread::Builder::new()
        .name("v6fw-client".into())
        .spawn(move || {
            let _slot = slot;
            serve_client(stream, &manager, &shutdown, idle_timeout);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a client thread: {e}");
    }
}

/// Why no request line could be read.
enum LineError {
    TooLong,
    Partial,
    Timeout,
    Io,
}

/// Reads newline-terminated lines with a size bound and deadlines.
struct LineReader<C> {
    stream: C,
    buf: Vec<u8>,
    /// When the last request was answered (or the client connected):
    /// with nothing pending, the connection is closed `idle_timeout`
    /// after it. Blank lines do not move it.
    idle_since: Instant,
    idle_timeout: Duration,
    /// What the peer may do, once asked.
    caller: Option<Caller>,
}

impl<C: Conn> LineReader<C> {
    /// Whether the peer may change the policy (asked once; data must have
    /// been read, as a named pipe tells who its client is only then).
    fn caller(&mut self) -> std::io::Result<Caller> {
        match self.caller {
            Some(c) => Ok(c),
            None => {
                let c = self.stream.peer_caller()?;
                self.caller = Some(c);
                Ok(c)
            }
        }
    }

    /// The longest line this peer may send: [`MAX_REQUEST_BYTES`], or
    /// [`MAX_ADMIN_REQUEST_BYTES`] for one that may change the policy
    /// (asked only once a line grows past the first).
    fn over_limit(&mut self, len: usize) -> Result<bool, LineError> {
        if len < MAX_REQUEST_BYTES {
            return Ok(false);
        }
        let caller = self.caller().map_err(|_| LineError::Io)?;
        Ok(!caller.may_change() || len >= MAX_ADMIN_REQUEST_BYTES)
    }

    /// The next line without its newline (and `\r`). `None` at a clean
    /// end: EOF, idle for `idle_timeout`, or shutdown while idle.
    fn next_line(&mut self, shutdown: &AtomicBool) -> Result<Option<Vec<u8>>, LineError> {
        let mut chunk = [0u8; 16 * 1024];
        // A line under way must end within REQUEST_TIMEOUT of its first
        // byte; a line already buffered counts from now.
        let mut started = (!self.buf.is_empty()).then(Instant::now);
        // Bytes of `buf` known to hold no newline: each byte is looked at
        // once, however long the line.
        let mut scanned = 0;
        loop {
            let from = scanned;
            let found = self
                .buf
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                .map(|p| from + p);
            scanned = self.buf.len();
            if let Some(pos) = found {
                if self.over_limit(pos)? {
                    return Err(LineError::TooLong);
                }
                let rest = self.buf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.over_limit(self.buf.len())? {
                return Err(LineError::TooLong);
            }
            let idle = self.buf.is_empty();
            if idle && shutdown.load(std::sync::atomic::Ordering::Acquire) {
                return Ok(None);
            }
            let deadline = match started {
                Some(t) if !idle => t + REQUEST_TIMEOUT,
                _ => self.idle_since + self.idle_timeout,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return if idle {
                    Ok(None)
                } else {
                    Err(LineError::Timeout)
                };
            }
            // Wake up now and then to notice a shutdown.
            let wait = left.min(ACCEPT_POLL * 10);
            match self.stream.read_within(&mut chunk, wait) {
                Ok(0) if idle => return Ok(None),
                Ok(0) => return Err(LineError::Partial),
                Ok(n) => {
                    if idle {
                        started = Some(Instant::now());
                    }
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Err(LineError::Io),
            }
        }
    }
}

fn serve_client<C: Conn>(
    stream: C,
    manager: &Arc<FirewallManager>,
    shutdown: &AtomicBool,
    idle_timeout: Duration,
) {
    let mut reader = LineReader {
        stream,
        buf: Vec::new(),
        idle_since: Instant::now(),
        idle_timeout,
        caller: None,
    };
    loop {
        let (reply, close) = match reader.next_line(shutdown) {
            Ok(None) | Err(LineError::Io) => return,
            // A blank line is no request: it neither gets a reply nor
            // keeps the connection from being idle.
            Ok(Some(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Some(line)) => {
                let caller = match reader.caller() {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("cannot tell who a control client is: {e}; closing");
                        return;
                    }
                };
                let result = parse_request(&line).and_then(|r| dispatch(manager, r, caller));
                (Reply::from_result(result), false)
            }
            Err(LineError::TooLong) => (
                Reply::error(&FwError::InvalidArg(format!(
                    "the request line is longer than {} bytes: send one short JSON object per line; closing",
                    if reader.caller.is_some_and(Caller::may_change) { MAX_ADMIN_REQUEST_BYTES } else { MAX_REQUEST_BYTES }
                ))),
                true,
            ),
            Err(LineError::Partial) => (
                Reply::error(&FwError::InvalidArg(
                    "the request ended without a newline: end every request with \\n".into(),
                )),
                true,
            ),
            Err(LineError::Timeout) => (
                Reply::error(&FwError::Abort(format!(
                    "the request was not complete within {} s of its first byte: send a whole line at once; closing",
                    REQUEST_TIMEOUT.as_secs()
                ))),
                true,
            ),
        };
        if reader.stream.write_all(reply.to_line().as_bytes()).is_err() || close {
            return;
        }
        reader.idle_since = Instant::now();
    }
}
