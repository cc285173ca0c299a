//! pcap and pcapng files built by hand: timestamps, link types, snap-length
//! cuts, block kinds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod file_util;

use file_util::{eth6, pcap, read_all, write, Ng, Owned};
use v6fw_capture::file::CaptureFile;

const T0: u64 = 1_700_000_000;

#[test]
fn pcap_microseconds_little_endian() {
    let f1 = eth6(10);
    let f2 = eth6(20);
    let bytes = pcap(
        false,
        false,
        1,
        65535,
        &[(T0, 123_456, &f1, 0), (T0 + 1, 0, &f2, 0)],
    );
    let (dir, path) = write(&bytes);
    let frames = read_all(&path).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].number, 1);
    assert_eq!(frames[1].number, 2);
    assert_eq!(frames[0].timestamp_ns, T0 * 1_000_000_000 + 123_456_000);
    assert_eq!(frames[1].timestamp_ns, (T0 + 1) * 1_000_000_000);
    assert_eq!(frames[0].linktype, 1);
    assert_eq!(frames[0].data, f1);
    assert_eq!(frames[0].ipv6.as_deref(), Some(&f1[14..]));
    assert!(!frames[0].truncated);
    drop(dir);
}

#[test]
fn pcap_nanoseconds_big_endian() {
    let f1 = eth6(0);
    let bytes = pcap(true, true, 1, 65535, &[(T0, 123_456_789, &f1, 0)]);
    let (_dir, path) = write(&bytes);
    let frames = read_all(&path).unwrap();
    assert_eq!(frames[0].timestamp_ns, T0 * 1_000_000_000 + 123_456_789);
    assert_eq!(frames[0].data, f1);
}

#[test]
fn pcap_nanoseconds_little_endian_and_raw_ipv6() {
    let ip = eth6(4)[14..].to_vec();
    let bytes = pcap(true, false, 229, 65535, &[(T0, 5, &ip, 0)]);
    let (_dir, path) = write(&bytes);
    let frames = read_all(&path).unwrap();
    assert_eq!(frames[0].timestamp_ns, T0 * 1_000_000_000 + 5);
    assert_eq!(frames[0].linktype, 229);
    assert_eq!(frames[0].ipv6.as_deref(), Some(&ip[..]));
}

#[test]
fn pcap_snap_length_cut() {
    let whole = eth6(1446);
    let cut = &whole[..96];
    let bytes = pcap(false, false, 1, 96, &[(T0, 0, cut, 1500), (T0, 1, cut, 96)]);
    let (_dir, path) = write(&bytes);
    let frames = read_all(&path).unwrap();
    assert!(frames[0].truncated);
    assert_eq!(frames[0].data.len(), 96);
    assert_eq!(frames[0].ipv6.as_ref().unwrap().len(), 82);
    assert!(!frames[1].truncated);
}

#[test]
fn pcap_frames_larger_than_snaplen_and_64k() {
    let big = eth6(80_000);
    let bytes = pcap(false, false, 1, 65535, &[(T0, 0, &big, 0)]);
    let (_dir, path) = write(&bytes);
    let frames = read_all(&path).unwrap();
    assert_eq!(frames[0].data.len(), big.len());
    assert!(!frames[0].truncated);
}

#[test]
fn pcap_link_type_upper_bits_ignored() {
    // FCS length bits set above the link type.
    let f = eth6(0);
    let bytes = pcap(false, false, 0x1400_0001, 65535, &[(T0, 0, &f, 0)]);
    let (_dir, path) = write(&bytes);
    assert_eq!(read_all(&path).unwrap()[0].linktype, 1);
}

#[test]
fn pcap_modified_kuznetzov_format() {
    let f = eth6(0);
    let mut bytes = pcap(false, false, 1, 65535, &[]);
    bytes[..4].copy_from_slice(&0xA1B2_CD34u32.to_le_bytes());
    for word in [T0 as u32, 7, f.len() as u32, f.len() as u32, 3, 0x86DD_0000] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.extend_from_slice(&f);
    let (_dir, path) = write(&bytes);
    let frames = read_all(&path).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, f);
    assert_eq!(frames[0].timestamp_ns, T0 * 1_000_000_000 + 7_000);
}

#[test]
fn position_and_size() {
    let f = eth6(10);
    let bytes = pcap(false, false, 1, 65535, &[(T0, 0, &f, 0)]);
    let (_dir, path) = write(&bytes);
    let mut file = CaptureFile::open(&path).unwrap();
    assert_eq!(file.size(), bytes.len() as u64);
    assert_eq!(file.position(), 24);
    assert!(file.next_frame().unwrap().is_ok());
    assert_eq!(file.position(), file.size());
    assert!(file.next_frame().is_none());
    assert!(file.next_frame().is_none());
}

