//! Issue 13, the log file: planted symbolic links, directories others can
//! write or own, a link swapped in before a rotation, and a `..` path onto
//! the policy file all fail safely with a clear error, and nothing is
//! written where it should not be. New log files are mode 0640.
//!
//! Not on Windows: it plants symbolic links and POSIX modes, a Unix user's attacks;
//! the log file's Windows ACL is checked in windows_acl.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(unix)]

use std::net::Ipv6Addr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use v6fw_api::log::{LogConfig, LogRecord, LogWriter, LOG_FILE_MODE};

mod common;

use common::{is_root, root_or_skip};
use v6fw_engine::{Direction, Reason, Verdict};

fn record() -> LogRecord {
    LogRecord {
        time_ns: 1_767_225_600_000_000_000,
        verdict: Verdict::Drop,
        reason: Reason::PortClosed,
        proto: Some(6),
        src: Some("2001:db8:2::20".parse::<Ipv6Addr>().unwrap().octets()),
        dst: Some("fd00::10".parse::<Ipv6Addr>().unwrap().octets()),
        sport: Some(40_000),
        dport: Some(9090),
        size: 60,
        tcp: None,
        icmp: None,
        direction: Direction::Inbound,
    }
}

fn config(path: &Path, max_size: u64) -> LogConfig {
    LogConfig {
        path: path.to_path_buf(),
        max_size,
        utc_offset_s: 0,
    }
}

/// A root-only file standing for `/etc/shadow`, with known content.
fn victim(dir: &Path) -> (PathBuf, &'static str) {
    let target = dir.join("victim");
    let content = "root-only secret\n";
    std::fs::write(&target, content).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    (target, content)
}

/// A fresh directory with `mode`.
fn dir_with_mode(parent: &Path, name: &str, mode: u32) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
    d
}

fn v6fw(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(args)
        .args(["--socket", dir.join("control.sock").to_str().unwrap()])
        .args(["--state-dir", dir.join("state").to_str().unwrap()])
        .output()
        .unwrap()
}

fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "must be refused: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_link_planted_in_a_world_writable_directory_is_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (target, content) = victim(tmp.path());
    for mode in [0o777, 0o1777, 0o775] {
        let open = dir_with_mode(tmp.path(), &format!("open{mode:o}"), mode);
        let log = open.join("pfirewall.log");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        let err = LogWriter::spawn(config(&log, 1 << 20), 16)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("the log directory is writable by"), "{err}");
        assert!(err.contains(&open.display().to_string()), "{err}");
        assert!(err.contains("chmod go-w"), "{err}");
        // A file that is not there yet is refused just the same.
        let fresh = open.join("new.log");
        assert!(LogWriter::spawn(config(&fresh, 1 << 20), 16).is_err());
        assert!(!fresh.exists(), "nothing created in {}", open.display());
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), content);
}

#[test]
fn a_link_as_the_log_file_is_refused_even_in_a_safe_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (target, content) = victim(tmp.path());
    let safe = dir_with_mode(tmp.path(), "safe", 0o755);
    let log = safe.join("pfirewall.log");
    std::os::unix::fs::symlink(&target, &log).unwrap();
    let err = LogWriter::spawn(config(&log, 1 << 20), 16)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert!(err.contains("remove the link"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), content);
}

#[test]
fn a_link_swapped_in_before_a_rotation_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (target, content) = victim(tmp.path());
    let safe = dir_with_mode(tmp.path(), "safe", 0o755);
    let log = safe.join("pfirewall.log");
    let (tx, writer) = LogWriter::spawn(config(&log, 1024), 16).unwrap();
    tx.send_blocking(record());
    // Wait (bounded) until the first line is on disk.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&log).unwrap().lines().count() < 5 {
        assert!(Instant::now() < deadline, "the first line never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Someone replaces the file with a link (and the .old name too) while
    // the writer holds it open; the next rotation must not follow either.
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&target, &log).unwrap();
    let old = safe.join("pfirewall.log.old");
    std::os::unix::fs::symlink(&target, &old).unwrap();
    // About 10 lines fit under the cap: 12 more make exactly one rotation.
    for _ in 0..12 {
        tx.send_blocking(record());
    }
    drop(tx);
    let stats = writer.finish().unwrap();
    assert_eq!(stats.rotations, 1, "{stats:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), content);
    // The rotation renamed the link itself (never what it points to) and
    // started a real file in its place.
    assert!(std::fs::symlink_metadata(&old).unwrap().is_symlink());
    let now = std::fs::symlink_metadata(&log).unwrap();
    assert!(now.is_file(), "{now:?}");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .starts_with("#Version: 1.5"));
}

#[test]
fn new_log_files_are_0640_and_wider_ones_are_narrowed() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("pfirewall.log");
    let (tx, writer) = LogWriter::spawn(config(&log, 1 << 20), 16).unwrap();
    drop(tx);
    writer.finish().unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!(meta.mode() & 0o777 & !LOG_FILE_MODE, 0, "{:o}", meta.mode());
    if is_root() {
        assert_eq!(meta.uid(), 0);
    }
    let wide = tmp.path().join("wide.log");
    std::fs::write(&wide, "").unwrap();
    std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (tx, writer) = LogWriter::spawn(config(&wide, 1 << 20), 16).unwrap();
    drop(tx);
    writer.finish().unwrap();
    assert_eq!(std::fs::metadata(&wide).unwrap().mode() & 0o777, 0o640);
}

