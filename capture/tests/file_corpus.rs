//! Every capture of the shared corpus (shared/captures, see its INDEX.md)
//! reads to its end, with the frame count tshark saw, and the frames tshark
//! dissected as IPv6 (its `.oracle.tsv`) yield an IPv6 packet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use v6fw_capture::file::CaptureFile;

mod file_util;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/captures");

/// Link types SPEC.md does not list: their IPv6 frames yield no packet.
const UNLISTED: [u32; 2] = [107, 195];

fn corpus() -> Option<PathBuf> {
    let root = PathBuf::from(CORPUS);
    if root.join("INDEX.md").is_file() {
        Some(root)
    } else {
        println!("note: capture corpus not found at {CORPUS}; skipping");
        None
    }
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            captures(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng")
        {
            out.push(path);
        }
    }
}

/// INDEX.md's table: relative path -> total frames (tshark's count).
fn index_counts(root: &Path) -> BTreeMap<String, u64> {
    let index = fs::read_to_string(root.join("INDEX.md")).unwrap();
    let mut counts = BTreeMap::new();
    for line in index.lines().filter(|l| l.starts_with("| `")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let file = cols[1].trim_matches('`').to_owned();
        if let Ok(frames) = cols[3].parse() {
            counts.insert(file, frames);
        }
    }
    counts
}

/// The oracle's lines: frame -> (l3, snap).
fn oracle(path: &Path) -> BTreeMap<u64, (String, String)> {
    let tsv = path.with_extension(format!(
        "{}.oracle.tsv",
        path.extension().unwrap().to_str().unwrap()
    ));
    let text = fs::read_to_string(&tsv).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (
                cols[0].parse().unwrap(),
                (cols[1].to_owned(), cols[9].to_owned()),
            )
        })
        .collect()
}

#[test]
fn corpus_reads_like_tshark() {
    let Some(root) = corpus() else { return };
    let counts = index_counts(&root);
    let mut files = Vec::new();
    captures(&root.join("tcpdump"), &mut files);
    captures(&root.join("zeek"), &mut files);
    files.sort();
    assert_eq!(files.len(), 195, "corpus size");
    let mut linktypes = BTreeSet::new();
    let (mut total, mut ipv6) = (0u64, 0u64);
    for path in &files {
        let rel = file_util::corpus_name(path, &root);
        let rel = rel.as_str();
        let oracle = oracle(path);
        assert!(!oracle.is_empty(), "{rel}: no oracle lines");
        let mut file = CaptureFile::open(path).unwrap_or_else(|e| panic!("{e}"));
        let mut frames = 0;
        while let Some(frame) = file.next_frame() {
            let frame = frame.unwrap_or_else(|e| panic!("{e}"));
            frames += 1;
            assert_eq!(frame.number, frames, "{rel}: numbering");
            linktypes.insert(frame.linktype);
            let packet = frame.ipv6();
            let n = frame.number;
            match oracle.get(&n) {
                Some((l3, snap)) => {
                    assert!(l3 == "ipv6" || l3 == "ipv6-bad", "{rel}:{n}: l3 {l3}");
                    if UNLISTED.contains(&frame.linktype) {
                        assert!(packet.is_none(), "{rel}:{n}: unlisted link type");
                    } else {
                        assert!(packet.is_some(), "{rel}:{n}: IPv6 frame not found");
                        ipv6 += 1;
                    }
                    assert_eq!(frame.truncated, snap == "trunc", "{rel}:{n}: truncated");
                }
                None => {
                    let version = packet.and_then(|p| p.first()).map(|b| b >> 4);
                    assert_ne!(version, Some(6), "{rel}:{n}: IPv6 not in the oracle");
                }
            }
        }
        assert_eq!(file.position(), file.size(), "{rel}: position at the end");
        let max = oracle.keys().max().copied().unwrap_or(0);
        assert!(
            frames >= max,
            "{rel}: {frames} frames, oracle has frame {max}"
        );
        let want = counts
            .get(rel)
            .unwrap_or_else(|| panic!("{rel} not in INDEX.md"));
        assert_eq!(frames, *want, "{rel}: frame count");
        total += frames;
    }
    println!("link types seen: {linktypes:?}");
    // INDEX.md: 1975 frames, 1660 IPv6 of which 159 on FRELAY and 802.15.4.
    assert_eq!(total, 1975);
    assert_eq!(ipv6, 1660 - 86 - 73 - 1);
}

#[test]
fn big_frames_are_whole() {
    let Some(root) = corpus() else { return };
    for (name, len) in [
        // File size minus the 24-byte file header and 16-byte record header.
        ("tcpdump/bigtcp-ipv6-hbh.pcap", 80_134 - 40),
        ("tcpdump/ipv6_jumbogram_1.pcap", 65_630 - 40),
    ] {
        let mut file = CaptureFile::open(&root.join(name)).unwrap();
        let frame = file.next_frame().unwrap().unwrap();
        assert!(frame.data.len() > 65_535, "{name}: {}", frame.data.len());
        assert_eq!(frame.data.len(), len, "{name}");
        assert!(!frame.truncated, "{name}");
        assert_eq!(frame.ipv6().unwrap()[0] >> 4, 6, "{name}");
        assert!(file.next_frame().is_none());
    }
}

#[test]
fn many_interfaces_and_vlan_pcapng() {
    let Some(root) = corpus() else { return };
    let path = root.join("zeek/ldap/modify-request.pcapng");
    let mut file = CaptureFile::open(&path).unwrap();
    let mut n = 0;
    while let Some(frame) = file.next_frame() {
        let frame = frame.unwrap();
        assert_eq!(frame.ipv6().unwrap()[0] >> 4, 6);
        assert!(frame.timestamp_ns > 1_000_000_000 * 1_000_000_000);
        n += 1;
    }
    assert_eq!(n, 17);
}
