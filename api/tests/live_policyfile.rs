//! Live: the admin's policy file is the admin's (issue 36) and is trusted
//! only when it is safe to (issue 29). A daemon runs in namespace FW (`v6fw
//! run --no-rules`: what is checked here is the file and the policy the
//! daemon publishes, asked through its control socket):
//!
//! - a hand edit is neither reverted by the interface refresh (a dummy
//!   veth pair added in FW) nor by anything else, and applies on SIGHUP;
//! - a change keeps the file's comments, order and spellings;
//! - a change after a hand edit that was not reloaded is refused, so the
//!   pair removed by hand never comes back;
//! - ranges are written as ranges (`1:65535/udp` keeps the file under 4 KiB)
//!   and `v6fw load` takes the daemon's own file, and a file over 64 KiB;
//! - a `policy.toml` that is a symbolic link to a file of `nobody`, mode
//!   0666, is refused at start and on reload (the daemon keeps its policy).
//!
//! Skips (passes with a note) when not root or tools are missing, unless
//! `V6FW_REQUIRE_LIVE=1`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::lab::{self, run_bounded, unavailable, wait_for, Lab};

fn skip(test: &str, why: &str) {
    lab::skip(test, why);
}

/// A lab with its state directory, or why there is none.
fn lab(test: &str, prefix: &str) -> Option<(Lab, PathBuf)> {
    if let Some(why) = unavailable() {
        skip(test, &why);
        return None;
    }
    match Lab::new(prefix, env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => {
            let state = lab.net.dir.join("state");
            fs::create_dir_all(&state).unwrap();
            Some((lab, state))
        }
        Err(why) => {
            skip(test, &format!("cannot build the namespaces: {why}"));
            None
        }
    }
}

/// `v6fw ARGS` in FW with the lab's socket and state dir; (success, stdout, stderr).
fn v6fw_status(lab: &Lab, args: &[&str]) -> (bool, String, String) {
    let socket = lab.net.dir.join("control.sock");
    let state = lab.net.dir.join("state");
    let mut all: Vec<&str> = vec![env!("CARGO_BIN_EXE_v6fw")];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--socket", socket.to_str().unwrap()]);
    all.extend_from_slice(&["--state-dir", state.to_str().unwrap()]);
    let out = run_bounded(&mut lab.exec(&lab.net.fw, &all), Duration::from_secs(20));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The global pairs the daemon decides by now, as `PORT/PROTO` texts.
/// The listing goes to a file: it may be more than a pipe holds.
fn globals(lab: &Lab) -> Vec<String> {
    let list = lab.net.dir.join("globals.json");
    let cmd = format!(
        "exec {} ports list --global --json --socket {} >{}",
        env!("CARGO_BIN_EXE_v6fw"),
        lab.net.dir.join("control.sock").display(),
        list.display()
    );
    let out = run_bounded(
        &mut lab.exec(&lab.net.fw, &["sh", "-c", &cmd]),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "`v6fw ports list`: {out:?}");
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&list).unwrap()).unwrap();
    v["global"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap()))
        .collect()
}

fn sighup(pid: u32) {
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) }, 0);
}

const FIRST: &str = "# The admin's policy.\n\
state = true\n\
\n\
[globals]\n\
# remote shell\n\
\"ssh\" = \"ssh\"   # by its name\n\
\"8080/tcp\" = \"web\"\n\
\"053/udp\" = \"dns\"\n";

