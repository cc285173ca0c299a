//! Issue 29, the lock files: `policy.lock` was created 0644, so any user
//! could open it, `flock` it and keep `v6fw run` from starting (and root's
//! offline changes from being made) for as long as they held it. It is now
//! created 0600, a wider one left by an older v6fw is narrowed, and a
//! symbolic link in its place is refused, never followed. The daemon's
//! per-namespace lock goes through the same code (`v6fw_api::lock_file`;
//! its own tests are in api/src/cmd/run/instance.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::root_or_skip;

/// `v6fw ports open PAIR` on the policy file of `state` (no daemon).
fn open_offline(state: &Path, pair: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["ports", "open", pair, "--socket", "/nonexistent/v6fw.sock"])
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

/// `flock -n FILE true` as uid 65534 (no groups): whether it got the lock,
/// and what it said.
fn nobody_flocks(file: &Path) -> (bool, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["flock", "--nonblock", "--shared"])
        .arg(file)
        .arg("true")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// A state directory everyone may enter (so that only the lock file's own
/// mode keeps uid 65534 out), root's and 0755.
fn state_dir(tmp: &Path) -> std::path::PathBuf {
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = tmp.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    state
}

#[test]
fn nobody_cannot_open_the_policy_lock() {
    if !root_or_skip("nobody_cannot_open_the_policy_lock") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = state_dir(tmp.path());
    let out = open_offline(&state, "22/tcp");
    assert!(out.status.success(), "{out:?}");
    let lock = state.join("policy.lock");
    assert_eq!(mode(&lock), 0o600, "created for root alone");
    let (locked, said) = nobody_flocks(&lock);
    assert!(!locked, "uid 65534 took the lock");
    assert!(said.contains("Permission denied"), "{said}");

    // A lock file an older v6fw left 0644: narrowed on the next change, and
    // from then on nobody cannot open it either.
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (locked, _) = nobody_flocks(&lock);
    assert!(locked, "the fixture: a 0644 lock is open to everyone");
    let out = open_offline(&state, "53/udp");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&lock), 0o600, "narrowed");
    let (locked, said) = nobody_flocks(&lock);
    assert!(!locked && said.contains("Permission denied"), "{said}");
}

#[test]
fn a_symlinked_policy_lock_is_refused() {
    if !root_or_skip("a_symlinked_policy_lock_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = state_dir(tmp.path());
    let target = tmp.path().join("elsewhere");
    std::os::unix::fs::symlink(&target, state.join("policy.lock")).unwrap();
    let out = open_offline(&state, "22/tcp");
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy.lock") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(!target.exists(), "the link was followed");
    assert!(!state.join("policy.toml").exists(), "nothing was written");
}