#[test]
fn a_directory_someone_else_owns_is_refused() {
    if !root_or_skip("a_directory_someone_else_owns_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let theirs = dir_with_mode(tmp.path(), "nobody", 0o755);
    std::os::unix::fs::chown(&theirs, Some(65_534), Some(65_534)).unwrap();
    let log = theirs.join("pfirewall.log");
    let err = LogWriter::spawn(config(&log, 1 << 20), 16)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("owned by uid 65534, not root"), "{err}");
    assert!(!log.exists());
}

#[test]
fn log_set_refuses_each_planted_attack_with_a_clear_error() {
    if !root_or_skip("log_set_refuses_each_planted_attack_with_a_clear_error") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (target, content) = victim(dir);
    let open = dir_with_mode(dir, "open", 0o1777);
    std::os::unix::fs::symlink(&target, open.join("pfirewall.log")).unwrap();
    let safe = dir_with_mode(dir, "safe", 0o755);
    std::os::unix::fs::symlink(&target, safe.join("link.log")).unwrap();
    let dotdot = format!("{}/../state/policy.toml", safe.display());
    let via_link = dir.join("state-link");
    std::os::unix::fs::symlink(dir.join("state"), &via_link).unwrap();
    let via_link = format!("{}/policy.lock", via_link.display());
    let attacks: [(String, &str); 4] = [
        (
            format!("{}/pfirewall.log", open.display()),
            "writable by everyone",
        ),
        (
            format!("{}/link.log", safe.display()),
            "symbolic link, which v6fw never follows",
        ),
        (dotdot, "v6fw's own file"),
        (via_link, "v6fw's own file"),
    ];
    let before = std::fs::read(dir.join("state/policy.toml")).ok();
    for (path, says) in &attacks {
        let err = refused(&v6fw(
            dir,
            &["log", "set", "--dropped", "on", "--path", path],
        ));
        assert!(err.contains(says), "{path}: {err}");
        assert!(err.contains("E_INVALIDARG"), "{path}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), content);
    if let Some(before) = before {
        assert_eq!(
            std::fs::read(dir.join("state/policy.toml")).unwrap(),
            before
        );
    }
}

#[test]
fn a_running_daemon_refuses_the_planted_link_too() {
    if !root_or_skip("a_running_daemon_refuses_the_planted_link_too") {
        return;
    }
    let d = common::Daemon::start_with(
        &common::DaemonOptions {
            prefix: "v6fw-sec-log-",
            dir_mode: Some(0o755),
            socket: "control.sock",
            strict_stop: true,
        },
        |_| {},
    );
    let (target, content) = victim(d.dir.path());
    let open = dir_with_mode(d.dir.path(), "open", 0o1777);
    let log = open.join("pfirewall.log");
    std::os::unix::fs::symlink(&target, &log).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["log", "set", "--dropped", "on", "--path"])
        .arg(&log)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    let err = refused(&out);
    assert!(err.contains("writable by everyone"), "{err}");
    assert!(!d.mgr.log_settings().dropped, "nothing changed");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), content);
}

#[test]
fn a_hand_edited_log_path_into_a_world_writable_directory_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let open = dir_with_mode(tmp.path(), "open", 0o777);
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let policy = format!(
        "[logging]\ndropped = true\npath = \"{}/pfirewall.log\"\n",
        open.display()
    );
    std::fs::write(state.join("policy.toml"), &policy).unwrap();
    let err = v6fw_api::fw::FirewallManager::open(&state)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad [logging] value"), "{err}");
    assert!(err.contains("writable by everyone"), "{err}");
    assert_eq!(
        std::fs::read_to_string(state.join("policy.toml")).unwrap(),
        policy
    );
}

#[test]
fn an_unprivileged_reader_loads_a_policy_logging_into_a_private_directory() {
    if !root_or_skip("an_unprivileged_reader_loads_a_policy_logging_into_a_private_directory") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = dir_with_mode(tmp.path(), "private", 0o700);
    let state = tmp.path().join("state");
    let mgr = v6fw_api::fw::FirewallManager::open(&state).unwrap();
    let log = private.join("pfirewall.log");
    mgr.set_log_settings(&v6fw_api::fw::LogChange {
        dropped: Some(true),
        path: Some(Some(log.to_str().unwrap().to_string())),
        ..Default::default()
    })
    .unwrap();
    drop(mgr);
    let bin =
        common::runnable_by_everyone(Path::new(env!("CARGO_BIN_EXE_v6fw")), tmp.path(), "v6fw");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["log", "show", "--json", "--socket", "/nonexistent/s"])
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pfirewall.log"));
}

#[test]
fn a_directory_opened_up_after_the_start_is_refused_at_the_next_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = dir_with_mode(tmp.path(), "logs", 0o755);
    let log = dir.join("pfirewall.log");
    let (tx, writer) = LogWriter::spawn(config(&log, 1024), 16).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for _ in 0..20 {
        tx.send_blocking(record());
    }
    drop(tx);
    let err = writer.finish().unwrap_err().to_string();
    assert!(err.contains("writable by everyone (mode 0777)"), "{err}");
    // The rotated file is there; no new one was made in the open directory.
    assert!(dir.join("pfirewall.log.old").exists());
    assert!(!log.exists());
}
