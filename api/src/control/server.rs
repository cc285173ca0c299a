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

/// Most connections one non-root uid (on Windows: one user SID that is no
/// administrator) may hold at once.
pub const MAX_CLIENTS_PER_USER: usize = 8;

/// Of [`MAX_CLIENTS`], how many only root (on Windows: administrators) may take.
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
/// while a pipe of that name exists (a live daemon, or another program
/// squatting the name) the server logs an error and tries again every 2 s,
/// and the daemon filters meanwhile.
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

#[cfg(any(unix, windows))]
pub(super) mod session;

#[cfg(unix)]
mod unix;
