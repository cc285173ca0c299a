//! End to end: `v6fw run` beside the admin's own firewall. v6fw's chains are
//! in the `mangle` table and its accepts are `NF_ACCEPT`, which go on to the
//! next netfilter hook, so a ufw-style rule set in `filter` (INPUT policy
//! DROP, its own chains) and a firewalld-style nftables table (a base chain
//! at `filter + 10`) still decide every packet v6fw accepts, and v6fw still
//! drops what its policy closes before they see it.
//!
//! In namespace FW (fd00::1), with TCP servers on 2222, 7070, 8080 and 9090:
//! - `filter` (ufw-style, `ip6tables-restore`): INPUT DROP; lo, RELATED/
//!   ESTABLISHED and ICMPv6 accepted; 2222, 7070 and 8080 allowed;
//! - `inet v6fwtest` (firewalld-style, `nft`): drops TCP to 7070;
//! - `v6fw run --open 7070/tcp,8080/tcp,9090/tcp` (2222 closed).
//!
//! From PEER: 8080 (open everywhere) connects; 9090 (open in v6fw, not in
//! "ufw") and 7070 (open in v6fw and "ufw", dropped by "firewalld") do not;
//! 2222 (allowed by "ufw", closed in v6fw) does not. v6fw never touches
//! `filter` nor the nftables table, and after its stop both are as before.
//!
//! Skips like live_nfqueue.rs (fails instead with `V6FW_REQUIRE_LIVE=1`);
//! also needs `nft` (nftables).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

mod common;

use common::lab::{self, has, run_bounded, unavailable, Lab, FW_ADDR};

/// A ufw-style rule set for `ip6tables-restore` (the shape of ufw's
/// before/user/after chains, cut to what the test needs).
const UFW_STYLE: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw6-before-input - [0:0]
:ufw6-user-input - [0:0]
-A INPUT -j ufw6-before-input
-A INPUT -j ufw6-user-input
-A ufw6-before-input -i lo -j ACCEPT
-A ufw6-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw6-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw6-before-input -p ipv6-icmp -j ACCEPT
-A ufw6-user-input -p tcp -m tcp --dport 2222 -j ACCEPT
-A ufw6-user-input -p tcp -m tcp --dport 7070 -j ACCEPT
-A ufw6-user-input -p tcp -m tcp --dport 8080 -j ACCEPT
COMMIT
";

/// A firewalld-style nftables table: its own base chain on input, at
/// firewalld's priority (`filter + 10`).
const FIREWALLD_STYLE: &str = "table inet v6fwtest {
    chain filter_INPUT {
        type filter hook input priority filter + 10; policy accept;
        tcp dport 7070 drop
    }
}
";

fn restore(lab: &Lab, cmd: &[&str], input: &str) {
    let mut child = lab
        .exec(&lab.net.fw, cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `filter` table's chains and rules, without counters or the dump's
/// timestamp.
fn filter_rules(lab: &Lab) -> Vec<String> {
    lab.ip6tables_save_table("filter")
        .lines()
        .filter(|l| l.starts_with("-A") || l.starts_with(':'))
        .map(|l| l.split(" [").next().unwrap_or(l).to_string())
        .collect()
}

fn nft_table(lab: &Lab) -> String {
    let out = run_bounded(
        &mut lab.exec(&lab.net.fw, &["nft", "list", "table", "inet", "v6fwtest"]),
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn live_coexist_with_ufw_and_firewalld_style_rules() {
    if let Some(why) = unavailable() {
        return lab::skip("live_coexist", &why);
    }
    if !has("nft", "--version") {
        return lab::skip(
            "live_coexist",
            "`nft` is not installed (apt-get install nftables)",
        );
    }
    let mut lab = match Lab::new("v6fwcox", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return lab::skip("live_coexist", &format!("no namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return lab::skip("live_coexist", "the kernel has no ip6tables NFQUEUE target");
    }
    let (fw, peer) = (lab.net.fw.clone(), lab.net.peer.clone());
    lab.server(&fw, "2222,7070,8080,9090", "");
    restore(&lab, &["ip6tables-restore"], UFW_STYLE);
    restore(&lab, &["nft", "-f", "-"], FIREWALLD_STYLE);
    let filter_before = filter_rules(&lab);
    let nft_before = nft_table(&lab);
    // The admin's rules work on their own: 8080 and 7070's neighbour 2222.
    assert_eq!(lab.client(&peer, "tcp", FW_ADDR, 8080, 3.0), "ok");
    assert_eq!(lab.client(&peer, "tcp", FW_ADDR, 2222, 3.0), "ok");

    let run = lab.start_run(&["--open", "7070/tcp,8080/tcp,9090/tcp", "--json"]);
    let rules = lab.ip6tables_save_table("mangle");
    assert!(rules.contains("-A INPUT -j V6FW-IN"), "{rules}");
    let connect = |port| lab.client(&peer, "tcp", FW_ADDR, port, 1.5);
    assert_eq!(connect(8080), "ok", "open in v6fw and the admin's rules");
    let blocked = [
        (
            9090,
            "open in v6fw, not in the ufw-style INPUT: its DROP policy",
        ),
        (
            7070,
            "open in v6fw and ufw-style, dropped by the firewalld-style table",
        ),
        (2222, "allowed by the ufw-style rules, closed in v6fw"),
    ];
    for (port, why) in blocked {
        assert!(
            connect(port).starts_with("fail"),
            "{port}: {why}\n{}",
            run.log()
        );
    }
    assert_eq!(filter_rules(&lab), filter_before, "v6fw touched filter");
    assert_eq!(
        nft_table(&lab),
        nft_before,
        "v6fw touched the nftables table"
    );

    assert!(lab.stop_run(&run).success(), "{}", run.log());
    let totals: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run.out).unwrap()).unwrap();
    eprintln!("v6fw run totals: {totals}");
    // v6fw accepted 9090 and 7070 (the admin's rules dropped them after it)
    // and dropped 2222 itself.
    assert!(
        totals["reasons"]["port_closed"].as_u64() >= Some(1),
        "{totals}"
    );
    assert!(
        totals["reasons"]["global_port"].as_u64() >= Some(3),
        "{totals}"
    );
    assert!(!lab.ip6tables_save().contains("V6FW"), "rules left behind");
    assert_eq!(filter_rules(&lab), filter_before);
    assert_eq!(nft_table(&lab), nft_before);
    assert_eq!(lab.client(&peer, "tcp", FW_ADDR, 8080, 3.0), "ok");
}
