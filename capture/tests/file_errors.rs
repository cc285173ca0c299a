//! Missing, odd, truncated and corrupt files: every error names the file and
//! where, and says what to do; no bytes make the reader panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod file_util;

use file_util::{eth6, pcap, read_until_error, write, Ng};
use v6fw_capture::file::{CaptureError, CaptureFile, Location};

fn open_err(path: &std::path::Path) -> CaptureError {
    CaptureFile::open(path).expect_err("open should fail")
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.pcap");
    let e = open_err(&path);
    assert!(matches!(e, CaptureError::NotFound { .. }));
    assert_eq!(e.to_string(), format!("{}: no such file", path.display()));
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    let e = open_err(dir.path());
    assert_eq!(
        e.to_string(),
        format!(
            "{}: is a directory, not a capture file",
            dir.path().display()
        )
    );
}

#[test]
fn empty_and_tiny_files() {
    let (_dir, path) = write(&[]);
    let e = open_err(&path).to_string();
    assert_eq!(
        e,
        format!("{}: the file is empty, not a capture file", path.display())
    );
    let (_dir, path) = write(&[0xD4, 0xC3]);
    let e = open_err(&path).to_string();
    assert!(
        e.ends_with("file header: the file is only 2 bytes long: the file is truncated or corrupt"),
        "{e}"
    );
}

#[test]
fn unknown_magic() {
    let (_dir, path) = write(b"GET / HTTP/1.1\r\n");
    let e = open_err(&path);
    assert_eq!(
        e.to_string(),
        format!(
            "{}: not a pcap or pcapng file (magic 0x47455420)",
            path.display()
        )
    );
}

#[test]
fn pcap_header_cut() {
    let bytes = pcap(false, false, 1, 65535, &[]);
    let (_dir, path) = write(&bytes[..10]);
    let e = open_err(&path).to_string();
    assert!(e.contains(": file header: the 24-byte pcap header ends after 10 bytes: the file is truncated or corrupt"), "{e}");
}

#[test]
fn pcap_unsupported_version() {
    let mut bytes = pcap(false, false, 1, 65535, &[]);
    bytes[4] = 3;
    let (_dir, path) = write(&bytes);
    let e = open_err(&path).to_string();
    assert!(e.contains("pcap version 3.4 is not 2.x"), "{e}");
    assert!(e.contains("editcap"), "{e}");
}

#[test]
fn pcap_truncated_last_record() {
    let f = eth6(10);
    let big = eth6(70_000 - 54);
    let mut bytes = pcap(false, false, 1, 65535, &[(1, 0, &f, 0), (2, 0, &big, 0)]);
    let second = 24 + 16 + f.len();
    bytes.truncate(second + 16 + 30);
    let (_dir, path) = write(&bytes);
    let (n, e) = read_until_error(&path);
    assert_eq!(n, 1);
    assert_eq!(
        e.unwrap(),
        format!(
            "{}: frame 2 at byte {second}: record says 70000 bytes but the file ends after 30: \
             the file is truncated or corrupt",
            path.display()
        )
    );
}

#[test]
fn pcap_truncated_record_header() {
    let f = eth6(10);
    let mut bytes = pcap(false, false, 1, 65535, &[(1, 0, &f, 0), (2, 0, &f, 0)]);
    let second = 24 + 16 + f.len();
    bytes.truncate(second + 9);
    let (_dir, path) = write(&bytes);
    let (n, e) = read_until_error(&path);
    assert_eq!(n, 1);
    let e = e.unwrap();
    assert!(
        e.contains(&format!(
            "frame 2 at byte {second}: the 16-byte record header ends after 9 bytes"
        )),
        "{e}"
    );
}

#[test]
fn pcap_absurd_record_length() {
    let f = eth6(10);
    let mut bytes = pcap(false, false, 1, 65535, &[(1, 0, &f, 0)]);
    bytes[32..36].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let (_dir, path) = write(&bytes);
    let mut file = CaptureFile::open(&path).unwrap();
    let e = file.next_frame().unwrap().unwrap_err();
    assert!(matches!(
        e,
        CaptureError::Corrupt {
            at: Location::Frame {
                number: 1,
                offset: 24
            },
            ..
        }
    ));
    assert!(
        e.to_string()
            .contains("record says 4294967280 bytes, more than the limit"),
        "{e}"
    );
    assert!(e.to_string().ends_with("the file is corrupt"), "{e}");
}

