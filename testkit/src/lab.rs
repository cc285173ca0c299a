//! The live tests' lab: two network namespaces joined by a veth pair
//! ([`VethPair`]: FW fd00::1, PEER fd00::2), Python servers and clients in
//! them, `v6fw` commands run in FW, and every process started in them
//! killed on drop; `v6fw run` started and stopped ([`Lab::start_run`]).
//! Used by api's live_*.rs tests, which give it their `v6fw` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fixture: a lab that cannot be built fails its test loudly"
)]

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::netns::{self, require_live, VethPair};

/// The filtered side.
pub const FW_ADDR: &str = "fd00::1";
/// The other side.
pub const PEER_ADDR: &str = "fd00::2";

/// Serves TCP (sends `hi` to each client) and UDP echo on the given ports
/// until killed (or 60 s), touching the ready file once bound.
pub const SERVER: &str = r#"
import socket, sys, threading, time
ready, tcp_ports, udp_ports = sys.argv[1], sys.argv[2], sys.argv[3]
def tcp(s):
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"hi")
        except OSError:
            pass
        c.close()
def udp(s):
    while True:
        d, a = s.recvfrom(2048)
        s.sendto(d, a)
for p in filter(None, tcp_ports.split(",")):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", int(p))); s.listen(16)
    threading.Thread(target=tcp, args=(s,), daemon=True).start()
for p in filter(None, udp_ports.split(",")):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", int(p)))
    threading.Thread(target=udp, args=(s,), daemon=True).start()
open(ready, "w").close()
time.sleep(60)
"#;

/// One exchange: prints `ok` or `fail:<why>`.
pub const CLIENT: &str = r#"
import socket, sys
kind, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=timeout)
        s.settimeout(timeout)
        d = s.recv(16)
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(b"v6fw", (host, port))
        d, _ = s.recvfrom(64)
    print("ok" if d in (b"hi", b"v6fw") else "bad:" + repr(d))
except OSError as e:
    print("fail:" + type(e).__name__)
"#;

