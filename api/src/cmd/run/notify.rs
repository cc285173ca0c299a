//! systemd's readiness protocol (`sd_notify`) in a few lines, with no
//! libsystemd: one datagram per state to the Unix socket `$NOTIFY_SOCKET`
//! (a path, or an abstract name when it starts with `@`). Without the
//! variable (not started by systemd) nothing is sent.
//!
//! `v6fw run` sends `READY=1` once its queues are bound and its rules are in,
//! `WATCHDOG=1` from the supervising loop at half of `$WATCHDOG_USEC` (so a
//! stuck daemon is restarted by systemd) and `STOPPING=1` when it stops.

use std::io;
use std::time::Duration;

/// Where to notify, read once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    target: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (the latter only when
    /// `$WATCHDOG_PID` is unset or this process).
    pub fn from_env() -> Self {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty());
        let for_me = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&us| us > 0 && for_me)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// How often to send `WATCHDOG=1` (half the watchdog timeout), if asked.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// Sends `state` (e.g. `READY=1`); a daemon not under systemd sends
    /// nothing. A failure is returned (callers log it once).
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        send(target, state.as_bytes())
    }
}

#[cfg(unix)]
fn send(target: &str, msg: &[u8]) -> io::Result<()> {
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            return sock.send_to_addr(msg, &addr).map(drop);
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(io::Error::other(
                "abstract NOTIFY_SOCKET names are Linux only",
            ));
        }
    }
    sock.send_to(msg, std::path::Path::new(target)).map(drop)
}

#[cfg(not(unix))]
fn send(_target: &str, _msg: &[u8]) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn ready_reaches_a_fake_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier {
            target: Some(path.to_str().unwrap().to_string()),
            watchdog: Some(Duration::from_secs(10)),
        };
        n.notify("READY=1").unwrap();
        n.notify("WATCHDOG=1").unwrap();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn without_systemd_nothing_is_sent() {
        let n = Notifier {
            target: None,
            watchdog: None,
        };
        assert!(n.notify("READY=1").is_ok());
        assert_eq!(n.watchdog_interval(), None);
    }
}