#[test]
fn the_admins_edits_stay_and_changes_keep_the_file() {
    let test = "live_policyfile";
    let Some((mut lab, state)) = lab(test, "v6pf") else {
        return;
    };
    let path = state.join("policy.toml");
    fs::write(&path, FIRST).unwrap();
    let run = lab.start_run(&["--no-rules"]);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        FIRST,
        "a start writes nothing"
    );
    assert!(globals(&lab).contains(&"8080/tcp".to_string()));

    // 1. Hand edit (8080 removed), then an interface appears (a veth pair made in
    //    FW): the refresh
    //    adopts it in memory and never writes the file.
    let edited = FIRST.replace("\"8080/tcp\" = \"web\"\n", "");
    fs::write(&path, &edited).unwrap();
    let ip = run_bounded(
        &mut lab.exec(
            &lab.net.fw,
            &[
                "ip", "link", "add", "v6pfnew0", "type", "veth", "peer", "name", "v6pfnew1",
            ],
        ),
        Duration::from_secs(10),
    );
    assert!(ip.status.success(), "{ip:?}");
    wait_for(
        Duration::from_secs(15),
        || lab.v6fw(&["connections"]).contains("v6pfnew0"),
        "the daemon to adopt the new interface",
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        edited,
        "the interface refresh left the hand edit alone"
    );
    assert!(
        globals(&lab).contains(&"8080/tcp".to_string()),
        "not applied before SIGHUP"
    );
    sighup(run.pid);
    wait_for(
        Duration::from_secs(10),
        || !globals(&lab).contains(&"8080/tcp".to_string()),
        "SIGHUP to apply the hand edit (8080 closed)",
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        edited,
        "a reload writes nothing"
    );

    // 2. A change through the daemon keeps comments, order and spellings.
    lab.v6fw(&["ports", "open", "9000/tcp", "--name", "api"]);
    let after = fs::read_to_string(&path).unwrap();
    assert!(
        after.starts_with(&edited),
        "the file as it was, then the change:\n{after}"
    );
    assert!(after.contains("\"9000/tcp\" = \"api\""), "{after}");
    assert!(
        !after.contains("8080") && !after.contains("v6pfnew0"),
        "{after}"
    );

    // 3. A hand edit not yet reloaded (ssh removed), then a change: refused,
    //    and the file keeps the edit.
    let no_ssh = after.replace("\"ssh\" = \"ssh\"   # by its name\n", "");
    fs::write(&path, &no_ssh).unwrap();
    let (ok, _, err) = v6fw_status(&lab, &["ports", "open", "9001/tcp"]);
    assert!(!ok, "a change over an unapplied edit is refused");
    assert!(
        err.contains("changed on disk") && err.contains("v6fw reload"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        no_ssh,
        "the edit is not undone"
    );
    assert!(
        !globals(&lab).contains(&"9001/tcp".to_string()),
        "nothing changed"
    );
    lab.v6fw(&["reload"]);
    assert!(!globals(&lab).contains(&"22/tcp".to_string()));
    lab.v6fw(&["ports", "open", "9001/tcp"]);
    let now = fs::read_to_string(&path).unwrap();
    assert!(
        !now.contains("ssh") && !now.contains("22/tcp"),
        "22/tcp never comes back:\n{now}"
    );
    assert!(
        now.contains("9001/tcp") && now.contains("# The admin's policy."),
        "{now}"
    );

    // 4. Ranges stay ranges; closing inside one splits it.
    lab.v6fw(&["ports", "open", "6000:6007/tcp", "--name", "x11"]);
    lab.v6fw(&["ports", "open", "1:65535/udp", "--name", "all"]);
    let ranged = fs::read_to_string(&path).unwrap();
    assert!(ranged.len() < 4096, "{} bytes:\n{ranged}", ranged.len());
    assert!(ranged.contains("\"6000:6007/tcp\" = \"x11\""), "{ranged}");
    // 53/udp was open already and keeps its first name (and its spelling).
    assert!(
        ranged.contains("\"1:52/udp\" = \"all\"\n\"54:65535/udp\" = \"all\"")
            && ranged.contains("\"053/udp\" = \"dns\""),
        "{ranged}"
    );
    lab.v6fw(&["ports", "close", "6003/tcp"]);
    let split = fs::read_to_string(&path).unwrap();
    assert!(
        split.contains("\"6000:6002/tcp\" = \"x11\"")
            && split.contains("\"6004:6007/tcp\" = \"x11\""),
        "{split}"
    );

    // 5. `load` takes the daemon's own file (any policy it writes), and a
    //    legitimate file well over the 64 KiB of an ordinary request.
    let own = lab.v6fw(&["load", path.to_str().unwrap()]);
    assert!(own.contains("loaded"), "{own}");
    let big = lab.net.dir.join("big.toml");
    let mut text = String::from("# every other TCP port below 40000\n[globals]\n");
    for port in (2..40_000).step_by(2) {
        text.push_str(&format!("\"{port}/tcp\" = \"p\"\n"));
    }
    assert!(text.len() > 256 * 1024, "{} bytes", text.len());
    fs::write(&big, &text).unwrap();
    let loaded = lab.v6fw(&["load", big.to_str().unwrap()]);
    assert!(loaded.contains("the policy was replaced"), "{loaded}");
    assert_eq!(globals(&lab).len(), 19_999);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "the loaded file, as it was given"
    );

    let status = lab.stop_run(&run);
    assert!(status.success(), "{status:?}\n{}", run.log());
}

