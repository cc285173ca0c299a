//! The CLI through a running daemon: who may change what (peer uid), the
//! socket file's lifetime (stale, in the way, removed at shutdown), which
//! state directory leads to which daemon, and a second server refused.
//!
//! On Windows the CLI goes through the named pipe; the tests of peer uids
//! and socket files are Unix-only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(any(unix, windows))]
#![cfg_attr(windows, allow(unused_imports, dead_code))]

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use v6fw_api::control::client::Client;
use v6fw_api::control::protocol::{PingResult, Request};
use v6fw_api::control::server::serve;
use v6fw_api::fw::{FirewallManager, E_FAIL};
use v6fw_engine::Protocol;

mod common;

use common::Daemon;
#[cfg(unix)]
use common::{root_or_skip, runnable_by_everyone};

impl Daemon {
    fn start() -> Daemon {
        Daemon::reachable("v6fw-cli-daemon-")
    }
}

#[cfg(unix)]
fn as_nobody(bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[cfg(unix)] // uid 65534 through setpriv
fn unprivileged_users_read_but_cannot_change() {
    if !root_or_skip("unprivileged_users_read_but_cannot_change") {
        return;
    }
    let d = Daemon::start();
    d.mgr.open_global_port(443, Protocol::Tcp, "https").unwrap();
    let bin = runnable_by_everyone(Path::new(env!("CARGO_BIN_EXE_v6fw")), d.dir.path(), "v6fw");
    let sock = d.socket.to_str().unwrap();
    let out = as_nobody(&bin, &["ports", "list", "--global", "--socket", sock]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("443/tcp"),
        "{out:?}"
    );
    let out = as_nobody(
        &bin,
        &[
            "ports",
            "list",
            "--connection",
            "test0",
            "--json",
            "--socket",
            sock,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"]["test0"][0]["port"], 443);

    let before = d.mgr.policy();
    let out = as_nobody(
        &bin,
        &["ports", "open", "8443/tcp", "--name", "x", "--socket", sock],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("E_ACCESSDENIED 0x80070005") && err.contains("sudo"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let out = as_nobody(
        &bin,
        &[
            "firewall",
            "disable",
            "--connection",
            "test0",
            "--socket",
            sock,
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("E_ACCESSDENIED"));
    assert_eq!(*d.mgr.policy(), *before, "nothing changed");

    // Without a daemon, editing the file directly is refused too.
    let state = d.dir.path().join("state");
    let out = as_nobody(
        &bin,
        &[
            "ports",
            "open",
            "8443/tcp",
            "--socket",
            "/nonexistent/s",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("E_ACCESSDENIED"),
        "{out:?}"
    );
    let on_disk = FirewallManager::open_read_only(&state).unwrap();
    assert!(!on_disk.is_global_port_open(8443, Protocol::Tcp).unwrap());
}

#[test]
fn the_cli_goes_through_the_daemon() {
    let d = Daemon::start();
    let bin = env!("CARGO_BIN_EXE_v6fw");
    let sock = d.socket.to_str().unwrap();
    let elsewhere = d.dir.path().join("unused-state");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .args(["--socket", sock, "--state-dir", elsewhere.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = run(&["ports", "open", "8080/tcp", "--name", "web"]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&[
        "ports",
        "open",
        "53/udp",
        "--name",
        "dns",
        "--connection",
        "test0",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(d.mgr.is_global_port_open(8080, Protocol::Tcp).unwrap());
    assert!(d
        .mgr
        .connection("test0")
        .unwrap()
        .is_port_open(53, Protocol::Udp)
        .unwrap());
    assert!(
        !elsewhere.exists(),
        "the daemon's policy was changed, not a file"
    );
    let out = run(&[
        "ports",
        "ignore-global",
        "8080/tcp",
        "--connection",
        "test0",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["connections", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["ignored"][0] == "8080/tcp"));
    let out = run(&["stats", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packets"], 0);
    let out = run(&["ports", "close", "0/tcp"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("E_INVALIDARG 0x80070057"));
    let out = run(&["firewall", "disable", "--connection", "test0"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!d.mgr.connection("test0").unwrap().is_firewalled().unwrap());
}

#[test]
#[cfg(unix)] // socket files: stale, in the way, their mode
fn shutdown_stale_and_live_sockets() {
    let mut d = Daemon::start();
    second_server_is_refused(&d, "already listening");
    d.stop();
    assert!(!d.socket.exists(), "the socket file is removed at shutdown");
    assert!(Client::connect(&d.socket).unwrap().is_none());
    // A stale socket file (nobody listening) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&d.socket).unwrap();
    drop(stale);
    assert!(d.socket.exists());
    let stop = Arc::new(AtomicBool::new(false));
    let h = serve(Arc::clone(&d.mgr), &d.socket, Arc::clone(&stop)).unwrap();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    let mut c = Client::connect(&d.socket).unwrap().unwrap();
    let _: PingResult = c.request(&Request::Ping).unwrap();
    stop.store(true, Ordering::Release);
    h.join().unwrap();
    // A regular file in the way is not touched.
    std::fs::write(&d.socket, "x").unwrap();
    let e = serve(
        Arc::clone(&d.mgr),
        &d.socket,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a socket"), "{e}");
    // With no daemon, reads fall back to the file; stats says no daemon runs.
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["stats", "--socket", d.socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no v6fw daemon is running"));
}

/// `v6fw ARGS` as a client, without --socket.
fn v6fw_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn state_dir_leads_to_its_own_daemon_only() {
    let d = Daemon::start();
    d.mgr
        .open_global_port(4242, Protocol::Tcp, "daemon")
        .unwrap();
    let state = d.dir.path().join("state");
    // Without the record, --state-dir reads the file, never a daemon.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("policy.toml"),
        "[globals]\n\"5151/udp\" = \"file\"\n",
    )
    .unwrap();
    v6fw_api::store::record_socket(&state, &d.socket).unwrap();
    let list = |dir: &Path| {
        let out = v6fw_cli(&[
            "ports",
            "list",
            "--global",
            "--state-dir",
            dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The daemon's state dir leads to it (its policy, live).
    d.mgr.open_global_port(4343, Protocol::Tcp, "live").unwrap();
    let mine = list(&state);
    assert!(
        mine.contains("4242/tcp") && mine.contains("4343/tcp"),
        "{mine}"
    );
    // Another state dir shows its own file.
    let theirs = list(other.path());
    assert!(
        theirs.contains("5151/udp") && !theirs.contains("4242"),
        "{theirs}"
    );
    // A record there pointing at this daemon (which serves another
    // directory) is not followed.
    v6fw_api::store::record_socket(other.path(), &d.socket).unwrap();
    let theirs = list(other.path());
    assert!(
        theirs.contains("5151/udp") && !theirs.contains("4242"),
        "{theirs}"
    );
    // Commands that need a daemon say which state dir had none.
    let empty = tempfile::tempdir().unwrap();
    let out = v6fw_cli(&["stats", "--state-dir", empty.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "no v6fw daemon has used the state directory {}",
            empty.path().display()
        )),
        "{err}"
    );
    // stats through the record reaches the daemon.
    let out = v6fw_cli(&["stats", "--json", "--state-dir", state.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[cfg(windows)]
fn a_second_server_on_a_live_pipe_is_refused() {
    let d = Daemon::start();
    if common::wine_skip("a second server on a live pipe (Wine ignores FIRST_PIPE_INSTANCE)") {
        return;
    }
    second_server_is_refused(&d, "exists already");
}

/// A second server on the live daemon's socket (pipe) is refused with `E_FAIL`
/// and a message that `says`.
fn second_server_is_refused(d: &Daemon, says: &str) {
    let e = serve(
        Arc::clone(&d.mgr),
        &d.socket,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err();
    assert_eq!(e.hresult(), E_FAIL);
    assert!(e.to_string().contains(says), "{e}");
}

/// `--socket PATH` alone names a daemon: with none there the command fails
/// and changes nothing, not the default state directory's policy. Run in a
/// mount namespace whose /etc is an empty tmpfs, so the host's
/// /etc/v6fw is never at risk and anything written there would show.
#[test]
#[cfg(target_os = "linux")]
fn a_named_socket_without_a_daemon_changes_nothing() {
    if !root_or_skip("a_named_socket_without_a_daemon_changes_nothing") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let script = format!(
        "mount -t tmpfs v6fw-test /etc || exit 99; {} ports open 9555/tcp --socket {} 2>{err}; \
         echo rc=$?; ls -A /etc",
        env!("CARGO_BIN_EXE_v6fw"),
        t.path().join("none.sock").display(),
        err = t.path().join("err").display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let err = std::fs::read_to_string(t.path().join("err")).unwrap();
    assert_eq!(
        stdout.trim(),
        "rc=1",
        "a failure, and nothing made in /etc: {stdout}\n{err}"
    );
    assert!(
        err.contains("no v6fw daemon answers at") && err.contains("nothing was sent or changed"),
        "{err}"
    );
}

/// Only a client that may change the policy may send the long request
/// lines of a `load`: an unprivileged user's line past 64 KiB is refused
/// (so every such client costs the daemon at most that much), root's is read.
#[test]
#[cfg(unix)]
fn long_request_lines_are_for_admins_only() {
    if !root_or_skip("long_request_lines_are_for_admins_only") {
        return;
    }
    let d = Daemon::start();
    // A ping padded with spaces to 100 KiB: valid JSON, one line.
    let send = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
line = b'{"op":"ping"' + b' ' * (100 * 1024) + b'}\n'
try:
    s.sendall(line)
except OSError:
    pass
print(s.makefile('rb').readline().decode().strip())
"#;
    let reply = |who: &[&str]| {
        let out = Command::new("setpriv")
            .args(who)
            .args(["/usr/bin/python3", "-c", send])
            .arg(&d.socket)
            .output()
            .unwrap();
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        v
    };
    let nobody = reply(&["--reuid=65534", "--regid=65534", "--clear-groups"]);
    assert_eq!(nobody["ok"], false, "{nobody}");
    assert!(
        nobody["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 65536 bytes"),
        "{nobody}"
    );
    let root = reply(&["--reuid=0"]);
    assert_eq!(root["ok"], true, "{root}");
}
