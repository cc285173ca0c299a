//! A control server on a Unix socket (Windows: a named pipe), for the tests
//! that talk to one.

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use v6fw_api::control::server::serve;
use v6fw_api::fw::FirewallManager;
use v6fw_api::interfaces::Interface;

/// Where and how a [`Daemon`] is set up.
pub struct DaemonOptions<'a> {
    /// The prefix of its fresh directory under /tmp.
    pub prefix: &'a str,
    /// Permissions given to that directory, if any (0755 lets an
    /// unprivileged user reach the socket).
    pub dir_mode: Option<u32>,
    /// The socket's path inside the directory (Windows: the pipe
    /// `\\.\pipe\DIRNAME-SOCKET`).
    pub socket: &'a str,
    /// Whether stopping panics if the server thread panicked (otherwise its
    /// outcome is ignored).
    pub strict_stop: bool,
}

/// A control server in a fresh directory under /tmp, with its state in
/// `state/` and connection `test0` (index 1000); stopped on drop.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub mgr: Arc<FirewallManager>,
    pub socket: PathBuf,
    shutdown: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    strict_stop: bool,
}

impl Daemon {
    /// A daemon on `run/control.sock` in a fresh 0755 directory under /tmp
    /// named `prefix…` (so an unprivileged user can reach it), with
    /// connection `test0` (index 1000); stopping panics if the server did.
    pub fn reachable(prefix: &str) -> Daemon {
        Daemon::start_with(
            &DaemonOptions {
                prefix,
                dir_mode: Some(0o755),
                socket: "run/control.sock",
                strict_stop: true,
            },
            |_| {},
        )
    }

    /// Starts the server once `setup` has prepared the manager (opened ports,
    /// log settings).
    pub fn start_with(
        options: &DaemonOptions,
        setup: impl FnOnce(&Arc<FirewallManager>),
    ) -> Daemon {
        let mut builder = tempfile::Builder::new();
        builder.prefix(options.prefix);
        #[cfg(unix)]
        let dir = builder.tempdir_in("/tmp").unwrap();
        #[cfg(not(unix))]
        let dir = builder.tempdir().unwrap();
        #[cfg(unix)]
        if let Some(mode) = options.dir_mode {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let mgr = FirewallManager::open(&dir.path().join("state")).unwrap();
        mgr.refresh_from(&[Interface {
            id: "test0".into(),
            name: "Test 0".into(),
            index: 1000,
        }])
        .unwrap();
        setup(&mgr);
        #[cfg(unix)]
        let socket = dir.path().join(options.socket);
        #[cfg(windows)]
        let socket = PathBuf::from(format!(
            r"\\.\pipe\{}-{}",
            dir.path().file_name().unwrap().to_string_lossy(),
            options.socket.replace('/', "-")
        ));
        let shutdown = Arc::new(AtomicBool::new(false));
        let handle = serve(Arc::clone(&mgr), &socket, Arc::clone(&shutdown)).unwrap();
        Daemon {
            dir,
            mgr,
            socket,
            shutdown,
            handle: Some(handle),
            strict_stop: options.strict_stop,
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let joined = h.join();
            if self.strict_stop {
                joined.unwrap();
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