/// Makes `path` a symbolic link to a file of `nobody`, mode 0666, holding
/// `text` (what issue 29 found loaded without a word).
fn plant_link(path: &Path, text: &str) -> PathBuf {
    let target = path.with_file_name("nobodys.toml");
    fs::write(&target, text).unwrap();
    std::os::unix::fs::chown(&target, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o666)).unwrap();
    let _ = fs::remove_file(path);
    std::os::unix::fs::symlink(&target, path).unwrap();
    target
}

#[test]
fn an_untrusted_policy_file_is_refused_at_start_and_on_reload() {
    let test = "live_policyfile (untrusted file)";
    let Some((mut lab, state)) = lab(test, "v6pt") else {
        return;
    };
    let path = state.join("policy.toml");
    let hostile = "[globals]\n\"1:65535/tcp\" = \"everything\"\n";
    let target = plant_link(&path, hostile);

    // At start: refused, with what to do.
    let socket = lab.net.dir.join("control.sock");
    let out = run_bounded(
        &mut lab.exec(
            &lab.net.fw,
            &[
                env!("CARGO_BIN_EXE_v6fw"),
                "run",
                "--no-rules",
                "--state-dir",
                state.to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    // Not a link, but nobody's and writable by everyone: refused too.
    fs::remove_file(&path).unwrap();
    fs::rename(&target, &path).unwrap();
    let (ok, _, err) = v6fw_status(&lab, &["ports", "list"]);
    assert!(!ok && err.contains("owned by uid 65534"), "{err}");
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    let (ok, _, err) = v6fw_status(&lab, &["ports", "list"]);
    assert!(!ok && err.contains("mode 0666"), "{err}");

    // A good file: the daemon starts; then the link on SIGHUP and on
    // `v6fw reload` is refused, and the policy it had stays.
    fs::remove_file(&path).unwrap();
    fs::write(&path, "[globals]\n\"22/tcp\" = \"ssh\"\n").unwrap();
    let run = lab.start_run(&["--no-rules"]);
    assert_eq!(globals(&lab), ["22/tcp"]);
    plant_link(&path, hostile);
    sighup(run.pid);
    wait_for(
        Duration::from_secs(10),
        || run.log().contains("SIGHUP: the running policy stays"),
        "the refused reload to be logged",
    );
    assert!(run.log().contains("is a symbolic link"), "{}", run.log());
    let (ok, _, err) = v6fw_status(&lab, &["reload"]);
    assert!(!ok && err.contains("is a symbolic link"), "{err}");
    assert_eq!(globals(&lab), ["22/tcp"], "the old policy stays");
    let status = lab.stop_run(&run);
    assert!(status.success(), "{status:?}\n{}", run.log());
}
