//! Builders for hand-made pcap and pcapng files, shared by the file_* tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code
)]

use std::path::{Path, PathBuf};

use v6fw_capture::file::{CaptureError, CaptureFile};

/// A frame copied out of the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub number: u64,
    pub timestamp_ns: u64,
    pub linktype: u32,
    pub data: Vec<u8>,
    pub truncated: bool,
    pub ipv6: Option<Vec<u8>>,
}

/// Reads every frame, stopping at the first error.
pub fn read_all(path: &Path) -> Result<Vec<Owned>, CaptureError> {
    let mut file = CaptureFile::open(path)?;
    let mut out = Vec::new();
    while let Some(frame) = file.next_frame() {
        let frame = frame?;
        out.push(Owned {
            number: frame.number,
            timestamp_ns: frame.timestamp_ns,
            linktype: frame.linktype,
            data: frame.data.to_vec(),
            truncated: frame.truncated,
            ipv6: frame.ipv6().map(<[u8]>::to_vec),
        });
    }
    Ok(out)
}

/// Reads every frame; returns the frames read and the error that ended it.
pub fn read_until_error(path: &Path) -> (usize, Option<String>) {
    let mut file = match CaptureFile::open(path) {
        Ok(file) => file,
        Err(e) => return (0, Some(e.to_string())),
    };
    let mut n = 0;
    while let Some(frame) = file.next_frame() {
        match frame {
            Ok(_) => n += 1,
            Err(e) => {
                assert!(file.next_frame().is_none(), "frames after an error");
                return (n, Some(e.to_string()));
            }
        }
    }
    (n, None)
}

/// Writes `bytes` to `cap.pcap` in a new temporary directory.
pub fn write(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.pcap");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// An Ethernet frame carrying an IPv6 header and `payload` zero bytes.
pub fn eth6(payload: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xDD];
    etherparse::Ipv6Header {
        payload_length: payload.min(0xFFFF) as u16,
        next_header: etherparse::IpNumber(59),
        hop_limit: 64,
        ..Default::default()
    }
    .write(&mut f)
    .unwrap();
    f.resize(f.len() + payload, 0);
    f
}

/// A pcap file: records of (seconds, fraction, data, original length or 0
/// for the captured length).
pub fn pcap(
    nanos: bool,
    big: bool,
    linktype: u32,
    snaplen: u32,
    records: &[(u64, u32, &[u8], u32)],
) -> Vec<u8> {
    let u32b = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(snaplen));
    out.extend_from_slice(&u32b(linktype));
    for &(secs, frac, data, orig) in records {
        let caplen = data.len() as u32;
        let orig = if orig == 0 { caplen } else { orig };
        for v in [secs as u32, frac, caplen, orig] {
            out.extend_from_slice(&u32b(v));
        }
        out.extend_from_slice(data);
    }
    out
}

/// A pcapng file being built.
pub struct Ng {
    pub out: Vec<u8>,
    pub big: bool,
    /// Where each block ends.
    pub ends: Vec<usize>,
}

impl Ng {
    /// A file that starts with a section header block.
    pub fn new(big: bool) -> Ng {
        let mut ng = Ng {
            out: Vec::new(),
            big,
            ends: Vec::new(),
        };
        ng.shb();
        ng
    }

    pub fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    pub fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block: type, length, body padded to 4 bytes, length.
    pub fn block(&mut self, ty: u32, body: &[u8]) {
        let padded = body.len().next_multiple_of(4);
        let total = (padded + 12) as u32;
        self.out.extend_from_slice(&self.u32b(ty));
        self.out.extend_from_slice(&self.u32b(total));
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&self.u32b(total));
        self.ends.push(self.out.len());
    }

    pub fn shb(&mut self) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(0x1A2B_3C4D));
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&[0xFF; 8]);
        self.block(0x0A0D_0D0A, &body);
    }

    pub fn idb(&mut self, linktype: u16, snaplen: u32, options: &[(u16, &[u8])]) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(linktype));
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32b(snaplen));
        for &(code, value) in options {
            body.extend_from_slice(&self.u16b(code));
            body.extend_from_slice(&self.u16b(value.len() as u16));
            body.extend_from_slice(value);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        if !options.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body);
    }

    /// An enhanced packet block; `orig` defaults to the captured length.
    pub fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig: Option<u32>) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(iface));
        body.extend_from_slice(&self.u32b((ts >> 32) as u32));
        body.extend_from_slice(&self.u32b(ts as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(orig.unwrap_or(data.len() as u32)));
        body.extend_from_slice(data);
        self.block(6, &body);
    }

    /// An obsolete packet block (type 2).
    pub fn obsolete(&mut self, iface: u16, ts: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(iface));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b((ts >> 32) as u32));
        body.extend_from_slice(&self.u32b(ts as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(2, &body);
    }

    /// A simple packet block.
    pub fn simple(&mut self, data: &[u8], orig: u32) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(orig));
        body.extend_from_slice(data);
        self.block(3, &body);
    }
}

/// The name of a corpus capture relative to `root`, with `/` between the
/// parts whatever the OS writes (`tcpdump/x.pcap`, as INDEX.md and the
/// oracle lists have it, also on Windows).
pub fn corpus_name(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap();
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}
