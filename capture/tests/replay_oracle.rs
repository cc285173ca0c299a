//! Replay against an independent dissection: for every capture in
//! `shared/captures`, the `proto` and `dport` columns of the replay agree with
//! tshark's `final` and `dport` (or ICMPv6 type) on every frame where both
//! reach the upper layer. Each disagreement that follows from SPEC.md is
//! listed one by one, with its reason, in `tests/oracle_disagreements.tsv`;
//! the test fails on any disagreement not listed there and on any listed one
//! that no longer happens.
//!
//! To see the current disagreements: `V6FW_ORACLE_DUMP=1 cargo test -p
//! v6fw-capture --test replay_oracle -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use v6fw_capture::file::CaptureFile;
use v6fw_capture::replay::{replay, ReplayOptions};
use v6fw_engine::{Decision, Engine, Policy};

mod file_util;

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures")
}

fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// One oracle line: frame, l3, final, dport, icmp6.
struct OracleLine {
    frame: u64,
    l3: String,
    fin: String,
    dport: String,
    icmp6: String,
}

fn oracle(path: &Path) -> Vec<OracleLine> {
    let tsv = PathBuf::from(format!("{}.oracle.tsv", path.display()));
    std::fs::read_to_string(&tsv)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            OracleLine {
                frame: c[0].parse().unwrap(),
                l3: c[1].to_string(),
                fin: c[3].to_string(),
                dport: c[4].to_string(),
                icmp6: c[5].to_string(),
            }
        })
        .collect()
}

fn decisions(path: &Path) -> BTreeMap<u64, Decision> {
    let engine = Engine::new(Policy::default());
    let mut file = CaptureFile::open(path).unwrap();
    let mut out = BTreeMap::new();
    replay(&mut file, &engine, &ReplayOptions::default(), |r| {
        out.insert(r.frame, r.decision);
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

fn col<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// (file, frame, kind, v6fw's `reason proto dport`, oracle's `final dport icmp6`).
type Row = (String, u64, &'static str, String, String);

fn compare(rel: &str, o: &OracleLine, d: &Decision) -> Option<Row> {
    let ours = format!("{} {} {}", d.reason, col(d.proto), col(d.dport));
    let theirs = format!("{} {} {}", o.fin, o.dport, o.icmp6);
    let row = |kind| Some((rel.to_string(), o.frame, kind, ours.clone(), theirs.clone()));
    let oracle_final: Option<u8> = o.fin.parse().ok();
    match (d.proto, oracle_final) {
        (None, None) => None,
        (Some(_), None) => row("only_v6fw_reached_upper_layer"),
        (None, Some(_)) => row("only_oracle_reached_upper_layer"),
        (Some(p), Some(f)) if p != f => row("proto"),
        (Some(p), Some(_)) => {
            let oracle_port: Option<u16> = if p == 58 {
                o.icmp6.split('/').next().and_then(|t| t.parse().ok())
            } else {
                o.dport.parse().ok()
            };
            let port_kind = matches!(p, 6 | 17 | 58);
            match (d.dport, oracle_port) {
                (Some(a), Some(b)) if a != b => row("dport"),
                (Some(_), None) if port_kind => row("only_v6fw_read_dport"),
                (None, Some(_)) if port_kind => row("only_oracle_read_dport"),
                _ => None,
            }
        }
    }
}

fn listed() -> BTreeMap<(String, u64, String, String, String), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_disagreements.tsv");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 6, "bad line in oracle_disagreements.tsv: {l:?}");
            assert!(
                !c[5].trim().is_empty(),
                "a listed disagreement needs its reason: {l:?}"
            );
            (
                (
                    c[0].to_string(),
                    c[1].parse().unwrap(),
                    c[2].to_string(),
                    c[3].to_string(),
                    c[4].to_string(),
                ),
                c[5].to_string(),
            )
        })
        .collect()
}

#[test]
fn replay_agrees_with_tshark() {
    let dir = captures_dir();
    if !dir.is_dir() {
        eprintln!(
            "note: {} not found; oracle comparison skipped",
            dir.display()
        );
        return;
    }
    let mut found: BTreeSet<(String, u64, String, String, String)> = BTreeSet::new();
    let mut compared = 0u64;
    let mut ipv6_frames = 0u64;
    for path in captures(&dir) {
        let rel = file_util::corpus_name(&path, &dir);
        let ds = decisions(&path);
        for o in oracle(&path) {
            ipv6_frames += 1;
            let d = ds
                .get(&o.frame)
                .unwrap_or_else(|| panic!("{rel}: frame {} not replayed", o.frame));
            if o.l3 != "ipv6" {
                continue;
            }
            if d.proto.is_some() && o.fin.parse::<u8>().is_ok() {
                compared += 1;
            }
            if let Some((f, n, k, a, b)) = compare(&rel, &o, d) {
                found.insert((f, n, k.to_string(), a, b));
            }
        }
    }
    if std::env::var_os("V6FW_ORACLE_DUMP").is_some() {
        for (f, n, k, a, b) in &found {
            println!("{f}\t{n}\t{k}\t{a}\t{b}\t");
        }
    }
    let listed = listed();
    let listed_keys: BTreeSet<_> = listed.keys().cloned().collect();
    let new: Vec<_> = found.difference(&listed_keys).collect();
    let gone: Vec<_> = listed_keys.difference(&found).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "disagreements with tshark changed.\nnew (not in tests/oracle_disagreements.tsv):\n{new:#?}\nlisted but gone:\n{gone:#?}"
    );
    assert_eq!(ipv6_frames, 1660, "the corpus has 1,660 IPv6 frames");
    assert!(compared > 1000, "only {compared} frames compared");
    println!(
        "{compared} frames reached the upper layer in both; {} listed disagreements",
        listed.len()
    );
}
