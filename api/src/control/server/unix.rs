//! The Unix socket side of the control server: binding the socket safely,
//! accepting clients with their kernel-reported credentials.

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
use crate::control::protocol::Caller;
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
        .map_err(|e| FwError::io("create the socket directory", dir, e))?;
    crate::private_dir::open_private_dir(
        dir,
        "socket directory",
        "choose a --socket in a directory only root can write, such as /run/v6fw",
    )
    .map_err(|e| FwError::caused(crate::fw::Code::Fail, e))?;
    clear_stale(socket)?;
    let listener = bind_0666(socket)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| FwError::io("configure", socket, e))?;
    let path = socket.to_path_buf();
    let clients = Clients::new(options.idle_timeout);
    std::thread::Builder::new()
        .name("v6fw-control".into())
        .spawn(move || accept_loop(&listener, &manager, &shutdown, &clients, group, &path))
        .map_err(|e| {
            FwError::OutOfMemory(format!("cannot start the control thread: {e}")).because(e)
        })
}

/// Binds `socket` with mode 0666 (anyone may connect and read; only an
/// admin may change, see [`Peer::caller`]). The mode comes from a umask of
/// 0o111 at `bind`, not from a `chmod` by name afterwards, which would follow
/// a link put in the socket's place. On Linux the bind runs on a thread of
/// its own that first unshares its file-system context (`CLONE_FS`), so the
/// umask of no other thread changes; elsewhere the process's umask is set
/// for the moment of the bind (it only takes execute bits away).
fn bind_0666(socket: &Path) -> Result<UnixListener, FwError> {
    let path = socket.to_path_buf();
    let bound = std::thread::Builder::new()
        .name("v6fw-bind".into())
        .spawn(move || -> std::io::Result<UnixListener> {
            use rustix::fs::Mode;
            use rustix::process::umask;

            #[cfg(any(target_os = "linux", target_os = "android"))]
            // SAFETY: only the file-system context (cwd, root, umask) is
            // unshared, never the fd table; this thread ends after the bind,
            // and no other thread sees its context.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }?;
            let old = umask(Mode::from_raw_mode(0o111));
            let bound = UnixListener::bind(&path);
            umask(old);
            bound
        })
        .map_err(|e| {
            FwError::OutOfMemory(format!("cannot start a thread to bind: {e}")).because(e)
        })?
        .join()
        .map_err(|_| FwError::Unexpected("the bind thread panicked; please report this".into()))?;
    bound.map_err(|e| FwError::io("listen on", socket, e))
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
    std::fs::remove_file(socket).map_err(|e| FwError::io("remove the stale socket", socket, e))
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
    // When an accept failure was last logged: once a minute, not per poll.
    let mut warned: Option<std::time::Instant> = None;
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
                let uid = peer.uid;
                let conn = UnixConn {
                    stream,
                    peer,
                    group: group.clone(),
                };
                admit_peer(conn, uid, manager, shutdown, clients);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        "control socket accept failed: {e} (out of descriptors? raise \
                         LimitNOFILE=; said once a minute while it lasts)"
                    );
                    warned = Some(std::time::Instant::now());
                }
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

    fn peer_caller(&mut self) -> std::io::Result<Caller> {
        self.peer.caller(self.group.as_deref())
    }
}