/// Passes with a note (naming `test`), unless the environment asks for the
/// live tests.
pub fn skip(test: &str, why: &str) {
    assert!(
        !require_live(),
        "V6FW_REQUIRE_LIVE is set but {test} cannot run: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
}

/// Whether this process runs as root (the lab needs it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `cmd arg` can be run at all (e.g. `has("ip6tables", "-V")`).
pub fn has(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs a command to completion, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    netns::run_bounded(cmd, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `args` (program first) for at most 10 s.
pub fn sh(args: &[&str]) -> Output {
    run_bounded(
        Command::new(args[0]).args(&args[1..]),
        Duration::from_secs(10),
    )
}

/// Two namespaces and a veth pair; everything is removed on drop, together
/// with every process started in them.
pub struct Lab {
    /// The namespaces, the veth pair and the scratch directory.
    pub net: VethPair,
    /// Processes to kill on drop.
    pub children: Vec<Child>,
    /// The `v6fw` binary under test (`env!("CARGO_BIN_EXE_v6fw")`).
    pub v6fw: &'static str,
}

impl Lab {
    /// Builds the namespaces (named after `prefix`) and the directory, to
    /// run the binary `v6fw` in.
    pub fn new(prefix: &str, v6fw: &'static str) -> Result<Lab, String> {
        Ok(Lab {
            net: VethPair::new(prefix, &format!("{prefix}-live"))?,
            children: Vec::new(),
            v6fw,
        })
    }

    /// `args` as a command to run in the namespace `ns`.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = netns::exec_in(ns);
        c.args(args);
        c
    }

    /// Starts the server script in `ns`; waits until it has bound its ports.
    pub fn server(&mut self, ns: &str, tcp: &str, udp: &str) {
        let ready = self.net.dir.join(format!("ready-{ns}"));
        let child = self
            .exec(
                ns,
                &["python3", "-c", SERVER, ready.to_str().unwrap(), tcp, udp],
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("start the server script");
        self.children.push(child);
        wait_for(
            Duration::from_secs(5),
            || ready.exists(),
            "the servers to bind",
        );
    }

    /// One client exchange from `ns`; `ok` or `fail:...`.
    pub fn client(&self, ns: &str, kind: &str, host: &str, port: u16, timeout: f64) -> String {
        let out = run_bounded(
            &mut self.exec(
                ns,
                &[
                    "python3",
                    "-c",
                    CLIENT,
                    kind,
                    host,
                    &port.to_string(),
                    &timeout.to_string(),
                ],
            ),
            Duration::from_secs_f64(timeout * 3.0 + 5.0),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `v6fw ARGS --socket S --state-dir D` in the FW namespace;
    /// returns stdout, failing the test on a non-zero exit.
    pub fn v6fw(&self, args: &[&str]) -> String {
        let (socket, state) = (
            self.net.dir.join("control.sock"),
            self.net.dir.join("state"),
        );
        let mut all: Vec<&str> = vec![self.v6fw];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--socket",
            socket.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        let out = run_bounded(&mut self.exec(&self.net.fw, &all), Duration::from_secs(10));
        assert!(
            out.status.success(),
            "`v6fw {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The FW namespace's ip6tables rules, as `ip6tables-save` prints them.
    pub fn ip6tables_save(&self) -> String {
        self.save(&["ip6tables-save"])
    }

    /// One table of the FW namespace's ip6tables rules (`ip6tables-save -t
    /// TABLE`).
    pub fn ip6tables_save_table(&self, table: &str) -> String {
        self.save(&["ip6tables-save", "-t", table])
    }

    fn save(&self, args: &[&str]) -> String {
        let out = run_bounded(&mut self.exec(&self.net.fw, args), Duration::from_secs(10));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A `v6fw run` started by [`Lab::start_run`].
pub struct Run {
    /// Its pid (ip netns exec execs it in place).
    pub pid: u32,
    /// Its stdout (the totals at exit).
    pub out: PathBuf,
    /// Its stderr (the log).
    pub err: PathBuf,
}

impl Run {
    /// What it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Lab {
    /// Starts `v6fw run ARGS --state-dir D --socket S` in FW (the paths of
    /// [`Lab::v6fw`]) and waits until it filters.
    pub fn start_run(&mut self, args: &[&str]) -> Run {
        let (socket, state) = (
            self.net.dir.join("control.sock"),
            self.net.dir.join("state"),
        );
        let run = Run {
            pid: 0,
            out: self.net.dir.join("run.out"),
            err: self.net.dir.join("run.err"),
        };
        let mut all: Vec<&str> = vec![self.v6fw, "run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--state-dir",
            state.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ]);
        let daemon = self
            .exec(&self.net.fw, &all)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&run.out).unwrap())
            .stderr(fs::File::create(&run.err).unwrap())
            .spawn()
            .expect("start v6fw run");
        let run = Run {
            pid: daemon.id(),
            ..run
        };
        self.children.push(daemon);
        wait_for(
            Duration::from_secs(10),
            || run.log().contains("filtering IPv6"),
            "v6fw run to start",
        );
        run
    }

    /// Stops `run` with SIGTERM and waits (at most 10 s) for its exit.
    pub fn stop_run(&mut self, run: &Run) -> ExitStatus {
        let child = self
            .children
            .iter_mut()
            .find(|c| c.id() == run.pid)
            .expect("a run of this lab");
        // SAFETY: `run.pid` is a child of this process that has not been
        // reaped (it is still in `children`, which only this thread reaps).
        let rc = unsafe { libc::kill(run.pid as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to v6fw run");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "v6fw run did not stop on SIGTERM:\n{}",
                run.log()
            );
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Then `net` removes the namespaces and the directory.
    }
}

/// Waits until `cond` holds, failing the test after `limit` (naming `what`).
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50));
    }
}

/// Why the live test cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("NFQUEUE is Linux only".into());
    }
    if !is_root() {
        return Some("not root (network namespaces and NFQUEUE need it)".into());
    }
    for (cmd, arg) in [
        ("ip", "-V"),
        ("ip6tables", "-V"),
        ("ip6tables-save", "-V"),
        ("python3", "-V"),
        ("ping", "-V"),
    ] {
        if !has(cmd, arg) {
            return Some(format!(
                "`{cmd}` is not installed (apt-get install iproute2 iptables iputils-ping python3)"
            ));
        }
    }
    None
}
