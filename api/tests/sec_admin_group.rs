//! Issue 29, `--admin-group`: a member may change the policy, but is not
//! root. Before, `log set --path` took any existing file in a root-only
//! directory (the daemon then appended to it, chmodded it 0640 and rotated
//! it over `.old`), and membership came from the peer's egid and
//! /etc/group. Now a member may only log to a file in the log directory that
//! is new or one v6fw wrote, and membership is the groups the peer's
//! process holds (`SO_PEERGROUPS`).
//!
//! A test group (`v6fwTAGPID`, listing uid 65534's user as a member) is made
//! with `groupadd` and removed with `groupdel` when the test ends, however
//! it ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use v6fw_api::control::server::{serve_with, ServeOptions};

mod common;

use common::{root_or_skip, runnable_by_everyone, Daemon};

/// A group made for this test, removed on drop.
struct TestGroup {
    name: String,
    gid: u32,
}

impl TestGroup {
    /// `v6fwTAGPID` (`tag`: one letter per test, as the tests run at
    /// once), with uid 65534's user listed as a member in /etc/group.
    fn new(tag: char) -> TestGroup {
        let name = format!("v6fw{tag}{}", std::process::id() % 1_000_000);
        let nobody = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(65_534))
            .unwrap()
            .expect("a user with uid 65534")
            .name;
        let _ = Command::new("groupdel").arg(&name).output();
        let out = Command::new("groupadd")
            .args(["--users", &nobody, &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "groupadd: {out:?}");
        let gid = nix::unistd::Group::from_name(&name)
            .unwrap()
            .expect("the group just made")
            .gid
            .as_raw();
        TestGroup { name, gid }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// The fixture daemon, and a second server on `admin.sock` whose admin
/// group is `group`; stopped on drop.
struct Served {
    d: Daemon,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    bin: PathBuf,
}

impl Served {
    fn new(group: &str) -> Served {
        let d = Daemon::reachable("v6fw-sec-admin-");
        let socket = d.dir.path().join("admin.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let handle = serve_with(
            Arc::clone(&d.mgr),
            &socket,
            Arc::clone(&stop),
            ServeOptions {
                admin_group: Some(group.to_string()),
                ..ServeOptions::default()
            },
        )
        .unwrap();
        let bin = runnable_by_everyone(Path::new(env!("CARGO_BIN_EXE_v6fw")), d.dir.path(), "v6fw");
        Served {
            d,
            socket,
            stop,
            handle: Some(handle),
            bin,
        }
    }

    /// `v6fw ARGS --socket admin.sock` as uid 65534 with the setpriv group
    /// argument `groups`.
    fn as_nobody(&self, groups: &str, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", groups])
            .arg(&self.bin)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap()
    }

    /// The log directory: the fixture's state directory.
    fn log_dir(&self) -> PathBuf {
        self.d.dir.path().join("state")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{out:?}");
}

fn denied(out: &Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("E_ACCESSDENIED"), "{err}");
    err
}

#[test]
fn membership_is_the_groups_the_process_holds() {
    if !root_or_skip("membership_is_the_groups_the_process_holds") {
        return;
    }
    let g = TestGroup::new('m');
    let s = Served::new(&g.name);
    // Holds the group as a supplementary group, its egid another: admitted.
    let groups = format!("--groups={}", g.gid);
    ok(&s.as_nobody(&groups, &["ports", "open", "7001/udp"]));
    // Listed in /etc/group, but its process does not hold the group: refused.
    denied(&s.as_nobody("--clear-groups", &["ports", "open", "7002/udp"]));
    // The group as its egid: admitted.
    let regid = format!("--regid={}", g.gid);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", &regid, "--clear-groups"])
        .arg(&s.bin)
        .args(["ports", "open", "7003/udp", "--socket"])
        .arg(&s.socket)
        .output()
        .unwrap();
    ok(&out);
    let p = s.d.mgr.policy();
    let open: Vec<String> = p.globals.keys().map(ToString::to_string).collect();
    assert_eq!(open, ["7001/udp", "7003/udp"], "{open:?}");
}

#[test]
fn an_admin_group_member_cannot_point_the_log_at_roots_files() {
    if !root_or_skip("an_admin_group_member_cannot_point_the_log_at_roots_files") {
        return;
    }
    let g = TestGroup::new('l');
    let s = Served::new(&g.name);
    let member = format!("--groups={}", g.gid);
    let log_dir = s.log_dir();
    let secret_text = "root's own file\n";
    let secret = |p: &Path| {
        std::fs::write(p, secret_text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    let untouched = |p: &Path| {
        assert_eq!(std::fs::read_to_string(p).unwrap(), secret_text, "{p:?}");
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{p:?}");
        assert!(!p.with_extension("old").exists());
    };
    let set = |path: &Path| {
        s.as_nobody(
            &member,
            &[
                "log",
                "set",
                "--dropped",
                "on",
                "--path",
                path.to_str().unwrap(),
            ],
        )
    };

    // A root-only file outside the log directory.
    let outside = s.d.dir.path().join("private");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
    let shadow = outside.join("shadow");
    secret(&shadow);
    let err = denied(&set(&shadow));
    assert!(err.contains("is not in the log directory"), "{err}");
    untouched(&shadow);

    // A file of root's in the log directory that v6fw did not write.
    let notes = log_dir.join("notes.txt");
    secret(&notes);
    let err = denied(&set(&notes));
    assert!(err.contains("is not a log v6fw wrote"), "{err}");
    untouched(&notes);

    // A link there to root's file: never followed (refused for everyone).
    let link = log_dir.join("link.log");
    std::os::unix::fs::symlink(&shadow, &link).unwrap();
    let out = set(&link);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("symbolic link"), "{err}");
    untouched(&shadow);

    // A new name whose rotation would replace root's file (`x.log.old`).
    let fresh = log_dir.join("x.log");
    secret(&log_dir.join("x.log.old"));
    let err = denied(&set(&fresh));
    assert!(
        err.contains("x.log.old") && err.contains("not a log v6fw wrote"),
        "{err}"
    );

    // Through `load` too: a policy whose [logging] names root's file.
    let policy = s.d.dir.path().join("p.toml");
    std::fs::write(
        &policy,
        format!("[logging]\npath = {:?}\n", notes.to_str().unwrap()),
    )
    .unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = denied(&s.as_nobody(&member, &["load", policy.to_str().unwrap()]));
    assert!(err.contains("is not a log v6fw wrote"), "{err}");
    untouched(&notes);
    assert_eq!(s.d.mgr.log_settings().path, None, "nothing was set");

    // What a member may do: a new file in the log directory, or a log v6fw
    // wrote there.
    let new = log_dir.join("new.log");
    ok(&set(&new));
    assert_eq!(s.d.mgr.log_settings().path.as_deref(), new.to_str(), "set");
    let ours = log_dir.join("ours.log");
    std::fs::write(&ours, v6fw_api::log::header()).unwrap();
    ok(&set(&ours));
    // Root may still choose any file (the old rules).
    let out = Command::new(&s.bin)
        .args(["log", "set", "--path", fresh.to_str().unwrap(), "--socket"])
        .arg(&s.socket)
        .output()
        .unwrap();
    ok(&out);
}
