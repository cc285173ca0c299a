//! Replays every committed fuzz corpus file through the same checks the fuzz
//! targets run (`v6fw_testkit::fuzz_checks`), on stable, under
//! `cargo test --workspace`. A crash the fuzzer found stays fixed once its
//! reproducer is in `fuzz/corpus/<target>/`.

#![allow(
    clippy::unwrap_used,
    reason = "a test: an unreadable corpus should fail loudly"
)]

use std::path::PathBuf;

use v6fw_testkit::fuzz_checks::{check_target, hex};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn replay(target: &str) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        match check_target(target, &data) {
            Some(Ok(())) => {}
            Some(Err(e)) => failures.push(format!("{}: {e}\n  hex: {}", f.display(), hex(&data))),
            None => panic!("unknown target {target}"),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} corpus files fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn decide_corpus() {
    replay("decide");
}

#[test]
fn parse_vs_etherparse_corpus() {
    replay("parse_vs_etherparse");
}

#[test]
fn policy_ops_corpus() {
    replay("policy_ops");
}

#[test]
fn control_request_corpus() {
    replay("control_request");
}

#[test]
fn capture_file_corpus() {
    replay("capture_file");
}

#[test]
fn http_head_corpus() {
    replay("http_head");
}
