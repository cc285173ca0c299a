//! The control socket server: a Unix socket (a named pipe on Windows)
//! speaking the line-based JSON protocol of [`super::protocol`].
//!
//! Anyone may connect and read (the socket file is mode 0666, set by the
//! umask at `bind`, in a directory only root may write); only root, or a
//! member of the `--admin-group` ([`ServeOptions::admin_group`]), as the
//! kernel reports the peer (`SO_PEERCRED`), may change the policy. On Windows
//! the pipe lets everyone connect and only a client whose token is a member
//! of BUILTIN\Administrators (elevated) may change the policy; remote clients
//! are refused (see `pipe.rs`).
//!
//! No unprivileged user can lock root out: each non-root uid may hold at
//! most [`MAX_CLIENTS_PER_USER`] connections, and [`ROOT_SLOTS`] of the
//! [`MAX_CLIENTS`] are kept for root. Every request line is bounded
//! ([`MAX_REQUEST_BYTES`]) and must be complete within [`REQUEST_TIMEOUT`] of
//! its first byte; a connection that sends no request for [`IDLE_TIMEOUT`] is
//! closed, and blank lines do not count as requests. A bad request gets an
//! error reply and the server keeps serving. Each client has its own thread.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[cfg(any(unix, windows))]
use super::protocol::MAX_REQUEST_BYTES;
use crate::fw::{FirewallManager, FwError};

/// The default socket path.
#[cfg(not(windows))]
pub const DEFAULT_SOCKET: &str = "/run/v6fw/control.sock";

/// The default control channel on Windows: a named pipe. `--socket` names
/// the pipe; a name without a leading `\\` is taken as `\\.\pipe\NAME`.
#[cfg(windows)]
pub const DEFAULT_SOCKET: &str = r"\\.\pipe\v6fw-control";

/// How long a client has to finish a request line once its first byte came.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection may sit idle between requests before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Most clients served at once; more get an `E_OUTOFMEMORY` reply and are closed.
pub const MAX_CLIENTS: usize = 64;

/// Most connections one non-root uid may hold at once (Unix).
pub const MAX_CLIENTS_PER_USER: usize = 8;

/// Of [`MAX_CLIENTS`], how many only root may take (Unix).
pub const ROOT_SLOTS: usize = 8;

/// How a control server runs, beyond its socket.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Members of this group (a name, looked up when the server starts) may
    /// change the policy too: `v6fw run --admin-group NAME`. Unix only; on
    /// Windows the elevated Administrators may, and a group is refused.
    pub admin_group: Option<String>,
    /// How long a connection may go without a request before it is closed
    /// (default [`IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            admin_group: None,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// How often the accept loop looks at the shutdown flag.
