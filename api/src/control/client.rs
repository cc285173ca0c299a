//! A client of the control socket, for the command line and for tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::protocol::{Reply, Request};
use crate::fw::FwError;

/// How long the client waits for one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a running daemon.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    #[cfg(unix)]
    stream: std::io::BufReader<std::os::unix::net::UnixStream>,
    #[cfg(windows)]
    stream: std::io::BufReader<super::pipe::Pipe>,
}

/// Refuses a server that runs as neither root nor this user: another user
/// who managed to listen at the path would see every request.
#[cfg(unix)]
fn check_server(stream: &std::os::unix::net::UnixStream, socket: &Path) -> Result<(), FwError> {
    let peer =
        super::peer::Peer::of(stream).map_err(|e| FwError::io("tell who serves", socket, e))?;
    let me = rustix::process::geteuid().as_raw();
    if peer.uid == 0 || peer.uid == me {
        return Ok(());
    }
    Err(FwError::AccessDenied(format!(
        "{} is served by uid {}, not root: that is no v6fw daemon to trust, nothing was sent; check --socket (and who can write its directory)",
        socket.display(),
        peer.uid
    )))
}

impl Client {
    /// Connects to the daemon at `socket`. `Ok(None)` means no daemon is
    /// running there (no socket file, or nobody listening, or a platform
    /// without a control socket); other failures are errors. On Unix the
    /// server must run as root (or as this user): one run by anyone else is
    /// an impostor, refused before anything is sent.
    #[cfg(unix)]
    pub fn connect(socket: &Path) -> Result<Option<Client>, FwError> {
        use std::io::ErrorKind;
        use std::os::unix::net::UnixStream;

        match UnixStream::connect(socket) {
            Ok(s) => {
                check_server(&s, socket)?;
                s.set_read_timeout(Some(REPLY_TIMEOUT))
                    .and_then(|()| s.set_write_timeout(Some(REPLY_TIMEOUT)))
                    .map_err(|e| FwError::io("configure the connection to", socket, e))?;
                Ok(Some(Client {
                    path: socket.to_path_buf(),
                    stream: std::io::BufReader::new(s),
                }))
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                Ok(None)
            }
            Err(e) => Err(FwError::io("connect to the daemon at", socket, e)),
        }
    }

    /// Connects to the daemon's named pipe `socket` (`\\.\pipe\NAME`, or
    /// just `NAME`). `Ok(None)` means no daemon: no pipe of that name.
    #[cfg(windows)]
    pub fn connect(socket: &Path) -> Result<Option<Client>, FwError> {
        match super::pipe::connect(socket, REPLY_TIMEOUT) {
            Ok(Some(pipe)) => Ok(Some(Client {
                path: socket.to_path_buf(),
                stream: std::io::BufReader::new(pipe),
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(FwError::io("connect to the daemon at", socket, e)),
        }
    }

    /// No control socket on this platform: there is never a daemon to reach.
    #[cfg(not(any(unix, windows)))]
    pub fn connect(_socket: &Path) -> Result<Option<Client>, FwError> {
        Ok(None)
    }

    /// The socket this client is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one raw line (a newline is added) and reads one reply.
    #[cfg(any(unix, windows))]
    pub fn send_line(&mut self, line: &[u8]) -> Result<Reply, FwError> {
        use std::io::{BufRead, Read, Write};

        let max = super::protocol::MAX_ADMIN_REQUEST_BYTES;
        if line.len() >= max {
            return Err(FwError::InvalidArg(format!(
                "the request is {} bytes, more than the daemon reads ({max}): nothing was sent",
                line.len()
            )));
        }
        let mut msg = line.to_vec();
        msg.push(b'\n');
        let daemon = self.path.clone();
        let sent = self.stream.get_mut().write_all(&msg);
        // A daemon that refused the line closes after its error reply: read
        // it rather than report the broken pipe.
        if let Err(e) = sent {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(FwError::io("send a request to the daemon at", &daemon, e));
            }
        }
        let mut reply = Vec::new();
        let limit = u64::try_from(super::protocol::MAX_REPLY_BYTES).unwrap_or(u64::MAX);
        let n = self
            .stream
            .by_ref()
            .take(limit)
            .read_until(b'\n', &mut reply)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => FwError::Abort(
                    format!("the daemon at {} did not reply in time", daemon.display()),
                ),
                _ => FwError::io("read the reply of the daemon at", &daemon, e),
            })?;
        if n == 0 || reply.last() != Some(&b'\n') {
            return Err(FwError::Fail(format!(
                "the daemon at {} closed the connection without a whole reply: see its log",
                daemon.display()
            )));
        }
        serde_json::from_slice(&reply).map_err(|e| {
            FwError::NoInterface(format!(
                "the daemon at {} sent a reply this v6fw does not understand ({e}): are both the same version?",
                daemon.display()
            )).because(e)
        })
    }

