//! The live tests' lab: two network namespaces joined by a veth pair
//! ([`VethPair`]: FW fd00::1, PEER fd00::2), Python servers and clients in
//! them, `v6fw` commands run in FW, and every process started in them
//! killed on drop. Used by live_nfqueue.rs and live_safety.rs.

use std::fs;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use v6fw_capture::netns::{self, require_live, VethPair};

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

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

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
}

impl Lab {
    /// Builds the namespaces (named after `prefix`) and the directory.
    pub fn new(prefix: &str) -> Result<Lab, String> {
        Ok(Lab {
            net: VethPair::new(prefix, &format!("{prefix}-live"))?,
            children: Vec::new(),
        })
    }

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
        let mut all: Vec<&str> = vec![env!("CARGO_BIN_EXE_v6fw")];
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

    pub fn ip6tables_save(&self) -> String {
        let out = run_bounded(
            &mut self.exec(&self.net.fw, &["ip6tables-save"]),
            Duration::from_secs(10),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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
