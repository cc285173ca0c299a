//! `v6fw log set|show` and the `log_settings`/`set_log` requests: on the
//! policy file (no daemon), through a running daemon, and the checks.
//!
//! On Windows the daemon is a named pipe and "root" is an elevated
//! Administrator; the check that refuses a log directory any user can write
//! (`/tmp`) is Unix's (it reads POSIX modes), the rest is the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(any(unix, windows))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use v6fw_api::control::protocol::{dispatch, Request};
use v6fw_api::control::server::serve;
use v6fw_api::fw::{FirewallManager, E_ACCESSDENIED, E_INVALIDARG};
use v6fw_api::log::LogSettings;
use v6fw_engine::Policy;

/// Root on Unix, an elevated Administrator on Windows: who may change the
/// policy file without a daemon.
fn is_root() -> bool {
    v6fw_api::control::client::is_admin()
}

/// The control socket of the test directory `dir` (Windows: a named pipe
/// named after it).
fn socket(dir: &Path) -> PathBuf {
    #[cfg(unix)]
    return dir.join("control.sock");
    #[cfg(windows)]
    return PathBuf::from(format!(
        r"\\.\pipe\v6fw-log-cli-{}",
        dir.file_name().unwrap().to_string_lossy()
    ));
}

/// An absolute log path that is not the test's own: where `/a.log` is.
fn absolute(name: &str) -> String {
    #[cfg(unix)]
    return format!("/{name}");
    #[cfg(windows)]
    return format!(r"C:\{name}");
}

fn v6fw(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .current_dir(dir)
        .args(args)
        .args(["--socket", socket(dir).to_str().unwrap()])
        .args(["--state-dir", dir.join("state").to_str().unwrap()])
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn show(dir: &Path) -> Value {
    serde_json::from_str(&ok(&v6fw(dir, &["log", "show", "--json"]))).unwrap()
}

#[test]
fn log_settings_on_the_policy_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = show(dir);
    assert_eq!(s["dropped"], false);
    assert_eq!(s["connections"], false);
    assert_eq!(s["path"], Value::Null);
    assert_eq!(s["max_size"], LogSettings::DEFAULT_MAX_SIZE);
    let default = dir.join("state").join("pfirewall.log");
    assert_eq!(s["file"], default.to_str().unwrap());
    if !is_root() {
        let err = failed(&v6fw(dir, &["log", "set", "--dropped", "on"]));
        assert!(
            err.contains("E_ACCESSDENIED") || err.contains("root"),
            "{err}"
        );
        return;
    }
    let out = ok(&v6fw(
        dir,
        &[
            "log",
            "set",
            "--dropped",
            "on",
            "--max-size",
            "4KiB",
            "--path",
            "fw.log",
        ],
    ));
    assert!(out.contains("policy file updated"), "{out}");
    let s = show(dir);
    assert_eq!(s["dropped"], true);
    assert_eq!(s["max_size"], 4096);
    // A relative path is made absolute where the command runs.
    assert_eq!(s["path"], dir.join("fw.log").to_str().unwrap());
    let policy = std::fs::read_to_string(dir.join("state").join("policy.toml")).unwrap();
    assert!(
        policy.contains("[logging]") && policy.contains("max_size = 4096"),
        "{policy}"
    );

    let out = ok(&v6fw(dir, &["log", "set", "--dropped", "on"]));
    assert!(out.contains("nothing changed"), "{out}");
    let out = ok(&v6fw(
        dir,
        &["log", "set", "--default-path", "--max-size", "4MiB"],
    ));
    assert!(out.contains(default.to_str().unwrap()), "{out}");
    assert_eq!(show(dir)["max_size"], 4 << 20);

    let err = failed(&v6fw(dir, &["log", "set", "--max-size", "100"]));
    assert!(err.contains("1KiB"), "{err}");
    let err = failed(&v6fw(dir, &["log", "set", "--max-size", "4 parsecs"]));
    assert!(err.contains("not a size"), "{err}");
    let err = failed(&v6fw(dir, &["log", "set"]));
    assert!(err.contains("nothing to set"), "{err}");
    let err = failed(&v6fw(dir, &["log", "set", "--dropped", "maybe"]));
    assert!(err.contains("on") && err.contains("off"), "{err}");
}

#[test]
fn log_settings_through_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mgr = FirewallManager::open(&dir.join("state")).unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let handle = serve(Arc::clone(&mgr), &socket(dir), Arc::clone(&shutdown)).unwrap();
    if is_root() {
        let out = ok(&v6fw(dir, &["log", "set", "--connections", "on"]));
        assert!(out.contains("log settings changed\n"), "{out}");
        assert!(mgr.log_settings().connections);
        assert_eq!(show(dir)["connections"], true);
    }
    shutdown.store(true, Ordering::Release);
    handle.join().unwrap();
}

#[test]
fn set_log_requests_are_checked() {
    let mgr = FirewallManager::in_memory(Policy::default());
    let set = |req: &str, admin: bool| {
        let req: Request = serde_json::from_str(req).unwrap();
        dispatch(&mgr, req, v6fw_api::control::Caller::root_if(admin))
    };
    let set_json = |req: Value| set(&req.to_string(), true);
    let code = |r: Result<Value, v6fw_api::fw::FwError>| r.unwrap_err().hresult();
    assert_eq!(
        code(set(r#"{"op":"set_log","dropped":true}"#, false)),
        E_ACCESSDENIED
    );
    assert!(
        set(r#"{"op":"log_settings"}"#, false).is_ok(),
        "reading is for everyone"
    );
    assert_eq!(
        code(set(r#"{"op":"set_log","max_size":1023}"#, true)),
        E_INVALIDARG
    );
    assert_eq!(
        code(set(r#"{"op":"set_log","path":"rel.log"}"#, true)),
        E_INVALIDARG
    );
    assert_eq!(
        code(set_json(serde_json::json!({
            "op": "set_log", "path": absolute("a.log"), "default_path": true
        }))),
        E_INVALIDARG
    );
    assert!(serde_json::from_str::<Request>(r#"{"op":"set_log","max_size":-1}"#).is_err());
    // /tmp is writable by everyone: anyone could plant a link there.
    #[cfg(unix)]
    assert_eq!(
        code(set(r#"{"op":"set_log","path":"/tmp/a.log"}"#, true)),
        E_INVALIDARG
    );
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.log");
    let a = a.to_str().unwrap();
    let r = set_json(serde_json::json!({
        "op": "set_log", "dropped": true, "path": a, "max_size": 1024
    }))
    .unwrap();
    assert_eq!(r["changed"], true);
    let r = set(r#"{"op":"log_settings"}"#, false).unwrap();
    assert_eq!(r["path"], a);
    assert_eq!(r["file"], a);
    assert_eq!(r["max_size"], 1024);
    assert_eq!(
        set(r#"{"op":"set_log","dropped":true}"#, true).unwrap()["changed"],
        false
    );
}
