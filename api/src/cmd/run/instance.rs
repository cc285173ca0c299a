//! One `v6fw run` per network namespace.
//!
//! The daemon takes an exclusive `flock` on `/run/v6fw/netns-INODE.lock`,
//! INODE being its network namespace's (`/proc/self/ns/net`), and writes
//! who it is into it (pid, control socket, queues). The kernel releases the
//! lock when the process dies, `kill -9` included, so nothing stale can
//! block a restart. A second daemon in the same namespace finds the lock
//! taken, reads the file and refuses to start, before it touches any rule
//! or queue, whatever its `--queues`. The file is root's and mode 0600 in a
//! root-only directory, and never opened through a symbolic link
//! ([`v6fw_api::lock_file`]): no unprivileged user can take the lock to keep
//! the firewall from starting (an abstract Unix socket, also per namespace,
//! could be bound by anyone).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Where the lock files live (the daemon's runtime directory).
pub const LOCK_DIR: &str = "/run/v6fw";

/// What the running daemon wrote about itself.
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

/// Why this daemon may not run.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Another daemon holds the namespace.
    #[error(
        "another v6fw run is already filtering this network namespace (pid {}, control \
         socket {}, queues {}): stop it first (`kill {}`, or `systemctl stop v6fw`); its \
         rules were not touched",
        .0.pid, .0.socket, .0.queues, .0.pid
    )]
    Running(Holder),
    /// The lock is taken but the file does not say by whom.
    #[error(
        "another v6fw run holds {0} (it did not say who it is): stop it first \
         (`fuser -v {0}` shows its pid)"
    )]
    Silent(String),
    /// The lock could not be taken for another reason.
    #[error("cannot take {0}, which keeps one v6fw run per network namespace: {1}")]
    Os(String, io::Error),
}

/// Held while the daemon runs: the locked file, removed when dropped (a
/// daemon that dies leaves it, unlocked: harmless).
#[derive(Debug)]
pub struct Instance {
    _file: File,
    path: PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Still locked: whoever opens the path from now on gets a new file.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Claims this process's network namespace, or says who holds it.
pub fn claim(me: &Holder) -> Result<Instance, InstanceError> {
    let ns = "/proc/self/ns/net";
    let inode = std::fs::metadata(ns)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .map_err(|e| InstanceError::Os(ns.into(), e))?;
    claim_in(Path::new(LOCK_DIR), inode, me)
}

/// [`claim`] with the lock in `dir`, for namespace `inode`.
fn claim_in(dir: &Path, inode: u64, me: &Holder) -> Result<Instance, InstanceError> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};

    let path: PathBuf = dir.join(format!("netns-{inode}.lock"));
    let shown = path.display().to_string();
    let os = |e| InstanceError::Os(shown.clone(), e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(os)?;
    // A daemon that stops removes the file while it holds the lock; one that
    // opened it just before then locks a file no longer at `path`: again.
    for _ in 0..8 {
        // Mode 0600, never through a link (v6fw_api::lock_file).
        let mut file = v6fw_api::lock_file::open(&path).map_err(os)?;
        // std's exclusive lock is flock(LOCK_EX | LOCK_NB) on Linux.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(os(e)),
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.take(512).read_to_string(&mut text);
                return Err(Holder::parse(&text)
                    .map_or(InstanceError::Silent(shown), InstanceError::Running));
            }
        }
        let here = std::fs::metadata(&path).map(|m| m.ino()).ok();
        if here != Some(file.metadata().map_err(os)?.ino()) {
            continue;
        }
        file.set_len(0).map_err(os)?;
        file.rewind().map_err(os)?;
        file.write_all(me.line().as_bytes()).map_err(os)?;
        return Ok(Instance { _file: file, path });
    }
    Err(os(io::Error::other(
        "the lock file kept changing under this process",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(pid: u32, queues: &str) -> Holder {
        Holder {
            pid,
            socket: "/run/v6fw/control.sock".into(),
            queues: queues.into(),
        }
    }

    #[test]
    fn the_holder_line_round_trips() {
        assert_eq!(Holder::parse(&me(42, "0-1").line()), Some(me(42, "0-1")));
        assert_eq!(Holder::parse("hello"), None);
        let msg = InstanceError::Running(me(42, "0")).to_string();
        assert!(
            msg.contains("pid 42") && msg.contains("/run/v6fw/control.sock"),
            "{msg}"
        );
    }

    #[test]
    fn a_second_claim_is_refused_and_names_the_first_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim_in(dir.path(), 7, &me(100, "0")).unwrap();
        match claim_in(dir.path(), 7, &me(200, "1")) {
            Err(InstanceError::Running(h)) => assert_eq!(h, me(100, "0")),
            other => panic!("{other:?}"),
        }
        // Another namespace is another lock.
        let other_ns = claim_in(dir.path(), 8, &me(300, "0")).unwrap();
        drop(first);
        assert!(
            !dir.path().join("netns-7.lock").exists(),
            "removed at the end"
        );
        // A daemon killed with its file left behind: the lock went with it.
        let again = claim_in(dir.path(), 7, &me(400, "0")).unwrap();
        std::mem::forget(again.path.clone());
        let left = std::fs::File::open(dir.path().join("netns-7.lock")).unwrap();
        let text = std::fs::read_to_string(dir.path().join("netns-7.lock")).unwrap();
        assert_eq!(Holder::parse(&text), Some(me(400, "0")));
        drop((again, other_ns, left));
    }

    #[test]
    fn the_lock_is_for_root_alone_and_never_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let held = claim_in(dir.path(), 9, &me(100, "0")).unwrap();
        let mode = std::fs::metadata(dir.path().join("netns-9.lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(held);
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, dir.path().join("netns-10.lock")).unwrap();
        let err = claim_in(dir.path(), 10, &me(100, "0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!target.exists(), "the link was followed");
    }
}
