//! Differential: captures written by the pcap-file crate (an independent
//! writer) read back through v6fw's reader with the same frames, lengths,
//! truncation flags, link types and timestamps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::borrow::Cow;
use std::io::Cursor;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};
use v6fw_capture::file::CaptureFile;

/// Frames of varied sizes (one past 65,535 bytes), some cut short.
fn frames() -> Vec<(Vec<u8>, u32, Duration)> {
    (0..40u32)
        .map(|i| {
            let len = match i {
                7 => 80_000,
                _ => 14 + 40 + (i as usize * 37) % 1500,
            };
            let data: Vec<u8> = (0..len).map(|b| (b as u32 ^ i) as u8).collect();
            let orig = if i % 5 == 0 {
                len as u32 + 100
            } else {
                len as u32
            };
            let ts = Duration::new(1_767_225_600 + u64::from(i), i * 1_234_567);
            (data, orig, ts)
        })
        .collect()
}

fn read_all(bytes: Vec<u8>) -> Vec<(Vec<u8>, bool, u32, u64)> {
    let size = bytes.len() as u64;
    let mut f =
        CaptureFile::from_reader("written.pcap", Box::new(Cursor::new(bytes)), size).unwrap();
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(frame) = f.next_frame() {
        let frame = frame.unwrap();
        n += 1;
        assert_eq!(frame.number, n);
        out.push((
            frame.data.to_vec(),
            frame.truncated,
            frame.linktype,
            frame.timestamp_ns,
        ));
    }
    assert_eq!(f.position(), size);
    out
}

#[test]
fn pcap_written_by_pcap_file_reads_back() {
    for (endianness, resolution) in [
        (Endianness::Little, TsResolution::MicroSecond),
        (Endianness::Big, TsResolution::NanoSecond),
    ] {
        let header = PcapHeader {
            snaplen: 262_144,
            datalink: DataLink::ETHERNET,
            ts_resolution: resolution,
            endianness,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        let frames = frames();
        for (data, orig, ts) in &frames {
            w.write_packet(&PcapPacket::new(*ts, *orig, data)).unwrap();
        }
        let read = read_all(w.into_writer());
        assert_eq!(read.len(), frames.len());
        for ((data, orig, ts), (got, truncated, link, ts_ns)) in frames.iter().zip(&read) {
            assert_eq!(got, data);
            assert_eq!(*truncated, *orig as usize > data.len());
            assert_eq!(*link, 1);
            let want = match resolution {
                TsResolution::MicroSecond => ts.as_nanos() as u64 / 1_000 * 1_000,
                TsResolution::NanoSecond => ts.as_nanos() as u64,
            };
            assert_eq!(*ts_ns, want);
        }
    }
}

#[test]
fn pcapng_written_by_pcap_file_reads_back() {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    for link in [DataLink::ETHERNET, DataLink::RAW] {
        w.write_pcapng_block(InterfaceDescriptionBlock::new(link, 262_144))
            .unwrap();
    }
    let frames = frames();
    for (i, (data, orig, ts)) in frames.iter().enumerate() {
        let epb = EnhancedPacketBlock {
            interface_id: (i % 2) as u32,
            timestamp: *ts,
            original_len: *orig,
            data: Cow::Borrowed(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
    let read = read_all(w.into_inner());
    assert_eq!(read.len(), frames.len());
    for (i, ((data, orig, _), (got, truncated, link, _))) in frames.iter().zip(&read).enumerate() {
        assert_eq!(got, data, "frame {}", i + 1);
        assert_eq!(*truncated, *orig as usize > data.len());
        assert_eq!(*link, if i % 2 == 0 { 1 } else { 101 });
    }
}