#[test]
fn pcapng_tsresol_and_tsoffset() {
    let f = eth6(0);
    let ip = f[14..].to_vec();
    for big in [false, true] {
        let mut ng = Ng::new(big);
        ng.idb(1, 0, &[]); // 0: default microseconds
        ng.idb(1, 0, &[(9, &[9])]); // 1: nanoseconds
        ng.idb(229, 0, &[(9, &[0x80 | 20])]); // 2: 2^-20 s
        let offset = 100i64;
        let offset = if big {
            offset.to_be_bytes()
        } else {
            offset.to_le_bytes()
        };
        ng.idb(1, 0, &[(2, b"eth0\0\0\0\0"), (9, &[3]), (14, &offset)]); // 3: ms + 100 s
        ng.epb(0, T0 * 1_000_000 + 1, &f, None);
        ng.epb(1, T0 * 1_000_000_000 + 1, &f, None);
        ng.epb(2, (T0 << 20) + (1 << 19), &ip, None);
        ng.epb(3, T0 * 1000 + 2, &f, None);
        let (_dir, path) = write(&ng.out);
        let frames = read_all(&path).unwrap();
        let ns = T0 * 1_000_000_000;
        let ts: Vec<u64> = frames.iter().map(|f| f.timestamp_ns).collect();
        assert_eq!(
            ts,
            [
                ns + 1000,
                ns + 1,
                ns + 500_000_000,
                ns + 100_000_000_000 + 2_000_000
            ]
        );
        let lts: Vec<u32> = frames.iter().map(|f| f.linktype).collect();
        assert_eq!(lts, [1, 1, 229, 1]);
        assert_eq!(frames[2].ipv6.as_deref(), Some(&ip[..]));
        assert!(frames.iter().all(|f| f.ipv6.is_some()));
    }
}

#[test]
fn pcapng_sections_blocks_and_numbering() {
    let f = eth6(3);
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    ng.block(4, &[0, 0, 0, 0]); // name resolution: not a frame
    ng.epb(0, 1, &f, Some(1500)); // cut
    ng.block(5, &[0; 12]); // interface statistics: not a frame
    ng.block(0x0000_0BAD, &[1, 2, 3, 4, 5]); // custom: not a frame
    ng.obsolete(0, 2, &f);
    ng.simple(&f, f.len() as u32);
    // A second section, big-endian, with its own interfaces.
    ng.big = true;
    ng.shb();
    ng.idb(113, 0, &[]);
    ng.epb(0, 3, &f, None);
    let (_dir, path) = write(&ng.out);
    let frames = read_all(&path).unwrap();
    let numbers: Vec<u64> = frames.iter().map(|f| f.number).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert!(frames[0].truncated);
    assert!(!frames[1].truncated);
    assert_eq!(frames[1].timestamp_ns, 2_000);
    assert_eq!(frames[2].timestamp_ns, 0, "simple packets carry no time");
    assert_eq!(frames[2].data, f);
    assert_eq!(frames[3].linktype, 113);
    assert!(frames[..3].iter().all(|fr| fr.data == f));
}

#[test]
fn pcapng_simple_packet_cut_by_snaplen() {
    let f = eth6(100);
    let mut ng = Ng::new(false);
    ng.idb(1, 64, &[]);
    ng.simple(&f[..64], f.len() as u32);
    let (_dir, path) = write(&ng.out);
    let frames = read_all(&path).unwrap();
    assert_eq!(frames[0].data.len(), 64);
    assert!(frames[0].truncated);
}

#[test]
fn pcapng_journal_export_is_a_frame_without_ipv6() {
    let f = eth6(0);
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    ng.block(9, b"__REALTIME_TIMESTAMP=1\nMESSAGE=hi\n");
    ng.epb(0, 1, &f, None);
    let (_dir, path) = write(&ng.out);
    let frames: Vec<Owned> = read_all(&path).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].ipv6, None);
    assert_eq!(frames[1].number, 2);
}

#[test]
fn pcapng_many_interfaces() {
    let f = eth6(0);
    let mut ng = Ng::new(false);
    for i in 0..300 {
        ng.idb(if i % 2 == 0 { 1 } else { 113 }, 0, &[]);
    }
    ng.epb(299, 1, &f, None);
    ng.epb(298, 1, &f, None);
    let (_dir, path) = write(&ng.out);
    let frames = read_all(&path).unwrap();
    assert_eq!(frames[0].linktype, 113);
    assert_eq!(frames[1].linktype, 1);
}
