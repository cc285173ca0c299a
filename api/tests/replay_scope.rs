//! `v6fw replay` of a capture with a scoped policy (SPEC.md, "Scopes"):
//! through `--open`/`--global` (`22/tcp@fd00::/8+2001:db8::/32`) and through
//! a policy file (`from = [...]`), the same lines; a bad prefix is refused
//! with its text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::pcap::{PcapWriter, RAW};
use etherparse::PacketBuilder;

fn addr(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// An inbound TCP ACK from `src` to the host's port `dport`.
fn tcp(src: &str, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ipv6(addr(src), addr("fd00:ffff::1"), 64)
        .tcp(40_000, dport, 1, 1024)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

/// The frames and the line each must give (`frame verdict reason proto dport`).
fn frames() -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (tcp("fd00::9", 22), "accept\topen_port\t6\t22"),
        (tcp("2001:db8::5", 22), "accept\topen_port\t6\t22"),
        (tcp("2001:db9::5", 22), "drop\tout_of_scope\t6\t22"),
        (tcp("fd00::9", 443), "drop\tout_of_scope\t6\t443"),
        (tcp("2001:db8::5", 443), "accept\tglobal_port\t6\t443"),
        (tcp("2001:db9::5", 80), "drop\tport_closed\t6\t80"),
        (tcp("2001:db9::5", 53), "accept\topen_port\t6\t53"),
    ]
}

fn capture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("scoped.pcap");
    let mut w = PcapWriter::create(&path, RAW);
    for (i, (f, _)) in frames().iter().enumerate() {
        w.frame(1, u32::try_from(i).unwrap(), f);
    }
    w.finish();
    path
}

fn v6fw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(args)
        .output()
        .expect("run v6fw")
}

fn expected() -> String {
    frames()
        .iter()
        .enumerate()
        .map(|(i, (_, l))| format!("{}\t{l}\n", i + 1))
        .collect()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn scoped_pairs_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(dir.path());
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            cap.to_str().unwrap(),
            "--open",
            "22/tcp@fd00::/8+2001:db8::/32,53/tcp",
            "--global",
            "443/tcp@2001:db8::/32",
        ];
        args.extend_from_slice(extra);
        ok(&v6fw(&args))
    };
    assert_eq!(replay(&["--per-packet"]), expected());
    let summary = replay(&[]);
    assert!(
        summary
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["out_of_scope", "drop", "2"]),
        "{summary}"
    );
}

#[test]
fn scoped_pairs_in_a_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(dir.path());
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"[globals]
"443/tcp" = { name = "https", from = ["2001:db8::/32"] }

[connections.eth0]
id = "eth0"

[connections.eth0.open]
"22/tcp" = { name = "ssh", from = ["fd00::/8", "2001:db8::/32"] }
"53/tcp" = "dns"
"#,
    )
    .unwrap();
    let out = v6fw(&[
        "replay",
        cap.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--per-packet",
    ]);
    assert_eq!(ok(&out), expected());
}

#[test]
fn bad_prefixes_are_refused_with_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(dir.path());
    let out = v6fw(&[
        "replay",
        cap.to_str().unwrap(),
        "--open",
        "22/tcp@fd00::/129",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"fd00::/129\" is not an IPv6 prefix"),
        "{err}"
    );
    // Bits past the length (issue 29): refused, naming the network.
    let out = v6fw(&[
        "replay",
        cap.to_str().unwrap(),
        "--open",
        "22/tcp@fd00::1/8",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the network is fd00::/8"), "{err}");
    let policy = dir.path().join("bad.toml");
    std::fs::write(
        &policy,
        "[globals]\n\"22/tcp\" = { name = \"ssh\", from = [\"10.0.0.0/8\"] }\n",
    )
    .unwrap();
    let out = v6fw(&[
        "replay",
        cap.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"10.0.0.0/8\" is not an IPv6 prefix"),
        "{err}"
    );
    assert!(err.contains("line 2"), "names the line: {err}");
}