#[cfg(any(unix, windows))]
pub(super) const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// Binds `socket` and serves `manager` on it from a new thread until
/// `shutdown` is set; the thread then removes the socket file and ends.
///
/// The socket's directory is created (mode 0755) if missing. A stale socket
/// file is replaced; a socket a live daemon answers on is an `E_FAIL`.
#[cfg(unix)]
pub fn serve(
    manager: Arc<FirewallManager>,
    socket: &Path,
    shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, FwError> {
    serve_with(manager, socket, shutdown, ServeOptions::default())
}

/// [`serve`] with [`ServeOptions`] (an admin group, another idle timeout).
///
/// The socket's directory is created (mode 0755) if missing and must be
/// owned by root and writable by nobody else; the socket is created mode
/// 0666 by the umask around `bind`, never by a `chmod` that could follow a
/// link.
#[cfg(unix)]
pub fn serve_with(
    manager: Arc<FirewallManager>,
    socket: &Path,
    shutdown: Arc<AtomicBool>,
    options: ServeOptions,
) -> Result<JoinHandle<()>, FwError> {
    unix::serve(manager, socket, shutdown, options)
}

/// Creates the named pipe `socket` (e.g. `\\.\pipe\v6fw-control`) and serves
/// `manager` on it from a new thread until `shutdown` is set.
///
/// The first pipe instance is created with `FILE_FLAG_FIRST_PIPE_INSTANCE`:
/// a pipe of that name that already exists (a live daemon, or another
/// program squatting the name) is an `E_FAIL`.
#[cfg(windows)]
pub fn serve(
    manager: Arc<FirewallManager>,
    socket: &Path,
    shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, FwError> {
    super::pipe::serve(manager, socket, shutdown)
}

/// [`serve`] with [`ServeOptions`]. On Windows an admin group is refused
/// (elevated Administrators may change the policy) and the idle timeout is
/// the default.
#[cfg(not(unix))]
pub fn serve_with(
    manager: Arc<FirewallManager>,
    socket: &Path,
    shutdown: Arc<AtomicBool>,
    options: ServeOptions,
) -> Result<JoinHandle<()>, FwError> {
    if let Some(g) = options.admin_group {
        return Err(FwError::InvalidArg(format!(
            "--admin-group {g} is for Unix: on Windows, elevated members of Administrators may change the policy"
        )));
    }
    serve(manager, socket, shutdown)
}

/// The control socket is not written for this platform (`E_NOTIMPL`).
#[cfg(not(any(unix, windows)))]
pub fn serve(
    _manager: Arc<FirewallManager>,
    socket: &Path,
    _shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, FwError> {
    Err(FwError::NotImpl(format!(
        "the control channel {} is not written for this platform",
        socket.display()
    )))
}

/// The per-client part both servers share: the client caps, reading request
/// lines with their limits, dispatching them and writing the replies, over
/// any stream that implements [`session::Conn`].
#[cfg(any(unix, windows))]
pub(super) mod session {
    #[cfg(unix)]
    use std::collections::HashMap;
    use std::io::{ErrorKind, Write};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[cfg(unix)]
    use parking_lot::Mutex;

    use super::{ACCEPT_POLL, MAX_CLIENTS, MAX_REQUEST_BYTES, REQUEST_TIMEOUT};
    #[cfg(unix)]
    use super::{MAX_CLIENTS_PER_USER, ROOT_SLOTS};
    use crate::control::protocol::{dispatch, parse_request, Reply};
    use crate::fw::{FirewallManager, FwError};

    /// A connected client as the line loop needs it. Writes must give up
    /// after [`REQUEST_TIMEOUT`] (the platform code sets that up).
    pub(crate) trait Conn: Write + Send + 'static {
        /// Reads what is there, waiting at most `timeout`: `Ok(0)` at the
        /// end of the stream, a `TimedOut`/`WouldBlock` error when nothing came.
        fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize>;

        /// Whether the peer may change the policy. Asked once, after the
        /// first request line was read. An error closes the connection.
        fn peer_is_admin(&mut self) -> std::io::Result<bool>;
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
                    format!("the daemon is serving {MAX_CLIENTS} clients already: try again in a moment")
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

    /// Decrements the client count when a client thread ends, however it ends.
    #[cfg(windows)]
    struct CountSlot(Arc<std::sync::atomic::AtomicUsize>);

    #[cfg(windows)]
    impl Drop for CountSlot {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Serves a new client (whose identity is known only after a first
    /// read: the Windows pipe) from its own thread, or turns it away with an
    /// `E_OUTOFMEMORY` reply when [`MAX_CLIENTS`] are being served.
    #[cfg(windows)]
    pub(crate) fn admit<C: Conn>(
        stream: C,
        manager: &Arc<FirewallManager>,
        shutdown: &Arc<AtomicBool>,
        active: &Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::Ordering;
        let slot = if active.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            active.fetch_sub(1, Ordering::AcqRel);
            Err(FwError::OutOfMemory(format!(
                "the daemon is serving {MAX_CLIENTS} clients already: try again in a moment"
            )))
        } else {
            Ok(CountSlot(Arc::clone(active)))
        };
        start_client(stream, slot, manager, shutdown, super::IDLE_TIMEOUT);
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
    }

    impl<C: Conn> LineReader<C> {
        /// The next line without its newline (and `\r`). `None` at a clean
        /// end: EOF, idle for `idle_timeout`, or shutdown while idle.
        fn next_line(&mut self, shutdown: &AtomicBool) -> Result<Option<Vec<u8>>, LineError> {
            let mut chunk = [0u8; 4096];
            // A line under way must end within REQUEST_TIMEOUT of its first
            // byte; a line already buffered counts from now.
            let mut started = (!self.buf.is_empty()).then(Instant::now);
            loop {
                if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                    if pos >= MAX_REQUEST_BYTES {
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
                if self.buf.len() >= MAX_REQUEST_BYTES {
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
        };
        // Asked once the first line is in: a named pipe can only tell who
        // the client is after data has been read from it.
        let mut admin: Option<bool> = None;
        loop {
            let (reply, close) = match reader.next_line(shutdown) {
                Ok(None) | Err(LineError::Io) => return,
                // A blank line is no request: it neither gets a reply nor
                // keeps the connection from being idle.
                Ok(Some(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Some(line)) => {
                    let admin = match admin {
                        Some(a) => a,
                        None => match reader.stream.peer_is_admin() {
                            Ok(a) => *admin.insert(a),
                            Err(e) => {
                                tracing::warn!("cannot tell who a control client is: {e}; closing");
                                return;
                            }
                        },
                    };
                    let result = parse_request(&line).and_then(|r| dispatch(manager, r, admin));
                    (Reply::from_result(result), false)
                }
                Err(LineError::TooLong) => (
                    Reply::error(&FwError::InvalidArg(format!(
                        "the request line is longer than {MAX_REQUEST_BYTES} bytes: send one short JSON object per line; closing"
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
}

#[cfg(unix)]
mod unix {
    use std::io::{ErrorKind, Read, Write};
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use super::session::{admit_peer, Clients, Conn};
    use super::{ServeOptions, ACCEPT_POLL, REQUEST_TIMEOUT};
    use crate::control::peer::{AdminGroup, Peer};
    use crate::fw::{FirewallManager, FwError};

    pub(super) fn serve(
        manager: Arc<FirewallManager>,
        socket: &Path,
        shutdown: Arc<AtomicBool>,
        options: ServeOptions,
    ) -> Result<JoinHandle<()>, FwError> {
        let group = options
            .admin_group
            .as_deref()
            .map(AdminGroup::lookup)
            .transpose()?;
        let dir = socket
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| FwError::io("create the socket directory", dir, &e))?;
        crate::private_dir::open_private_dir(
            dir,
            "socket directory",
            "choose a --socket in a directory only root can write, such as /run/v6fw",
        )
        .map_err(|e| FwError::Fail(e.to_string()))?;
        clear_stale(socket)?;
        let listener = bind_0666(socket)?;
        listener
            .set_nonblocking(true)
            .map_err(|e| FwError::io("configure", socket, &e))?;
        let path = socket.to_path_buf();
        let clients = Clients::new(options.idle_timeout);
        std::thread::Builder::new()
            .name("v6fw-control".into())
            .spawn(move || accept_loop(&listener, &manager, &shutdown, &clients, group, &path))
            .map_err(|e| FwError::OutOfMemory(format!("cannot start the control thread: {e}")))
    }

    /// Binds `socket` with mode 0666 (anyone may connect and read; only an
    /// admin may change, see [`Peer::is_admin`]). The mode comes from the
    /// umask at `bind`, not from a `chmod` by name afterwards, which would
    /// follow a link put in the socket's place. The umask is the process's:
    /// for the moment of the bind it is 0o111, which only takes execute bits
    /// away (nothing v6fw creates from another thread meanwhile has them:
    /// log files are 0640, policy files 0644, directories are made before).
    fn bind_0666(socket: &Path) -> Result<UnixListener, FwError> {
        use rustix::fs::Mode;
        use rustix::process::umask;

        let old = umask(Mode::from_raw_mode(0o111));
        let bound = UnixListener::bind(socket);
        umask(old);
        bound.map_err(|e| FwError::io("listen on", socket, &e))
    }

    /// Removes a socket file nobody answers on; refuses to touch a live one
    /// or anything that is not a socket.
    fn clear_stale(socket: &Path) -> Result<(), FwError> {
        let Ok(meta) = std::fs::symlink_metadata(socket) else {
            return Ok(());
        };
        if !meta.file_type().is_socket() {
            return Err(FwError::Fail(format!(
                "{} exists and is not a socket: remove it or choose another --socket",
                socket.display()
            )));
        }
        if UnixStream::connect(socket).is_ok() {
            return Err(FwError::Fail(format!(
                "a v6fw daemon is already listening on {}: stop it first or choose another --socket",
                socket.display()
            )));
        }
        std::fs::remove_file(socket).map_err(|e| FwError::io("remove the stale socket", socket, &e))
    }

    fn accept_loop(
        listener: &UnixListener,
        manager: &Arc<FirewallManager>,
        shutdown: &Arc<AtomicBool>,
        clients: &Arc<Clients>,
        group: Option<AdminGroup>,
        path: &PathBuf,
    ) {
        let group = group.map(Arc::new);
        while !shutdown.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let peer = match Peer::of(&stream) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!("cannot tell who a control client is: {e}; closing");
                            continue;
                        }
                    };
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
                    let conn = UnixConn {
                        stream,
                        peer,
                        group: group.clone(),
                    };
                    admit_peer(conn, peer.uid, manager, shutdown, clients);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!("control socket accept failed: {e}");
                    std::thread::sleep(ACCEPT_POLL);
                }
            }
        }
        let _ = std::fs::remove_file(path);
    }

    /// A control connection with the peer the kernel reported at accept.
    struct UnixConn {
        stream: UnixStream,
        peer: Peer,
        group: Option<Arc<AdminGroup>>,
    }

    impl Write for UnixConn {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.stream.write(buf)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.stream.flush()
        }
    }

    impl Conn for UnixConn {
        fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
            self.stream.set_read_timeout(Some(timeout))?;
            self.stream.read(buf)
        }

        fn peer_is_admin(&mut self) -> std::io::Result<bool> {
            self.peer.is_admin(self.group.as_deref())
        }
    }
}
