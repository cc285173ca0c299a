//! Live: `v6fw load` on a running daemon (issue 15). Namespace FW (fd00::1)
//! runs `v6fw run` with TCP servers on 8080 and 9090; PEER (fd00::2)
//! connects. The test loads policy A (8080/tcp for fd00::/8 only, by range
//! and scope), then B (9090/tcp by name-free range; 8080/tcp only for
//! 2001:db8::/32, so PEER is `out_of_scope`), then A again, and checks what
//! PEER can reach after each load, that the daemon's policy file holds what
//! runs, and that a bad file is refused whole while the daemon runs on.
//! Then `v6fw reload` re-reads the daemon's own file. Traffic never leaves
//! the two namespaces. Skips (passes with a note) when not root or tools
//! are missing, unless `V6FW_REQUIRE_LIVE=1`.
//!
//! Not on Windows: NFQUEUE, ip6tables and network namespaces are Linux's; `v6fw
//! load` through the named pipe is in api_control.rs and e2e.py.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::process::Stdio;
use std::time::Duration;

mod common;

use common::lab::{self, run_bounded, unavailable, wait_for, Lab, FW_ADDR};

fn skip(why: &str) {
    lab::skip("live_load", why);
}

const A: &str = r#"[globals]
"8080:8080/tcp" = { name = "web", from = ["fd00::/8"] }
"#;

const B: &str = r#"[globals]
"9090/tcp" = "alt"
"8080/tcp" = { name = "web", from = ["2001:db8::/32"] }
"#;

const BAD: &str = r#"[globals]
"9090/tcp" = "alt"
"8080/tcp" = { name = "web", from = ["fd00::/129"] }
"#;

/// `v6fw ARGS` in FW with the lab's socket and state dir; (success, stdout, stderr).
fn v6fw_status(lab: &Lab, args: &[&str]) -> (bool, String, String) {
    let socket = lab.net.dir.join("control.sock");
    let state = lab.net.dir.join("state");
    let mut all: Vec<&str> = vec![env!("CARGO_BIN_EXE_v6fw")];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--socket", socket.to_str().unwrap()]);
    all.extend_from_slice(&["--state-dir", state.to_str().unwrap()]);
    let out = run_bounded(&mut lab.exec(&lab.net.fw, &all), Duration::from_secs(10));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Stops the daemon with SIGTERM (so it takes its rules away) and removes
/// the one-per-namespace lock file a killed daemon would leave in
/// /run/v6fw, even when the test fails.
struct StopDaemon {
    pid: u32,
    fw: String,
}

impl Drop for StopDaemon {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: kill has no memory preconditions; the pid is our child's.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(m) = fs::metadata(std::path::Path::new("/run/netns").join(&self.fw)) {
            let _ = fs::remove_file(format!("/run/v6fw/netns-{}.lock", m.ino()));
        }
    }
}

/// What PEER gets from FW's ports 8080 and 9090.
fn reach(lab: &Lab) -> (String, String) {
    let peer = lab.net.peer.clone();
    (
        lab.client(&peer, "tcp", FW_ADDR, 8080, 1.0),
        lab.client(&peer, "tcp", FW_ADDR, 9090, 1.0),
    )
}

#[test]
fn load_switches_a_running_daemon_between_two_policies() {
    if let Some(why) = unavailable() {
        return skip(&why);
    }
    let mut lab = match Lab::new("v6ld", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return skip(&format!("cannot build the namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return skip("the kernel has no ip6tables NFQUEUE target (xt_NFQUEUE / nft_compat)");
    }
    let fw = lab.net.fw.clone();
    lab.server(&fw, "8080,9090", "");
    let err_path = lab.net.dir.join("run.err");
    let state_dir = lab.net.dir.join("state");
    let socket = lab.net.dir.join("control.sock");
    let daemon = lab
        .exec(
            &fw,
            &[
                env!("CARGO_BIN_EXE_v6fw"),
                "run",
                "--state-dir",
                state_dir.to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start v6fw run");
    let _stop = StopDaemon {
        pid: daemon.id(),
        fw: fw.clone(),
    };
    lab.children.push(daemon);
    let log = || fs::read_to_string(&err_path).unwrap_or_default();
    wait_for(
        Duration::from_secs(10),
        || log().contains("filtering IPv6"),
        "v6fw run to start",
    );
    let (a, b, bad) = (
        lab.net.dir.join("a.toml"),
        lab.net.dir.join("b.toml"),
        lab.net.dir.join("bad.toml"),
    );
    fs::write(&a, A).unwrap();
    fs::write(&b, B).unwrap();
    fs::write(&bad, BAD).unwrap();
    let ok = "ok".to_string();

    for round in 0..2 {
        let out = lab.v6fw(&["load", a.to_str().unwrap()]);
        assert!(out.contains("the policy was replaced"), "{out}");
        assert!(!out.contains("no daemon"), "through the daemon: {out}");
        let (p8080, p9090) = reach(&lab);
        assert_eq!(p8080, ok, "round {round}: A opens 8080 for fd00::/8");
        assert_ne!(p9090, ok, "round {round}: A keeps 9090 closed");

        lab.v6fw(&["load", b.to_str().unwrap()]);
        let (p8080, p9090) = reach(&lab);
        assert_ne!(p8080, ok, "round {round}: B scopes 8080 to 2001:db8::/32");
        assert_eq!(p9090, ok, "round {round}: B opens 9090");
        let stored = fs::read_to_string(state_dir.join("policy.toml")).unwrap();
        assert!(
            stored.contains("9090/tcp") && stored.contains("2001:db8::/32"),
            "{stored}"
        );
    }
    let stats: serde_json::Value = serde_json::from_str(&lab.v6fw(&["stats", "--json"])).unwrap();
    let out_of_scope = stats["reasons"]["out_of_scope"]
        .as_u64()
        .unwrap_or_else(|| panic!("no out_of_scope in {stats}"));
    assert!(out_of_scope >= 1, "{stats}");

    // A bad file is refused whole; B still runs.
    let (success, _, err) = v6fw_status(&lab, &["load", bad.to_str().unwrap()]);
    assert!(!success);
    assert!(
        err.contains("\"fd00::/129\" is not an IPv6 prefix"),
        "{err}"
    );
    assert_eq!(reach(&lab).1, ok, "B still runs");

    // `v6fw reload`: the daemon re-reads its own file.
    fs::write(state_dir.join("policy.toml"), A).unwrap();
    let out = lab.v6fw(&["reload"]);
    assert!(out.contains("reloaded its policy file"), "{out}");
    let (p8080, p9090) = reach(&lab);
    assert_eq!(p8080, ok, "reloaded A opens 8080");
    assert_ne!(p9090, ok, "reloaded A closes 9090");
}