#[test]
fn pcapng_truncated_last_packet() {
    let f = eth6(100);
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    let at = ng.out.len();
    ng.epb(0, 1, &f, None);
    let total = ng.out.len() - at;
    ng.out.truncate(at + 50);
    let (_dir, path) = write(&ng.out);
    let (n, e) = read_until_error(&path);
    assert_eq!(n, 0);
    assert_eq!(
        e.unwrap(),
        format!(
            "{}: frame 1 at byte {at}: block says {total} bytes but the file ends after 50: \
             the file is truncated or corrupt",
            path.display()
        )
    );
}

#[test]
fn pcapng_truncated_skipped_block() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    let at = ng.out.len();
    ng.block(4, &[0; 40]);
    ng.out.truncate(at + 20);
    let (_dir, path) = write(&ng.out);
    let e = read_until_error(&path).1.unwrap();
    assert!(
        e.contains(&format!(
            "block at byte {at}: block says 52 bytes but the file ends after 20"
        )),
        "{e}"
    );
}

#[test]
fn pcapng_unknown_interface() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    ng.epb(3, 1, &eth6(0), None);
    let (_dir, path) = write(&ng.out);
    let e = read_until_error(&path).1.unwrap();
    assert!(e.contains("frame 1 at byte "), "{e}");
    assert!(e.contains("packet names interface 3 but its section describes 1 interface(s): the file is corrupt"), "{e}");
}

#[test]
fn pcapng_length_mismatch_and_oversized_capture() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    let at = ng.out.len();
    ng.epb(0, 1, &eth6(0), None);
    let end = ng.out.len();
    ng.out[end - 4] ^= 4;
    let (_dir, path) = write(&ng.out);
    let e = read_until_error(&path).1.unwrap();
    let total = end - at;
    assert!(
        e.contains(&format!(
            "block length is {total} at its start but {} at its end",
            total ^ 4
        )),
        "{e}"
    );

    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    let at = ng.out.len();
    ng.epb(0, 1, &eth6(0), None);
    ng.out[at + 20..at + 24].copy_from_slice(&100u32.to_le_bytes());
    let (_dir, path) = write(&ng.out);
    let e = read_until_error(&path).1.unwrap();
    assert!(
        e.contains("packet says 100 captured bytes but its block holds only 56"),
        "{e}"
    );
}

#[test]
fn pcapng_bad_block_length_and_byte_order() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    let at = ng.out.len();
    ng.epb(0, 1, &eth6(0), None);
    ng.out[at + 4] = 0x45;
    let (_dir, path) = write(&ng.out);
    let e = read_until_error(&path).1.unwrap();
    assert!(e.contains("block length 69 is not a multiple of 4"), "{e}");

    let mut ng = Ng::new(false);
    ng.out[8..12].copy_from_slice(&[1, 2, 3, 4]);
    let (_dir, path) = write(&ng.out);
    let e = open_err(&path).to_string();
    assert!(
        e.contains("file header: section header byte-order magic 0x01020304"),
        "{e}"
    );
}

#[test]
fn no_panic_on_any_cut_or_flipped_byte() {
    let f = eth6(30);
    let pcap_bytes = pcap(true, false, 1, 65535, &[(1, 0, &f, 0), (2, 0, &f, 200)]);
    let mut ng = Ng::new(true);
    ng.idb(1, 64, &[(9, &[9]), (14, &[0, 0, 0, 0, 0, 0, 0, 1])]);
    ng.epb(0, 1, &f, None);
    ng.simple(&f, 90);
    ng.obsolete(0, 2, &f);
    ng.block(0xBAD, &[1, 2, 3]);
    ng.shb();
    ng.idb(0, 0, &[]);
    ng.epb(0, 1, &f, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.pcap");
    let rec = 16 + f.len();
    let pcap_ends = vec![24, 24 + rec, 24 + 2 * rec];
    for (original, ends) in [(pcap_bytes, pcap_ends), (ng.out, ng.ends)] {
        std::fs::write(&path, &original).unwrap();
        let (n, e) = read_until_error(&path);
        assert!(e.is_none() && n >= 2, "{e:?}");
        // A file cut anywhere but between records or blocks is an error.
        for len in 0..original.len() {
            std::fs::write(&path, &original[..len]).unwrap();
            let (_, e) = read_until_error(&path);
            assert_eq!(e.is_none(), ends.contains(&len), "cut at {len}: {e:?}");
        }
        for i in 0..original.len() {
            for flip in [0x01u8, 0xFF] {
                let mut bytes = original.clone();
                bytes[i] ^= flip;
                std::fs::write(&path, &bytes).unwrap();
                let _ = read_until_error(&path);
            }
        }
    }
}
