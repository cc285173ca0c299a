//! End to end: `v6fw run --offload established` lets the kernel accept the
//! later packets of the flows conntrack tracks, and still decides new ones.
//!
//! Namespace FW (fd00::1) runs `v6fw run --open 5353/udp,8080/tcp --offload
//! established` and servers on 8080/9090 (TCP) and 5353 (UDP echo);
//! namespace PEER (fd00::2) sends 50 datagrams on one socket to the echo
//! (one flow: the first datagram is v6fw's to decide, the rest and the
//! replies are the kernel's), and a new TCP connection to the closed 9090
//! (dropped by v6fw). The rules, `v6fw stats --json`, the totals at exit and
//! the rules' removal on SIGTERM are checked, and that a killed daemon's
//! offload rules are removed by the next start. Skips like live_nfqueue.rs
//! (fails instead with `V6FW_REQUIRE_LIVE=1`).
//!
//! Not on Windows: conntrack offload is an ip6tables rule: there is no kernel
//! offload with WinDivert.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::time::Duration;

mod common;

use common::lab::{self, run_bounded, unavailable, Lab, FW_ADDR};

/// Datagrams the peer sends on its one UDP flow.
const EXCHANGES: u64 = 50;

/// Sends N datagrams on one socket to HOST:PORT, each waiting for its echo;
/// prints how many came back.
const UDP_FLOW: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2.0)
back = 0
for i in range(n):
    s.sendto(b"v6fw%d" % i, (host, port))
    try:
        s.recvfrom(64)
        back += 1
    except OSError:
        pass
print(back)
"#;

#[test]
fn live_offload_accepts_established_flows_in_the_kernel() {
    if let Some(why) = unavailable() {
        return lab::skip("live_offload", &why);
    }
    let mut lab = match Lab::new("v6fwoff", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return lab::skip("live_offload", &format!("no namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return lab::skip("live_offload", "the kernel has no ip6tables NFQUEUE target");
    }
    let (fw, peer) = (lab.net.fw.clone(), lab.net.peer.clone());
    lab.server(&fw, "8080,9090", "5353");

    let run = lab.start_run(&[
        "--open",
        "5353/udp,8080/tcp",
        "--offload",
        "established",
        "--json",
        "--stats-interval",
        "1",
    ]);
    let log = || run.log();
    let rules = lab.ip6tables_save();
    for chain in ["V6FW-IN", "V6FW-OUT"] {
        let offload = format!(
            "-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \
             v6fw-offload -j RETURN\n-A {chain} -j NFQUEUE --queue-num 0"
        );
        assert!(rules.contains(&offload), "{rules}");
    }

    // One UDP flow: its first datagram is v6fw's, the rest the kernel's.
    let out = run_bounded(
        &mut lab.exec(
            &peer,
            &[
                "python3",
                "-c",
                UDP_FLOW,
                FW_ADDR,
                "5353",
                &EXCHANGES.to_string(),
            ],
        ),
        Duration::from_secs(30),
    );
    let back: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(back, EXCHANGES, "every echo came back:\n{}", log());
    // An open TCP port still works, a new connection to a closed one is
    // still dropped (conntrack has no ESTABLISHED entry for it).
    assert_eq!(lab.client(&peer, "tcp", FW_ADDR, 8080, 3.0), "ok");
    assert!(lab
        .client(&peer, "tcp", FW_ADDR, 9090, 1.0)
        .starts_with("fail:"));

    let stats: serde_json::Value = serde_json::from_str(&lab.v6fw(&["stats", "--json"])).unwrap();
    let offloaded = stats["offload"]["kernel_accepted_packets"].as_u64();
    // 49 later datagrams and 50 echoes (the first echo is the reply that
    // makes the flow ESTABLISHED), besides the TCP flow's later packets.
    assert!(offloaded.is_some_and(|n| n >= 2 * EXCHANGES - 1), "{stats}");

    let status = lab.stop_run(&run);
    assert!(
        status.success(),
        "v6fw run exited with {status}:\n{}",
        log()
    );
    let rules = lab.ip6tables_save();
    assert!(!rules.contains("V6FW"), "rules left behind:\n{rules}");

    let text = fs::read_to_string(&run.out).unwrap();
    let totals: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}\n{}", log()));
    eprintln!("v6fw run totals: {totals}");
    let kernel = totals["offload"]["kernel_accepted_packets"]
        .as_u64()
        .unwrap();
    assert!(kernel >= 2 * EXCHANGES - 1, "{totals}");
    // v6fw decided the flows' first packets only: far fewer than the 100
    // datagrams of the UDP flow alone.
    let decided = totals["packets"].as_u64().unwrap();
    assert!(decided < EXCHANGES, "v6fw decided {decided}: {totals}");
    assert!(
        totals["reasons"]["port_closed"].as_u64().unwrap() >= 1,
        "{totals}"
    );
    assert!(
        totals["reasons"]["global_port"].as_u64().unwrap() >= 2,
        "{totals}"
    );

    // A killed daemon's offload rules stay, and the next start's
    // stale-leftover cleanup removes them with the rest.
    let killed = lab.start_run(&["--offload", "established", "--stats-interval", "0"]);
    // SAFETY: `killed.pid` is a child of this test that has not been reaped
    // (it is still in `lab.children`).
    let rc = unsafe { libc::kill(killed.pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "SIGKILL to v6fw run");
    if let Some(c) = lab.children.iter_mut().find(|c| c.id() == killed.pid) {
        c.wait().unwrap();
    }
    assert!(lab.ip6tables_save().contains("v6fw-offload"), "left behind");
    let plain = lab.start_run(&["--stats-interval", "0"]);
    let rules = lab.ip6tables_save();
    assert!(!rules.contains("v6fw-offload"), "{rules}");
    assert!(
        rules.contains("-A V6FW-IN -j NFQUEUE --queue-num 0"),
        "{rules}"
    );
    assert!(lab.stop_run(&plain).success(), "{}", plain.log());
    assert!(!lab.ip6tables_save().contains("V6FW"));
}
