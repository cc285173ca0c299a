//! End to end: `v6fw run` filters a veth pair between two network namespaces
//! with real sockets on both sides.
//!
//! Namespace FW (fd00::1) runs `v6fw run --open 8080/tcp,5353/udp` with its
//! own `--state-dir` and `--socket` in a temporary directory, and servers on
//! 8080/9090 (TCP) and 5353/5354 (UDP echo); namespace PEER (fd00::2) runs a
//! TCP server on 7070 and a UDP echo on 7071. Traffic never leaves the two
//! namespaces. Through the control socket the test switches the firewall
//! log on (`v6fw log set`), opens and closes 9090/tcp (`v6fw ports`) while
//! the daemon runs, and reads `v6fw stats`. The test skips (passes with a note) when not
//! root or when `ip`, `ip6tables`, `python3` or the NFQUEUE target is
//! missing; set `V6FW_REQUIRE_LIVE=1` (as CI does) to make those a failure.
//!
//! Not on Windows: NFQUEUE, ip6tables and network namespaces are Linux's; `v6fw run` on Windows
//! is driven end to end by dist/wine/e2e.py.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

mod common;

use common::lab::{
    self, has, is_root, run_bounded, sh, unavailable, wait_for, Lab, FW_ADDR, PEER_ADDR,
};

fn skip(why: &str) {
    lab::skip("live_nfqueue", why);
}

