//! The control socket server: a Unix socket (a named pipe on Windows)
//! speaking the line-based JSON protocol of [`super::protocol`].
//!
//! Anyone may connect and read (the socket file is mode 0666); only a peer
//! whose uid is 0, as the kernel reports it (`SO_PEERCRED`), may change the
//! policy. On Windows the pipe lets everyone connect and only a client whose
//! token is a member of BUILTIN\Administrators (elevated) may change the
//! policy; remote clients are refused (see `pipe.rs`). Every request line is
//! bounded ([`MAX_REQUEST_BYTES`]) and must
//! be complete within [`REQUEST_TIMEOUT`] of its first byte (an idle
//! connection is closed after [`IDLE_TIMEOUT`]); a bad request gets an error reply and
//! the server keeps serving. Each client has its own thread, at most
//! [`MAX_CLIENTS`] at once.

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
    unix::serve(manager, socket, shutdown)
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

/// The per-client part both servers share: the client cap, reading request
/// lines with their limits, dispatching them and writing the replies, over
/// any stream that implements [`session::Conn`].
#[cfg(any(unix, windows))]
pub(super) mod session {
    use std::io::{ErrorKind, Write};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{ACCEPT_POLL, IDLE_TIMEOUT, MAX_CLIENTS, MAX_REQUEST_BYTES, REQUEST_TIMEOUT};
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

    /// Decrements the client count when a client thread ends, however it ends.
    struct Slot(Arc<AtomicUsize>);

    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Serves a new client from its own thread, or turns it away with an
    /// `E_OUTOFMEMORY` reply when [`MAX_CLIENTS`] are being served.
    pub(crate) fn admit<C: Conn>(
        mut stream: C,
        manager: &Arc<FirewallManager>,
        shutdown: &Arc<AtomicBool>,
        active: &Arc<AtomicUsize>,
    ) {
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            active.fetch_sub(1, Ordering::AcqRel);
            let e = FwError::OutOfMemory(format!(
                "the daemon is serving {MAX_CLIENTS} clients already: try again in a moment"
            ));
            let _ = stream.write_all(Reply::error(&e).to_line().as_bytes());
            return;
        }
        let slot = Slot(Arc::clone(active));
        let manager = Arc::clone(manager);
        let shutdown = Arc::clone(shutdown);
        let spawned = std::thread::Builder::new()
            .name("v6fw-client".into())
            .spawn(move || {
                let _slot = slot;
                serve_client(stream, &manager, &shutdown);
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
    }

    impl<C: Conn> LineReader<C> {
        /// The next line without its newline (and `\r`). `None` at a clean
        /// end: EOF, idle for [`IDLE_TIMEOUT`], or shutdown while idle.
        fn next_line(&mut self, shutdown: &AtomicBool) -> Result<Option<Vec<u8>>, LineError> {
            let mut chunk = [0u8; 4096];
            let mut deadline = Instant::now()
                + if self.buf.is_empty() {
                    IDLE_TIMEOUT
                } else {
                    REQUEST_TIMEOUT
                };
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
                if idle && shutdown.load(Ordering::Acquire) {
                    return Ok(None);
                }
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
                            deadline = Instant::now() + REQUEST_TIMEOUT;
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

    fn serve_client<C: Conn>(stream: C, manager: &Arc<FirewallManager>, shutdown: &AtomicBool) {
        let mut reader = LineReader {
            stream,
            buf: Vec::new(),
        };
        // Asked once the first line is in: a named pipe can only tell who
        // the client is after data has been read from it.
        let mut admin: Option<bool> = None;
        loop {
            let (reply, close) = match reader.next_line(shutdown) {
                Ok(None) | Err(LineError::Io) => return,
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
        }
    }
}

#[cfg(unix)]
mod unix {
    use std::io::{ErrorKind, Read};
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use super::session::{admit, Conn};
    use super::{ACCEPT_POLL, REQUEST_TIMEOUT};
    use crate::fw::{FirewallManager, FwError};

    pub(super) fn serve(
        manager: Arc<FirewallManager>,
        socket: &Path,
        shutdown: Arc<AtomicBool>,
    ) -> Result<JoinHandle<()>, FwError> {
        if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| FwError::io("create the socket directory", dir, &e))?;
        }
        clear_stale(socket)?;
        let listener =
            UnixListener::bind(socket).map_err(|e| FwError::io("listen on", socket, &e))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| FwError::io("set the mode of", socket, &e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| FwError::io("configure", socket, &e))?;
        let path = socket.to_path_buf();
        std::thread::Builder::new()
            .name("v6fw-control".into())
            .spawn(move || accept_loop(&listener, &manager, &shutdown, &path))
            .map_err(|e| FwError::OutOfMemory(format!("cannot start the control thread: {e}")))
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
        path: &PathBuf,
    ) {
        let active = Arc::new(AtomicUsize::new(0));
        while !shutdown.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
                    admit(stream, manager, shutdown, &active);
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

    impl Conn for UnixStream {
        fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
            self.set_read_timeout(Some(timeout))?;
            self.read(buf)
        }

        fn peer_is_admin(&mut self) -> std::io::Result<bool> {
            Ok(peer_uid(self).is_ok_and(|uid| uid == 0))
        }
    }

    /// The uid of the process at the other end, from the kernel.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
        use std::os::fd::AsRawFd;

        let mut cred = libc::ucred {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        };
        let size = std::mem::size_of::<libc::ucred>();
        let mut len = libc::socklen_t::try_from(size).map_err(std::io::Error::other)?;
        // SAFETY: the fd is a live socket owned by `stream`; `cred` and `len`
        // are valid, writable and `len` holds the size of `cred`, so the
        // kernel writes at most that many bytes into it.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                std::ptr::addr_of_mut!(cred).cast::<libc::c_void>(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if usize::try_from(len).ok() != Some(size) {
            return Err(std::io::Error::other("short SO_PEERCRED answer"));
        }
        Ok(cred.uid)
    }

    /// The uid of the process at the other end, from the kernel.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
        use std::os::fd::AsRawFd;

        let mut uid: libc::uid_t = libc::uid_t::MAX;
        let mut gid: libc::gid_t = libc::gid_t::MAX;
        // SAFETY: the fd is a live socket owned by `stream`; `uid` and `gid`
        // are valid places for the two values getpeereid writes.
        let rc = unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(uid)
    }
}
