//! The control socket's server for `v6fw run`, started again when it dies:
//! filtering never depends on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::supervise::{Budget, MAX_RESTARTS, RESTART_WINDOW};
use v6fw_api::control::ServeOptions;
use v6fw_api::fw::{FirewallManager, FwError};

/// The control socket's server, started again when it dies.
pub(super) struct Control {
    manager: Arc<FirewallManager>,
    socket: PathBuf,
    options: ServeOptions,
    pub(super) shutdown: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    restarts: Budget,
}

impl Control {
    /// Serves `socket`; where control sockets do not exist yet, runs without.
    pub(super) fn start(
        manager: &Arc<FirewallManager>,
        socket: &Path,
        options: ServeOptions,
        shutdown: &Arc<AtomicBool>,
    ) -> Result<Control, FwError> {
        let mut c = Control {
            manager: Arc::clone(manager),
            socket: socket.to_path_buf(),
            options,
            shutdown: Arc::clone(shutdown),
            handle: None,
            restarts: Budget::new(MAX_RESTARTS, RESTART_WINDOW),
        };
        match c.serve() {
            Ok(h) => c.handle = Some(h),
            Err(FwError::NotImpl(m)) => tracing::warn!("no control socket: {m}"),
            Err(e) => return Err(e),
        }
        Ok(c)
    }

    fn serve(&self) -> Result<JoinHandle<()>, FwError> {
        v6fw_api::control::serve_with(
            Arc::clone(&self.manager),
            &self.socket,
            Arc::clone(&self.shutdown),
            self.options.clone(),
        )
    }

    /// Starts the server again if it died; filtering never depends on it.
    pub(super) fn check(&mut self) {
        if self.shutdown.load(Ordering::SeqCst)
            || !self.handle.as_ref().is_some_and(JoinHandle::is_finished)
        {
            return;
        }
        let _ = self.handle.take().map(JoinHandle::join);
        if !self.restarts.take(Instant::now()) {
            tracing::error!(
                "the control socket {} died again: not restarted (filtering goes on; \
                 restart v6fw run to get `v6fw ports|stats` back)",
                self.socket.display()
            );
            return;
        }
        match self.serve() {
            Ok(h) => {
                tracing::warn!(
                    "the control socket {} died: started again",
                    self.socket.display()
                );
                self.handle = Some(h);
            }
            Err(e) => tracing::error!(
                "the control socket {} died and cannot be started again ({e}); \
                 filtering goes on",
                self.socket.display()
            ),
        }
    }

    /// Waits for the server (once shutdown is set); what went wrong.
    pub(super) fn join(&mut self) -> Option<String> {
        match self.handle.take().map(JoinHandle::join) {
            Some(Err(_)) => Some("the control socket thread panicked".to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_dead_control_socket_is_started_again() {
        let dir = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        let socket = dir.path().join("c.sock");
        #[cfg(windows)]
        let socket = std::path::PathBuf::from(format!(
            r"\\.\pipe\v6fw-restart-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        ));
        let shutdown = Arc::new(AtomicBool::new(false));
        // A server thread that died (its socket file is stale or gone).
        let dead = std::thread::spawn(|| {});
        while !dead.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut control = Control {
            manager: FirewallManager::in_memory(v6fw_engine::Policy::default()),
            socket: socket.clone(),
            options: ServeOptions::default(),
            shutdown: Arc::clone(&shutdown),
            handle: Some(dead),
            restarts: Budget::new(1, RESTART_WINDOW),
        };
        control.check();
        #[cfg(unix)]
        let reached = std::os::unix::net::UnixStream::connect(&socket).is_ok();
        // A pipe client is a file opened on the pipe's name.
        #[cfg(windows)]
        let reached = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&socket)
            .is_ok();
        assert!(reached, "no server on the socket after the restart");
        shutdown.store(true, Ordering::SeqCst);
        assert_eq!(control.join(), None);
    }
}
