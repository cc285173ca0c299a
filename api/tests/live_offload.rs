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
//! A second test sends ICMPv6 type 100 and type 1 quoting a tracked UDP flow
//! (conntrack's RELATED): without offload and with it, type 100 is dropped
//! by v6fw's policy and type 1 accepted.
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
    // The offload rules come first in each chain: only ESTABLISHED, only
    // TCP and UDP (RELATED is queued: see the ICMPv6 test below).
    let rules = lab.ip6tables_save_table("mangle");
    for chain in ["V6FW-IN", "V6FW-OUT"] {
        let offload = |p: &str| {
            format!(
                "-A {chain} -p {p} -m conntrack --ctstate ESTABLISHED -m comment --comment \
                 v6fw-offload -j RETURN"
            )
        };
        let start = rules.find(&format!("-A {chain} ")).unwrap();
        assert!(
            rules[start..].starts_with(&format!("{}\n{}\n", offload("tcp"), offload("udp"))),
            "{rules}"
        );
    }
    assert!(!rules.contains("RELATED"), "{rules}");

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

/// On FW: counts the ICMPv6 messages from PEER_ADDR by type, on a raw
/// socket (what got through netfilter INPUT), until N of type LAST came (at
/// most 30 s); touches READY once listening; prints `{"TYPE": N}`.
const ICMP_SINK: &str = r#"
import json, select, socket, sys, time
ready, peer, last, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
open(ready, "w").close()
counts = {}
end = time.time() + 30
while time.time() < end and counts.get(last, 0) < n:
    r, _, _ = select.select([s], [], [], 0.1)
    if r:
        d, a = s.recvfrom(2048)
        if a[0] == peer and d:
            counts[str(d[0])] = counts.get(str(d[0]), 0) + 1
print(json.dumps(counts))
"#;

/// On PEER: opens a UDP flow to FW:PORT (one echo each way, so conntrack
/// tracks it), then sends N ICMPv6 messages of each TYPE (comma-separated)
/// quoting FW's echo of that flow, as an error about it would.
const ICMP_QUOTING_THE_FLOW: &str = r#"
import socket, struct, sys
fw, port, types, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.settimeout(3.0)
u.connect((fw, port))
u.send(b"hello")
u.recv(64)
me = u.getsockname()
udp = struct.pack("!HHHH", port, me[1], 8 + 5, 0) + b"hello"
ip = (struct.pack("!IHBB", 6 << 28, len(udp), 17, 64)
      + socket.inet_pton(socket.AF_INET6, fw) + socket.inet_pton(socket.AF_INET6, me[0]))
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
for t in types.split(","):
    for _ in range(n):
        raw.sendto(struct.pack("!BBHI", int(t), 0, 0, 0) + ip + udp, (fw, 0))
print("sent")
"#;

/// ICMPv6 messages of each type the peer sends.
const ICMP_EACH: u64 = 5;

/// Sends ICMPv6 type 100 (private experimentation: an "error" to conntrack,
/// below 128; `icmp_policy` to v6fw) and type 1 (destination unreachable:
/// accepted by the policy) quoting a tracked UDP flow; returns what reached
/// FW per type.
fn icmp_quoting_a_flow(lab: &mut Lab) -> serde_json::Value {
    let (fw, peer) = (lab.net.fw.clone(), lab.net.peer.clone());
    let ready = lab.net.dir.join("icmp-ready");
    let _ = fs::remove_file(&ready);
    let sink = lab
        .exec(
            &fw,
            &[
                "python3",
                "-c",
                ICMP_SINK,
                ready.to_str().unwrap(),
                lab::PEER_ADDR,
                "1",
                &ICMP_EACH.to_string(),
            ],
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    lab::wait_for(
        Duration::from_secs(10),
        || ready.exists(),
        "the ICMPv6 sink",
    );
    let out = run_bounded(
        &mut lab.exec(
            &peer,
            &[
                "python3",
                "-c",
                ICMP_QUOTING_THE_FLOW,
                FW_ADDR,
                "5353",
                "100,1",
                &ICMP_EACH.to_string(),
            ],
        ),
        Duration::from_secs(20),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sent",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Type 1 is sent last, in order on one link and one queue: once the
    // sink has all of them, type 100 had its chance. It ends by itself
    // within 30 s whatever happens.
    let out = sink.wait_with_output().unwrap();
    let counted = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(counted.trim()).unwrap_or_else(|e| panic!("{e}: {counted}"))
}

#[test]
fn live_offload_keeps_the_icmp_policy() {
    if let Some(why) = unavailable() {
        return lab::skip("live_offload", &why);
    }
    let mut lab = match Lab::new("v6fwoic", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return lab::skip("live_offload", &format!("no namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return lab::skip("live_offload", "the kernel has no ip6tables NFQUEUE target");
    }
    let fw = lab.net.fw.clone();
    lab.server(&fw, "", "5353");
    for offload in [false, true] {
        let mut args = vec!["--open", "5353/udp", "--json", "--stats-interval", "0"];
        if offload {
            args.extend(["--offload", "established"]);
        }
        let run = lab.start_run(&args);
        let got = icmp_quoting_a_flow(&mut lab);
        eprintln!("offload {offload}: ICMPv6 from the peer that reached FW, by type: {got}");
        assert!(lab.stop_run(&run).success(), "{}", run.log());
        let text = fs::read_to_string(&run.out).unwrap();
        let totals: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The control: the errors the policy accepts get in, so the sink
        // sees what passes.
        assert_eq!(
            got["1"].as_u64(),
            Some(ICMP_EACH),
            "offload {offload}: {got}"
        );
        // Type 100 is dropped, by v6fw's policy, with and without offload
        // (a RELATED offload rule let all 5 in).
        assert_eq!(got["100"].as_u64(), None, "offload {offload}: {got}");
        assert!(
            totals["reasons"]["icmp_policy"].as_u64() >= Some(ICMP_EACH),
            "offload {offload}: {totals}"
        );
    }
}
