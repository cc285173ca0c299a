//! `v6fw replay --explain N` on every frame of the bundled sample (one frame
//! of each kind: see api/examples/gen_sample.rs), compared with the
//! checked-in dissections under api/tests/golden/; `--wide`; the size syntax
//! of `--log-max-size`.
//!
//! After a deliberate change of the output, rewrite the golden files with
//! `V6FW_BLESS=1 cargo test -p v6fw-api --test replay_explain` and review
//! the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

mod common;

#[allow(dead_code)]
#[path = "../examples/gen_sample.rs"]
mod gen_sample;

use common::sample::{sample, POLICY};

fn replay(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .arg("replay")
        .arg(sample())
        .args(POLICY)
        .args(extra)
        .output()
        .expect("run v6fw")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "v6fw failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Compares `got` with the golden file `name` (or writes it with V6FW_BLESS=1).
fn golden(name: &str, got: &str) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("V6FW_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return Ok(());
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (V6FW_BLESS=1 writes it)", path.display()));
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "{name} differs from the golden file:\n--- want\n{want}\n--- got\n{got}"
        ))
    }
}

#[test]
fn every_frame_of_the_sample_is_explained_as_the_golden_file_says() {
    let frames = gen_sample::frames();
    let mut failures = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let n = (i + 1).to_string();
        let text = stdout(&replay(&["--explain", &n]));
        // The explanation ends with the frame's per-packet line, so it can
        // never disagree with the decision.
        let line = format!("    Per-packet line: {n}\t{}\n", f.expect);
        assert!(text.ends_with(&line), "frame {n} ({}):\n{text}", f.what);
        if let Err(e) = golden(&format!("explain-{:02}.txt", i + 1), &text) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn explain_json_has_the_layers_with_offsets_and_the_step() {
    for n in ["8", "24"] {
        let text = stdout(&replay(&["--explain", n, "--json"]));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["frame"], n.parse::<u64>().unwrap());
        assert_eq!(v["layers"][1]["name"], "IPv6 header");
        assert_eq!(v["layers"][1]["offset"], 14);
        golden(&format!("explain-{n:0>2}.json"), &text).unwrap();
    }
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&replay(&["--explain", "8", "--json"]))).unwrap();
    assert_eq!(v["reason"], "established");
    assert_eq!(v["step"], "Inbound decision, step 6");
    assert!(
        v["state"].as_str().unwrap().contains("is a tracked flow"),
        "{v}"
    );
}

#[test]
fn explain_sees_the_state_and_switches_of_the_replay() {
    // Without --local the host's own SYN is inbound, so its reply finds no flow.
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["replay", sample().to_str().unwrap(), "--explain", "8"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("Decision: drop port_closed"), "{text}");
    assert!(text.contains("no --local prefix was given"), "{text}");
    let text = stdout(&replay(&["--explain", "4", "--disabled"]));
    assert!(
        text.contains("Decision: accept firewall_disabled"),
        "{text}"
    );
    assert!(text.contains("Inbound decision, step 3"), "{text}");
}

#[test]
fn explain_past_the_end_or_of_frame_0_is_a_clear_error() {
    for (n, want) in [
        (
            "29",
            "the capture has only 28 frames: give a frame number from 1 to 28",
        ),
        ("0", "frames count from 1"),
    ] {
        let out = replay(&["--explain", n]);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
    }
    let out = replay(&["--explain", "2", "--per-packet"]);
    assert!(!out.status.success(), "--explain is one frame, not lines");
}

#[test]
fn wide_adds_source_destination_and_source_port() {
    let text = stdout(&replay(&["--wide"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 28);
    for (line, f) in lines.iter().zip(gen_sample::frames()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 8, "{line}");
        // The SPEC line stays first, unchanged.
        assert_eq!(cols[1..5].join("\t"), f.expect, "{line}");
    }
    assert_eq!(lines[0], "1\taccept\tnot_ipv6\t-\t-\t-\t-\t-");
    assert_eq!(
        lines[3],
        "4\taccept\topen_port\t6\t22\t2001:db8:2::20\t2001:db8:1::10\t40001"
    );
    assert_eq!(
        lines[6],
        "7\taccept\toutbound\t6\t80\t2001:db8:1::10\t2001:db8:2::20\t50000"
    );
    // An ICMPv6 message has addresses but no ports.
    assert!(lines[12].ends_with("\t2001:db8:2::20\t2001:db8:1::10\t-"));
    let json = stdout(&replay(&["--wide", "--json"]));
    let v: serde_json::Value = serde_json::from_str(json.lines().nth(3).unwrap()).unwrap();
    assert_eq!(v["src"], "2001:db8:2::20");
    assert_eq!(v["sport"], 40001);
    assert_eq!(v["dport"], 22);
    // Without --wide the SPEC line has its five columns and nothing more.
    let plain = stdout(&replay(&["--per-packet", "--json"]));
    let v: serde_json::Value = serde_json::from_str(plain.lines().nth(3).unwrap()).unwrap();
    assert!(v.get("src").is_none(), "{v}");
}

#[test]
fn log_max_size_takes_the_size_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pfirewall.log");
    let log = log.to_str().unwrap();
    for size in ["4MiB", "4M", "4MB", "4194304", "1KiB"] {
        let out = replay(&["--log", log, "--log-max-size", size]);
        assert!(
            out.status.success(),
            "{size}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = replay(&["--log", log, "--log-max-size", "4 TiB"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is not a size"), "{err}");
    let out = replay(&["--log", log, "--log-max-size", "100"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too small"), "{err}");
}

/// An outbound TCP segment from the host fd00::1 port `sport` to port 80.
fn outbound(sport: u16, syn: bool) -> Vec<u8> {
    let mut local = [0u8; 16];
    local[0] = 0xfd;
    local[15] = 1;
    let mut remote = local;
    remote[15] = 2;
    let b = etherparse::PacketBuilder::ipv6(local, remote, 64).tcp(sport, 80, 1, 1024);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

#[test]
fn explain_says_when_a_flow_found_no_slot() {
    // 64 flows confirmed by the host's own ACKs fill a table of 8 slots;
    // the 65th flow's SYN finds every slot it could take confirmed.
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("full.pcap");
    let mut w = common::pcap::PcapWriter::create(&cap, common::pcap::RAW);
    for i in 0..64u16 {
        w.frame(1, u32::from(i) * 2, &outbound(10_000 + i, true));
        w.frame(1, u32::from(i) * 2 + 1, &outbound(10_000 + i, false));
    }
    w.frame(2, 0, &outbound(20_000, true));
    w.finish();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[state]\nflow_slots = 8\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            cap.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--local",
            "fd00::/8",
        ];
        args.extend_from_slice(extra);
        stdout(
            &Command::new(env!("CARGO_BIN_EXE_v6fw"))
                .args(&args)
                .output()
                .unwrap(),
        )
    };
    let summary: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    assert!(
        summary["flows_not_recorded"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let last = run(&["--explain", "129"]);
    assert!(
        last.contains("Flow state: not recorded (counted in flows_not_recorded"),
        "{last}"
    );
    let first = run(&["--explain", "1"]);
    assert!(
        first.contains("Flow state: records or refreshes the flow"),
        "{first}"
    );
}
