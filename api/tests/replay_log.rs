//! `v6fw replay --log`: the bundled sample's firewall log, checked field by
//! field against the frames the generator built.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample.pcap")
}

/// Replays the sample with README's policy into a log; returns its lines.
fn replay_log(extra: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pfirewall.log");
    let s = sample();
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .env("TZ", "UTC")
        .args(["replay", s.to_str().unwrap()])
        .args(["--open", "22/tcp,53/udp", "--global", "443/tcp"])
        .args(["--local", "2001:db8:1::/48", "--log", log.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    common::succeeded(out);
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

const FIELDS: &str = "#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path";
const REMOTE: &str = "2001:db8:2::20";
const LOCAL: &str = "2001:db8:1::10";

fn header_ok(lines: &[String]) {
    assert_eq!(lines[0], "#Version: 1.5");
    assert!(lines[1].starts_with("#Software: v6fw "), "{}", lines[1]);
    assert_eq!(lines[2], "#Time Format: Local");
    assert_eq!(lines[3], FIELDS);
}

/// The lines as field maps keyed by the `#Fields:` names.
fn records(lines: &[String]) -> Vec<std::collections::BTreeMap<&'static str, String>> {
    let names: Vec<&'static str> = FIELDS.trim_start_matches("#Fields: ").split(' ').collect();
    lines[4..]
        .iter()
        .map(|l| {
            let values: Vec<&str> = l.split(' ').collect();
            assert_eq!(values.len(), names.len(), "{l}");
            names
                .iter()
                .zip(values)
                .map(|(n, v)| (*n, v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn dropped_packets_field_by_field() {
    let lines = replay_log(&[]);
    header_ok(&lines);
    let recs = records(&lines);
    // Every drop of the sample, the 30-byte header first (its fields are `-`).
    let short = &recs[0];
    assert_eq!(
        [
            &short["protocol"],
            &short["dst-ip"],
            &short["size"],
            &short["info"]
        ],
        ["-", "-", "30", "malformed"]
    );
    let recs = recs[1..].to_vec();
    let infos: Vec<&str> = recs.iter().map(|r| r["info"].as_str()).collect();
    assert_eq!(
        infos,
        [
            "malformed",
            "port_closed",
            "port_closed",
            "icmp_policy",
            "icmp_policy",
            "bad_extension_order",
            "routing_header_0",
            "chain_too_long",
            "no_upper_layer",
            "incomplete_chain",
            "orphan_fragment",
            "unsupported_protocol",
            "malformed",
            "bad_address",
        ]
    );
    let (last, recs) = recs.split_last().unwrap();
    // The echo request from a multicast source: its addresses as they are,
    // no protocol (decided before the walk, like its `- -` columns).
    assert_eq!(
        [
            &last["src-ip"],
            &last["dst-ip"],
            &last["protocol"],
            &last["info"]
        ],
        ["ff02::1", LOCAL, "-", "bad_address"]
    );
    let recs = recs.to_vec();
    for r in &recs {
        assert_eq!(r["date"], "2026-01-01");
        assert_eq!(r["time"], "00:00:00");
        assert_eq!(r["action"], "DROP");
        assert_eq!(r["src-ip"], REMOTE);
        assert_eq!(r["dst-ip"], LOCAL);
        assert_eq!(r["path"], "RECEIVE");
    }
    // TCP SYN to 8080: ports, flags, sequence, ack, window.
    let syn = &recs[1];
    assert_eq!(
        [
            &syn["protocol"],
            &syn["src-port"],
            &syn["dst-port"],
            &syn["size"]
        ],
        ["TCP", "40003", "8080", "60"]
    );
    assert_eq!(
        [
            &syn["tcpflags"],
            &syn["tcpsyn"],
            &syn["tcpack"],
            &syn["tcpwin"]
        ],
        ["S", "1000", "0", "65535"]
    );
    assert_eq!([&syn["icmptype"], &syn["icmpcode"]], ["-", "-"]);
    // UDP to 9999: ports, no TCP fields.
    let udp = &recs[2];
    assert_eq!(
        [
            &udp["protocol"],
            &udp["src-port"],
            &udp["dst-port"],
            &udp["tcpflags"]
        ],
        ["UDP", "5353", "9999", "-"]
    );
    // ICMPv6: type and code, no ports.
    let ns = &recs[3];
    assert_eq!(
        [
            &ns["protocol"],
            &ns["icmptype"],
            &ns["icmpcode"],
            &ns["src-port"]
        ],
        ["ICMPv6", "135", "0", "-"]
    );
    assert_eq!(recs[4]["icmptype"], "137");
    // Drops in the header walk: no upper layer to name.
    assert_eq!(recs[5]["protocol"], "-");
    // A first fragment cut inside TCP: the protocol is known, the ports are not.
    assert_eq!([&recs[9]["protocol"], &recs[9]["dst-port"]], ["TCP", "-"]);
    // ESP is named by its number.
    assert_eq!(recs[11]["protocol"], "50");
}

#[test]
fn connections_are_logged_once_per_flow() {
    let recs_lines = replay_log(&["--log-connections"]);
    header_ok(&recs_lines);
    let recs = records(&recs_lines);
    let allowed: Vec<String> = recs
        .iter()
        .filter(|r| r["action"] == "ALLOW")
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["protocol"], r["dst-port"], r["info"], r["path"]
            )
        })
        .collect();
    // New TCP connections (SYN without ACK) and UDP flows, each once: the
    // SYN-ACK and the replies are not new; the DNS fragments and the snap-cut
    // frame repeat the 53/udp flow already logged.
    assert_eq!(
        allowed,
        [
            "TCP 22 open_port RECEIVE",
            "TCP 443 global_port RECEIVE",
            "TCP 80 outbound SEND",
            "UDP 53 open_port RECEIVE",
            "UDP 123 outbound SEND",
        ]
    );
    assert_eq!(recs.iter().filter(|r| r["action"] == "DROP").count(), 15);
}

#[test]
fn a_tiny_cap_is_refused_with_what_is_valid() {
    let s = sample();
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["replay", s.to_str().unwrap(), "--log", "/tmp/never.log"])
        .args(["--log-max-size", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1024 bytes"));
}
