//! Issue 29, end to end in two namespaces: session adoption cannot be used
//! to fill the flow table.
//!
//! `v6fw run` adopts the namespace's ESTABLISHED sockets as confirmed flows.
//! Before, it adopted all of them, including a local user's connections from
//! the host's own address to itself (over `lo`, never seen by v6fw): 300 of
//! them filled a 256-slot table, and the host's own next outbound
//! connection got no flow, its replies dropped. Here, with `[state]
//! flow_slots = 256`, uid 65534 holds 300 self-connections (600 sockets)
//! and 100 connections to PEER before the start; the daemon skips the 600,
//! adopts 64 (a quarter of the table) and skips the other 36, says so in its
//! log, and the host's new connection to PEER gets its reply
//! (`established`).
//!
//! Skips (passes with a note) without root or the tools; CI sets
//! `V6FW_REQUIRE_LIVE=1` to make that a failure.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

mod common;

use common::lab::{self, unavailable, Lab, FW_ADDR, PEER_ADDR};

/// `listen HOST PORT`: accepts and keeps every connection; `connect HOST
/// PORT N`: makes N connections and keeps them. Prints `ready` when done,
/// then holds everything until stdin closes (at most 60 s).
const HOLD: &str = r#"
import select, socket, sys, threading, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
held = []
if mode == "listen":
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(512)
    def accept():
        while True:
            held.append(s.accept()[0])
    threading.Thread(target=accept, daemon=True).start()
else:
    for _ in range(int(sys.argv[4])):
        held.append(socket.create_connection((host, port), timeout=5))
print("ready", flush=True)
select.select([sys.stdin], [], [], 60)
"#;

fn skip(why: &str) {
    lab::skip("live_adopt", why);
}

/// Starts [`HOLD`] with `args` in `ns` as uid 65534 and waits for `ready`.
fn hold(lab: &mut Lab, ns: &str, args: &[&str]) {
    let mut all = vec![
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        // The system's (root's PATH may lead to a per-user install).
        "/usr/bin/python3",
        "-c",
        HOLD,
    ];
    all.extend_from_slice(args);
    let mut child = lab
        .exec(ns, &all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the holder");
    let mut line = String::new();
    let out = child.stdout.take().unwrap();
    // A holder that fails ends its stdout: read_line returns.
    BufReader::new(out).read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "the holder {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    lab.children.push(child);
}

#[test]
fn adoption_skips_the_hosts_own_sessions_and_is_capped() {
    if let Some(why) = unavailable() {
        return skip(&why);
    }
    if !lab::has("setpriv", "--version") || !lab::has("/usr/bin/python3", "-V") {
        return skip("`setpriv` (util-linux) or /usr/bin/python3 is not installed");
    }
    let mut lab = match Lab::new("v6fa", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return skip(&format!("cannot build the namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return skip("the kernel has no ip6tables NFQUEUE target (xt_NFQUEUE / nft_compat)");
    }
    let state = lab.net.dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("policy.toml"), "[state]\nflow_slots = 256\n").unwrap();
    let (fw, peer) = (lab.net.fw.clone(), lab.net.peer.clone());
    lab.server(&peer, "8080", "");

    // 300 self-connections by uid 65534 (two sockets each), and 100 of its
    // connections to PEER.
    hold(&mut lab, &fw, &["listen", FW_ADDR, "7000"]);
    hold(&mut lab, &fw, &["connect", FW_ADDR, "7000", "300"]);
    hold(&mut lab, &peer, &["listen", "::", "7100"]);
    hold(&mut lab, &fw, &["connect", PEER_ADDR, "7100", "100"]);

    let run = lab.start_run(&[]);
    let log = run.log();
    assert!(
        log.contains("adopted 64 open sessions as flows (64 TCP, 0 UDP)")
            && log.contains("skipped 600 between the host's own addresses")
            && log.contains("36 over the cap of 64 (a quarter of the flow table)"),
        "{log}"
    );
    // The host's own new connection: its reply gets in.
    assert_eq!(
        lab.client(&fw, "tcp", PEER_ADDR, 8080, 3.0),
        "ok",
        "the host's outbound connection\n{}",
        run.log()
    );
    let stats: serde_json::Value = serde_json::from_str(&lab.v6fw(&["stats", "--json"])).unwrap();
    let established = stats["reasons"]["established"].as_u64().unwrap_or(0);
    assert!(established >= 1, "its reply was established: {stats}");
    let status = lab.stop_run(&run);
    assert!(status.success(), "{status:?}\n{}", run.log());
}