fn reason(summary: &serde_json::Value, name: &str) -> u64 {
    summary["reasons"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no reason {name} in {summary}"))
}

#[test]
fn live_nfqueue_filters_a_veth_pair() {
    if let Some(why) = unavailable() {
        return skip(&why);
    }
    let started = Instant::now();
    let mut lab = match Lab::new("v6fw", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return skip(&format!("cannot build the namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return skip("the kernel has no ip6tables NFQUEUE target (xt_NFQUEUE / nft_compat)");
    }
    let (fw, peer) = (lab.net.fw.clone(), lab.net.peer.clone());
    lab.server(&fw, "8080,9090", "5353,5354");
    lab.server(&peer, "7070", "7071");

    let out_path = lab.net.dir.join("run.out");
    let err_path = lab.net.dir.join("run.err");
    let state_dir = lab.net.dir.join("state");
    let socket = lab.net.dir.join("control.sock");
    let log_path = lab.net.dir.join("pfirewall.log");
    let daemon = lab
        .exec(
            &fw,
            &[
                env!("CARGO_BIN_EXE_v6fw"),
                "run",
                "--open",
                "8080/tcp,5353/udp",
                "--json",
                "--stats-interval",
                "1",
                "--state-dir",
                state_dir.to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start v6fw run");
    let pid = daemon.id();
    lab.children.push(daemon);
    let log = || fs::read_to_string(&err_path).unwrap_or_default();
    wait_for(
        Duration::from_secs(10),
        || log().contains("filtering IPv6"),
        "v6fw run to start",
    );
    // The firewall log, switched on through the running daemon.
    lab.v6fw(&[
        "log",
        "set",
        "--dropped",
        "on",
        "--path",
        log_path.to_str().unwrap(),
    ]);
    let shown = lab.v6fw(&["log", "show", "--json"]);
    assert!(shown.contains(r#""dropped":true"#), "{shown}");
    // In mangle, so that an NF_ACCEPT goes on to filter; filter untouched.
    let rules = lab.ip6tables_save_table("mangle");
    assert!(!lab.ip6tables_save_table("filter").contains("V6FW"));
    assert!(rules.contains("-A INPUT -j V6FW-IN"), "{rules}");
    assert!(rules.contains("-A OUTPUT -j V6FW-OUT"), "{rules}");
    assert!(
        rules.contains("-A V6FW-IN -j NFQUEUE --queue-num 0"),
        "{rules}"
    );

    // Neighbour discovery must work through the firewall: forget what the
    // namespaces learnt before it started.
    for ns in [&fw, &peer] {
        let _ = sh(&["ip", "-n", ns, "neigh", "flush", "all"]);
    }
    let ping = run_bounded(
        &mut lab.exec(&peer, &["ping", "-6", "-c", "1", "-W", "2", FW_ADDR]),
        Duration::from_secs(5),
    );
    assert!(
        ping.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&ping.stdout)
    );

    assert_eq!(
        lab.client(&peer, "tcp", FW_ADDR, 8080, 3.0),
        "ok",
        "TCP to an open port"
    );
    assert_eq!(
        lab.client(&peer, "udp", FW_ADDR, 5353, 2.0),
        "ok",
        "UDP to an open port"
    );
    assert!(
        lab.client(&peer, "tcp", FW_ADDR, 9090, 1.2)
            .starts_with("fail"),
        "TCP to a closed port"
    );
    assert!(
        lab.client(&peer, "udp", FW_ADDR, 5354, 1.0)
            .starts_with("fail"),
        "UDP to a closed port"
    );
    // Replies to connections opened from the filtered side are let in,
    // although 7070/7071 are closed.
    assert_eq!(
        lab.client(&fw, "tcp", PEER_ADDR, 7070, 3.0),
        "ok",
        "established TCP"
    );
    assert_eq!(
        lab.client(&fw, "udp", PEER_ADDR, 7071, 2.0),
        "ok",
        "established UDP"
    );

    // `v6fw ports` against the running daemon changes the very next packet.
    lab.v6fw(&["ports", "open", "9090/tcp", "--global"]);
    assert_eq!(
        lab.client(&peer, "tcp", FW_ADDR, 9090, 3.0),
        "ok",
        "TCP to 9090 once opened through the control socket"
    );
    lab.v6fw(&["ports", "close", "9090/tcp", "--global"]);
    assert!(
        lab.client(&peer, "tcp", FW_ADDR, 9090, 1.2)
            .starts_with("fail"),
        "TCP to 9090 once closed again"
    );
    let policy = fs::read_to_string(state_dir.join("policy.toml")).unwrap();
    assert!(policy.contains("8080"), "--open is persisted:\n{policy}");
    let stats: serde_json::Value = serde_json::from_str(&lab.v6fw(&["stats", "--json"])).unwrap();
    assert!(
        stats["global_ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["port"] == 8080)),
        "{stats}"
    );
    assert!(
        stats["connections"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{stats}"
    );

    // SAFETY: `pid` is the v6fw process this test started (ip netns exec
    // execs it in place) and has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    let daemon = lab.children.last_mut().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "v6fw run did not stop on SIGTERM:\n{}",
            log()
        );
        sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "v6fw run exited with {status}:\n{}",
        log()
    );
    let rules = lab.ip6tables_save();
    assert!(!rules.contains("V6FW"), "rules left behind:\n{rules}");
    // And the traffic the firewall blocked now passes.
    assert_eq!(
        lab.client(&peer, "tcp", FW_ADDR, 9090, 3.0),
        "ok",
        "9090 after stop"
    );

    let text = fs::read_to_string(&out_path).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}\n{}", log()));
    let n = |name| reason(&summary, name);
    eprintln!("v6fw run totals: {summary}");
    // At least one SYN to 9090 and exactly one datagram to 5354 were closed.
    assert!(n("port_closed") >= 2, "{summary}");
    // SYN, ACKs, FIN to 8080 and the datagram to 5353.
    assert!(n("global_port") >= 3, "{summary}");
    // SYN-ACK and data from 7070, the UDP reply from 7071.
    assert!(n("established") >= 2, "{summary}");
    // The echo request and the neighbour solicitation/advertisement.
    assert!(n("icmp_allowed") >= 2, "{summary}");
    assert!(n("outbound") >= 5, "{summary}");
    assert_eq!(
        summary["dropped"].as_u64(),
        Some(n("port_closed")),
        "only closed ports dropped: {summary}"
    );
    assert_eq!(n("open_port"), 0, "--open opens global pairs: {summary}");
    assert!(
        log().contains("stats: packets="),
        "no periodic stats:\n{}",
        log()
    );
    // Every SYN to the closed 9090 is a DROP line in the log.
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let drops: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains(" DROP TCP fd00::2 fd00::1 ")
                && l.contains(" 9090 ")
                && l.ends_with(" port_closed RECEIVE")
        })
        .collect();
    assert!(
        drops.len() >= 2,
        "no DROP lines for 9090 in the log:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" DROP UDP ") && l.contains(" 5354 ")),
        "{text}"
    );
    assert!(text.starts_with("#Version: 1.5\n"), "{text}");
    assert_eq!(summary["log"]["lost"].as_u64(), Some(0), "{summary}");
    assert_eq!(
        summary["log"]["written"].as_u64(),
        Some(text.lines().filter(|l| !l.starts_with('#')).count() as u64),
        "{summary}"
    );
    eprintln!(
        "live_nfqueue: passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The binary, somewhere an unprivileged user can execute it.
fn binary_for_nobody(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    common::runnable_by_everyone(Path::new(env!("CARGO_BIN_EXE_v6fw")), dir, "v6fw")
}

#[test]
fn live_refuses_to_start_without_root() {
    const MESSAGE: &str = "v6fw run needs root (CAP_NET_ADMIN) to divert packets: run it with sudo";
    let out = if is_root() {
        if !has("setpriv", "--version") {
            return skip("`setpriv` is not installed (util-linux)");
        }
        let dir = std::env::temp_dir().join(format!("v6fw-nobody-{}", std::process::id()));
        let bin = binary_for_nobody(&dir);
        let out = sh(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin.to_str().unwrap(),
            "run",
            "--open",
            "8080/tcp",
        ]);
        let _ = fs::remove_dir_all(&dir);
        out
    } else {
        sh(&[env!("CARGO_BIN_EXE_v6fw"), "run"])
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !is_root() && !stderr.contains(MESSAGE) && out.status.success() {
        return skip("this unprivileged user has CAP_NET_ADMIN");
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(MESSAGE), "{stderr}");
}

/// A stop whose rule removal fails says so: `v6fw run` finds `ip6tables`
/// through a `PATH` directory holding only a link to it; the link is
/// removed before SIGTERM, so every removal fails to start ip6tables (as
/// with EMFILE, EAGAIN or ENOMEM). The daemon reports it with the commands
/// to run by hand and exits 1, and the rules are still there (it did not
/// take the failure for "no such chain").
#[test]
fn live_a_failed_rule_removal_is_reported_and_not_silent() {
    if let Some(why) = unavailable() {
        return skip(&why);
    }
    let mut lab = match Lab::new("v6fwrmf", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return skip(&format!("cannot build the namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return skip("the kernel has no ip6tables NFQUEUE target (xt_NFQUEUE / nft_compat)");
    }
    let which = sh(&["sh", "-c", "command -v ip6tables"]);
    let real = String::from_utf8_lossy(&which.stdout).trim().to_string();
    let real = std::fs::canonicalize(&real).unwrap();
    let bin = lab.net.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("ip6tables");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err_path = lab.net.dir.join("rmf.err");
    let (state, socket) = (lab.net.dir.join("state"), lab.net.dir.join("c.sock"));
    let child = lab
        .exec(
            &lab.net.fw,
            &[
                "env",
                &format!("PATH={}", bin.display()),
                env!("CARGO_BIN_EXE_v6fw"),
                "run",
                "--stats-interval",
                "0",
                "--state-dir",
                state.to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    lab.children.push(child);
    let log = || std::fs::read_to_string(&err_path).unwrap_or_default();
    wait_for(
        Duration::from_secs(10),
        || log().contains("filtering IPv6"),
        "v6fw run to start",
    );
    assert!(lab.ip6tables_save().contains("V6FW-IN"), "{}", log());
    std::fs::remove_file(&link).unwrap();
    // SAFETY: `pid` is a child of this test that has not been reaped (it is
    // in `lab.children`).
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let c = lab.children.iter_mut().find(|c| c.id() == pid).unwrap();
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit on SIGTERM:\n{}", log());
        sleep(Duration::from_millis(50));
    };
    let log = log();
    eprintln!("v6fw run's log:\n{log}");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("cannot remove v6fw's ip6tables rules"),
        "{log}"
    );
    assert!(log.contains("cannot run ip6tables"), "{log}");
    assert_eq!(log.matches("remove the rules by hand").count(), 1, "{log}");
    assert!(log.contains("ip6tables -t mangle -X V6FW-IN"), "{log}");
    let rules = lab.ip6tables_save();
    assert!(
        rules.contains("V6FW-IN"),
        "the rules are still there:\n{rules}"
    );
    // The namespace goes with the lab, and its rules with it.
}
