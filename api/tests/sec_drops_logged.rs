//! Issue 13: when dropped-packet logging is on, every drop has exactly one
//! log line — version-6 packets under 40 bytes too. Checked by replaying the
//! bundled sample and, when it is there, every capture of the shared corpus
//! (`shared/captures` beside the checkout, or `V6FW_CAPTURES`) with `--per-packet` and
//! `--log` at once: the drops' reasons, in order, are the log's DROP lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The reasons of the dropped frames per `--per-packet`, and the `info` of
/// the DROP lines of the log, of one replay of `capture`.
fn drops_and_lines(capture: &Path, log_dir: &Path) -> (Vec<String>, Vec<String>) {
    let log = log_dir.join("pfirewall.log");
    let _ = std::fs::remove_file(&log);
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .arg("replay")
        .arg(capture)
        .args(["--open", "22/tcp,53/udp", "--local", "2001:db8:1::/48"])
        .args(["--per-packet", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let drops = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(1) == Some(&"drop")).then(|| cols[2].to_string())
        })
        .collect();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 17, "{}: {l}", capture.display());
            assert_eq!(f[2], "DROP", "{}: {l}", capture.display());
            f[15].to_string()
        })
        .collect();
    (drops, lines)
}

#[test]
fn every_drop_of_the_sample_has_one_line() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample.pcap");
    let dir = tempfile::tempdir().unwrap();
    let (drops, lines) = drops_and_lines(&sample, dir.path());
    assert_eq!(drops, lines);
    // The sample's 30-byte IPv6 header is one of them.
    let text = std::fs::read_to_string(dir.path().join("pfirewall.log")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(" DROP - ") && l.contains(" 30 - ")),
        "{text}"
    );
}

/// Every pcap and pcapng file under `dir`, sorted.
fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

#[test]
fn every_drop_of_the_shared_corpus_has_one_line() {
    let root = match std::env::var_os("V6FW_CAPTURES") {
        Some(dir) => PathBuf::from(dir),
        None => match v6fw_testkit::shared::captures("sec_drops_logged") {
            Some(dir) => dir,
            None => return,
        },
    };
    let mut files = Vec::new();
    captures(&root, &mut files);
    files.sort();
    if files.is_empty() {
        eprintln!(
            "note: no captures under {}, only the sample is checked",
            root.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut total, mut short) = (0, 0);
    for f in &files {
        let (drops, lines) = drops_and_lines(f, dir.path());
        assert_eq!(drops, lines, "{}", f.display());
        total += drops.len();
        let text = std::fs::read_to_string(dir.path().join("pfirewall.log")).unwrap();
        short += text.lines().filter(|l| l.contains(" DROP - ")).count();
    }
    eprintln!(
        "{} captures: {total} drops, each with one log line ({short} with no protocol)",
        files.len()
    );
    assert!(total > 0);
}
