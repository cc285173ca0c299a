//! Replay input as tcpdump and tshark take it: `-` reads standard input,
//! gzip-compressed captures are read transparently, and a capture that breaks
//! off prints the summary of the frames read before the error, then the error,
//! with a failing exit code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::sample::{sample, POLICY};
use common::succeeded;

fn replay(capture: &str, extra: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .arg("replay")
        .arg(capture)
        .args(POLICY)
        .args(extra)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn stdin_and_gzip_give_the_same_lines_as_the_file() {
    let path = sample();
    let raw = std::fs::read(&path).unwrap();
    let from_file = stdout(&succeeded(replay(
        path.to_str().unwrap(),
        &["--per-packet"],
        None,
    )));
    assert_eq!(from_file.lines().count(), 28, "{from_file}");

    let from_stdin = stdout(&succeeded(replay("-", &["--per-packet"], Some(&raw))));
    assert_eq!(from_stdin, from_file);

    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("sample.pcap.gz");
    std::fs::write(&gz, gzip(&raw)).unwrap();
    let from_gz = stdout(&succeeded(replay(
        gz.to_str().unwrap(),
        &["--per-packet"],
        None,
    )));
    assert_eq!(from_gz, from_file);

    // Compressed on stdin too (`zcat` is not needed).
    let gz_stdin = stdout(&succeeded(replay(
        "-",
        &["--per-packet"],
        Some(&gzip(&raw)),
    )));
    assert_eq!(gz_stdin, from_file);
}

#[test]
fn a_truncated_capture_prints_what_was_read_then_the_error() {
    let raw = std::fs::read(sample()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    // Ten bytes short: the last record breaks off inside its data.
    std::fs::write(&cut, &raw[..raw.len() - 10]).unwrap();
    let out = replay(cut.to_str().unwrap(), &[], None);
    assert_eq!(out.status.code(), Some(1), "a broken capture must fail");
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "packets   27"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("27 frames"), "{err}");

    // JSON: the summary object of what was read, then the error on stderr.
    let out = replay(cut.to_str().unwrap(), &["--json"], None);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["packets"], 27);

    // A gzip stream that breaks off: the frames before the break are counted.
    let gz = gzip(&raw);
    let cut_gz = dir.path().join("cut.pcap.gz");
    std::fs::write(&cut_gz, &gz[..gz.len() / 2]).unwrap();
    let out = replay(cut_gz.to_str().unwrap(), &[], None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let n: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("packets   "))
        .expect("no summary")
        .parse()
        .unwrap();
    assert!(n < 28, "{text}");
}

#[test]
fn empty_stdin_is_a_clear_error() {
    let out = replay("-", &[], Some(b""));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin") && err.contains("empty"), "{err}");
}
