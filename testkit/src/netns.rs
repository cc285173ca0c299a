//! Fixtures for tests and benchmarks that build their own network
//! namespaces: two namespaces joined by a veth pair, with unique names, the
//! addresses fd00::1/64 (FW) and fd00::2/64 (PEER) so that no traffic
//! leaves them, and everything removed on drop (also when building them
//! fails half way); plus the `ip netns exec` and bounded-command helpers
//! that drive them. Not used by v6fw itself. Needs root and `ip`
//! (iproute2).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub use crate::shared::require_live;

/// Runs a command to completion (stdin empty, stdout and stderr captured),
/// killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        sleep(Duration::from_millis(10));
    }
    if child.try_wait().map_err(|e| e.to_string())?.is_none() {
        let _ = child.kill();
    }
    child.wait_with_output().map_err(|e| e.to_string())
}

/// Runs `args` (at most 10 s); returns its stdout, or an error holding its
/// stderr.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let (program, rest) = args.split_first().ok_or("empty command")?;
    let out = run_bounded(Command::new(program).args(rest), Duration::from_secs(10))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip netns exec NS`, to which the caller adds the program and its
/// arguments; `ip` execs it in place, so the child's pid is the program's.
pub fn exec_in(ns: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]);
    c
}

/// Two namespaces, `fw` (fd00::1/64) and `peer` (fd00::2/64), joined by a
/// veth pair, and a scratch directory. On drop the namespaces this created
/// (with the veth pair and whatever else lives in them) and the directory
/// are removed; processes started in them should be stopped first (a
/// struct holding this one as a field does so in its own `Drop`).
#[derive(Debug)]
pub struct VethPair {
    /// The filtered side, fd00::1.
    pub fw: String,
    /// The other side, fd00::2.
    pub peer: String,
    /// A fresh directory under the system's temporary directory.
    pub dir: PathBuf,
    created: Vec<String>,
}

impl VethPair {
    /// Builds the pair with names unique to this process and call: the
    /// namespaces `{ns_prefix}-fw-{id}` and `{ns_prefix}-peer-{id}`, the
    /// directory `{dir_prefix}-{id}` in the temporary directory. On an
    /// error, what was built so far is removed again.
    pub fn new(ns_prefix: &str, dir_prefix: &str) -> Result<VethPair, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(format!("{dir_prefix}-{id}"));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut pair = VethPair {
            fw: format!("{ns_prefix}-fw-{id}"),
            peer: format!("{ns_prefix}-peer-{id}"),
            dir,
            created: Vec::new(),
        };
        let (va, vb) = (format!("v6a{id}"), format!("v6b{id}"));
        let (fw, peer) = (pair.fw.clone(), pair.peer.clone());
        for ns in [&fw, &peer] {
            sh(&["ip", "netns", "add", ns])?;
            pair.created.push(ns.clone());
        }
        let steps: [&[&str]; 7] = [
            &[
                "ip", "link", "add", &va, "netns", &fw, "type", "veth", "peer", "name", &vb,
                "netns", &peer,
            ],
            &[
                "ip",
                "-n",
                &fw,
                "addr",
                "add",
                "fd00::1/64",
                "dev",
                &va,
                "nodad",
            ],
            &[
                "ip",
                "-n",
                &peer,
                "addr",
                "add",
                "fd00::2/64",
                "dev",
                &vb,
                "nodad",
            ],
            &["ip", "-n", &fw, "link", "set", "lo", "up"],
            &["ip", "-n", &peer, "link", "set", "lo", "up"],
            &["ip", "-n", &fw, "link", "set", &va, "up"],
            &["ip", "-n", &peer, "link", "set", &vb, "up"],
        ];
        for step in steps {
            sh(step)?;
        }
        Ok(pair)
    }

    /// Whether the ip6tables NFQUEUE target can be used in the FW namespace:
    /// adds a rule queueing loopback output to queue 7 (with bypass) and
    /// deletes it again.
    pub fn nfqueue_target_works(&self) -> Result<(), String> {
        let rule = [
            "OUTPUT",
            "-o",
            "lo",
            "-j",
            "NFQUEUE",
            "--queue-num",
            "7",
            "--queue-bypass",
        ];
        for action in ["-A", "-D"] {
            let mut args = vec!["ip", "netns", "exec", &self.fw, "ip6tables", "-w", action];
            args.extend(rule);
            sh(&args)?;
        }
        Ok(())
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in &self.created {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
