//! A classic pcap file written frame by frame (microsecond timestamps).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// LINKTYPE_ETHERNET.
pub const ETHERNET: u32 = 1;
/// LINKTYPE_RAW: each frame is an IP packet.
pub const RAW: u32 = 101;

/// Writes a pcap file (little-endian, version 2.4, snap length 65,535).
pub struct PcapWriter(BufWriter<File>);

impl PcapWriter {
    /// Creates `path` with link type `linktype`.
    pub fn create(path: &Path, linktype: u32) -> Self {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
        f.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
        f.write_all(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        f.write_all(&65535u32.to_le_bytes()).unwrap();
        f.write_all(&linktype.to_le_bytes()).unwrap();
        PcapWriter(f)
    }

    /// Appends one whole frame captured at `sec` + `usec`.
    pub fn frame(&mut self, sec: u32, usec: u32, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).unwrap();
        for word in [sec, usec, len, len] {
            self.0.write_all(&word.to_le_bytes()).unwrap();
        }
        self.0.write_all(bytes).unwrap();
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) {
        self.0.flush().unwrap();
    }
}
