//! One `v6fw run` per network namespace.
//!
//! The daemon binds the abstract Unix socket `@v6fw-run` (Linux). Abstract
//! names live in the network namespace and vanish with the process that
//! holds them, `kill -9` included: nothing stale is ever left behind. A
//! second daemon in the same namespace cannot bind it, connects instead,
//! reads who holds it (pid, control socket, queues) and refuses to start,
//! before it touches any rule or queue, whatever its `--queues`.

use std::io;

/// The abstract socket name (shown as `@v6fw-run` by `ss -x`).
pub const NAME: &[u8] = b"v6fw-run";

/// What the running daemon tells a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its control socket.
    pub socket: String,
    /// Its queues.
    pub queues: String,
}

impl Holder {
    fn line(&self) -> String {
        format!(
            "pid={} socket={} queues={}\n",
            self.pid, self.socket, self.queues
        )
    }

    fn parse(line: &str) -> Option<Holder> {
        let mut h = Holder {
            pid: 0,
            socket: String::new(),
            queues: String::new(),
        };
        for field in line.split_whitespace() {
            match field.split_once('=')? {
                ("pid", v) => h.pid = v.parse().ok()?,
                ("socket", v) => v.clone_into(&mut h.socket),
                ("queues", v) => v.clone_into(&mut h.queues),
                _ => {}
            }
        }
        (h.pid != 0).then_some(h)
    }
}

/// Another daemon runs in this namespace.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// It answered.
    #[error(
        "another v6fw run is already filtering this network namespace (pid {}, control \
         socket {}, queues {}): stop it first (`kill {}`, or `systemctl stop v6fw`); its \
         rules were not touched",
        .0.pid, .0.socket, .0.queues, .0.pid
    )]
    Running(Holder),
    /// The name is taken but the holder did not say who it is.
    #[error(
        "another v6fw run holds the abstract socket @v6fw-run of this network namespace \
         but did not answer ({0}); stop it first (`ss -xlp | grep v6fw-run` shows its pid)"
    )]
    Silent(String),
    /// The name could not be bound for another reason.
    #[error("cannot bind the abstract socket @v6fw-run that keeps one v6fw run per network namespace: {0}")]
    Os(io::Error),
}

/// Held while the daemon runs: the bound name, answered from a thread.
#[derive(Debug)]
pub struct Instance {
    _thread: Option<std::thread::JoinHandle<()>>,
}

/// Claims the namespace for this process, or says who holds it.
pub fn claim(me: Holder) -> Result<Instance, InstanceError> {
    claim_name(NAME, me)
}

/// [`claim`] under another abstract name (tests).
#[cfg(target_os = "linux")]
fn claim_name(name: &[u8], me: Holder) -> Result<Instance, InstanceError> {
    use std::io::{Read, Write};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    use std::time::Duration;

    let addr = SocketAddr::from_abstract_name(name).map_err(InstanceError::Os)?;
    let listener = match UnixListener::bind_addr(&addr) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(ask(&addr).map_or_else(
                |e| InstanceError::Silent(e.to_string()),
                InstanceError::Running,
            ));
        }
        Err(e) => return Err(InstanceError::Os(e)),
    };
    let line = me.line();
    let thread = std::thread::Builder::new()
        .name("v6fw-instance".into())
        .spawn(move || {
            // Lives as long as the process: answers every asker and closes.
            for mut s in listener.incoming().flatten() {
                let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = s.write_all(line.as_bytes());
            }
        })
        .map_err(InstanceError::Os)?;
    return Ok(Instance {
        _thread: Some(thread),
    });

    fn ask(addr: &SocketAddr) -> io::Result<Holder> {
        let s = UnixStream::connect_addr(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut text = String::new();
        s.take(512).read_to_string(&mut text)?;
        Holder::parse(&text).ok_or_else(|| io::Error::other(format!("it said {text:?}")))
    }
}

/// Elsewhere there is no namespace to claim (WinDivert refuses a second
/// handle at the same priority itself).
#[cfg(not(target_os = "linux"))]
fn claim_name(_name: &[u8], _me: Holder) -> Result<Instance, InstanceError> {
    Ok(Instance { _thread: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_line_round_trips() {
        let h = Holder {
            pid: 42,
            socket: "/run/v6fw/control.sock".into(),
            queues: "0-1".into(),
        };
        assert_eq!(Holder::parse(&h.line()), Some(h.clone()));
        assert_eq!(Holder::parse("hello"), None);
        let msg = InstanceError::Running(h).to_string();
        assert!(
            msg.contains("pid 42") && msg.contains("/run/v6fw/control.sock"),
            "{msg}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_second_claim_is_refused_and_names_the_first() {
        let name = format!("v6fw-run-test-{}", std::process::id());
        let me = |pid, queues: &str| Holder {
            pid,
            socket: "/tmp/a.sock".into(),
            queues: queues.into(),
        };
        let _first = claim_name(name.as_bytes(), me(std::process::id(), "0")).unwrap();
        match claim_name(name.as_bytes(), me(1, "1")) {
            Err(InstanceError::Running(h)) => assert_eq!(h, me(std::process::id(), "0")),
            other => panic!("{other:?}"),
        }
    }
}