    /// No control socket on this platform.
    #[cfg(not(any(unix, windows)))]
    pub fn send_line(&mut self, _line: &[u8]) -> Result<Reply, FwError> {
        Err(FwError::NotImpl(
            "the control channel is not written for this platform yet".into(),
        ))
    }

    /// Sends a request; the result value or the daemon's error.
    pub fn call(&mut self, req: &Request) -> Result<Value, FwError> {
        let line = serde_json::to_vec(req).map_err(|e| {
            FwError::Unexpected(format!("cannot encode the request: {e}")).because(e)
        })?;
        self.send_line(&line)?.into_result()
    }

    /// Sends a request and decodes its result as `T`.
    pub fn request<T: DeserializeOwned>(&mut self, req: &Request) -> Result<T, FwError> {
        decode(self.call(req)?)
    }
}

/// Decodes a result value as `T`; a mismatch is `E_NOINTERFACE`.
pub fn decode<T: DeserializeOwned>(v: Value) -> Result<T, FwError> {
    serde_json::from_value(v).map_err(|e| {
        FwError::NoInterface(format!(
            "unexpected result from the daemon ({e}): are the daemon and this command the same version?"
        )).because(e)
    })
}

/// Whether this process may change the policy without a daemon: effective
/// uid 0 on Unix; on Windows an elevated token (a member of
/// BUILTIN\Administrators), as the daemon's pipe requires. On other
/// platforms the policy file's own permissions decide (a refused write is
/// `E_ACCESSDENIED`).
pub fn is_admin() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(windows)]
    {
        super::pipe_peer::current_process_is_admin()
    }
    #[cfg(not(any(unix, windows)))]
    {
        true
    }
}

/// How a command reached the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Through a running daemon.
    Daemon,
    /// Directly in the policy file (no daemon was running).
    File,
}

/// Whether a request may go to the policy file when no daemon answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Yes: the caller named the state directory, or nothing.
    File,
    /// No: the caller named a daemon (`--socket` alone); no answer there
    /// is an error and nothing is changed.
    Never,
}

/// Runs `req` through the daemon at `socket` if one answers there, else
/// (with [`Fallback::File`]) directly on the policy file of `state_dir`: a
/// read opens it read-only, a change needs root (`E_ACCESSDENIED`
/// otherwise) and is written durably exactly as the daemon would write it.
/// With `expect_dir`, a daemon that answers but serves another state
/// directory is not asked: it is another daemon, and the file of
/// `state_dir` is used.
pub fn execute(
    socket: Option<&Path>,
    state_dir: &Path,
    req: &Request,
    expect_dir: Option<&Path>,
    fallback: Fallback,
) -> Result<(Value, Route), FwError> {
    if let Some(mut client) = socket.map(Client::connect).transpose()?.flatten() {
        if expect_dir.is_none_or(|dir| serves(&mut client, dir)) {
            return Ok((client.call(req)?, Route::Daemon));
        }
    }
    if fallback == Fallback::Never {
        let at = socket.map_or_else(String::new, |s| format!(" at {}", s.display()));
        return Err(FwError::Fail(format!(
            "no v6fw daemon answers{at}: nothing was sent or changed; start it (`v6fw run --socket ...`), \
             check --socket, or name its state directory with --state-dir to change the policy file there"
        )));
    }
    let admin = is_admin();
    if req.is_change() && !admin {
        return Err(FwError::needs_root());
    }
    let mgr = if req.is_change() {
        crate::fw::FirewallManager::open(state_dir)?
    } else {
        crate::fw::FirewallManager::open_read_only(state_dir)?
    };
    Ok((
        super::protocol::dispatch(&mgr, req.clone(), super::protocol::Caller::root_if(admin))?,
        Route::File,
    ))
}

/// Whether the daemon behind `client` serves the state directory `dir`.
fn serves(client: &mut Client, dir: &Path) -> bool {
    let Ok(ping) = client.request::<super::protocol::PingResult>(&Request::Ping) else {
        return false;
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    ping.state_dir
        .is_some_and(|served| same(Path::new(&served), dir))
}
