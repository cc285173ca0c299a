//! pcap and pcapng capture files, streamed in constant memory.
//!
//! [`CaptureFile`] reads one frame at a time into a buffer it reuses, so a
//! capture of any size takes the memory of its largest frame. Both formats are
//! parsed here rather than with a crate: the corpus holds 80 KB frames
//! (BIG TCP, jumbograms) that are larger than the files' snap length, pcapng
//! files with more than a hundred interfaces, and fuzzed files, and every
//! error has to name the file and the frame or byte where it happened.
//!
//! Frames are numbered from 1 as tshark numbers them: every pcap record and
//! every pcapng packet block (enhanced, simple, obsolete) and systemd journal
//! export block counts, whatever its link type.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::path::Path;

use crate::link;

mod pcapng;

use pcapng::{Interface, SHB};

/// The largest frame or pcapng block accepted (16 MiB). Real frames stay below
/// 1 MiB even with BIG TCP; a larger length means a corrupt record.
pub const MAX_RECORD_BYTES: u32 = 16 << 20;

/// The link type given to frames that have none: pcapng systemd journal export
/// blocks, which tshark numbers as frames. They never carry an IPv6 packet.
pub const LINKTYPE_NONE: u32 = u32::MAX;

/// Where in a capture file something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The file header (pcap) or the first section header block (pcapng).
    Header,
    /// A frame, with its number (from 1) and the byte offset of its record or
    /// block.
    Frame {
        /// Frame number, from 1 as tshark counts.
        number: u64,
        /// Byte offset of the frame's record (pcap) or block (pcapng).
        offset: u64,
    },
    /// A pcapng block that is not a packet, by its byte offset.
    Block {
        /// Byte offset of the block.
        offset: u64,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Header => f.write_str("file header"),
            Location::Frame { number, offset } => write!(f, "frame {number} at byte {offset}"),
            Location::Block { offset } => write!(f, "block at byte {offset}"),
        }
    }
}

/// Why a capture file could not be read. Every message names the file, where
/// in it the problem is, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The path does not exist.
    #[error("{file}: no such file")]
    NotFound {
        /// The path as given.
        file: String,
    },
    /// The path is a directory.
    #[error("{file}: is a directory, not a capture file")]
    IsDirectory {
        /// The path as given.
        file: String,
    },
    /// The file exists but cannot be opened (permissions, ...).
    #[error("{file}: cannot open: {source}")]
    Open {
        /// The path as given.
        file: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file has no bytes at all.
    #[error("{file}: the file is empty, not a capture file")]
    Empty {
        /// The path as given.
        file: String,
    },
    /// The file starts with neither a pcap nor a pcapng magic number.
    #[error("{file}: not a pcap or pcapng file (magic 0x{magic:08x})")]
    UnknownMagic {
        /// The path as given.
        file: String,
        /// The first four bytes, in file order.
        magic: u32,
    },
    /// The file ends inside a header, record or block.
    #[error("{file}: {at}: {what}: the file is truncated or corrupt")]
    Truncated {
        /// The path as given.
        file: String,
        /// Where.
        at: Location,
        /// What was expected.
        what: String,
    },
    /// A header, record or block holds impossible values.
    #[error("{file}: {at}: {what}: the file is corrupt")]
    Corrupt {
        /// The path as given.
        file: String,
        /// Where.
        at: Location,
        /// What is wrong.
        what: String,
    },
    /// A valid file in a variant this reader does not handle.
    #[error("{file}: {at}: {what}: convert the file with `editcap -F pcap` and retry")]
    Unsupported {
        /// The path as given.
        file: String,
        /// Where.
        at: Location,
        /// What is not supported.
        what: String,
    },
    /// The operating system failed a read.
    #[error("{file}: {at}: read error: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// Where.
        at: Location,
        /// The operating system's error.
        source: io::Error,
    },
}

/// One frame of a capture file, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Frame number, from 1, as tshark counts (every packet record or block,
    /// whatever its link type).
    pub number: u64,
    /// Capture timestamp in nanoseconds since the Unix epoch (0 when the
    /// format records none, as in pcapng simple packet blocks).
    pub timestamp_ns: u64,
    /// The frame's link type (pcapng: its interface's).
    pub linktype: u32,
    /// The captured bytes, link-layer header included.
    pub data: &'a [u8],
    /// The capture's snap length cut the frame: fewer bytes were captured than
    /// the frame had on the wire.
    pub truncated: bool,
}

impl Frame<'_> {
    /// The IPv6 packet in this frame, without its link-layer header; None when
    /// the frame carries none. See [`link::ipv6_payload`].
    pub fn ipv6(&self) -> Option<&[u8]> {
        link::ipv6_payload(self.linktype, self.data)
    }
}

/// The format of the open file.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// pcap, with the fields of its file header.
    Pcap {
        /// Fractions of a second are nanoseconds, not microseconds.
        nanos: bool,
        /// Bytes per record header beyond the standard 16 (8 for the modified
        /// "Kuznetzov" format).
        extra: usize,
        /// The link type of every record.
        linktype: u32,
    },
    /// pcapng; the section state lives in the reader.
    Pcapng,
}

/// What a record or block yielded; the bytes are `buf[data]`.
#[derive(Debug)]
pub(crate) struct Record {
    timestamp_ns: u64,
    linktype: u32,
    data: Range<usize>,
    truncated: bool,
}

/// `reader` itself, or a gzip decoder over it when it starts with gzip's
/// magic (RFC 1952: 0x1f 0x8b); says which.
fn ungzip(
    name: &str,
    reader: Box<dyn Read + Send>,
) -> Result<(Box<dyn Read + Send>, bool), CaptureError> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().map_err(|source| CaptureError::Open {
        file: name.to_string(),
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // Several gzip members in a row are one stream (as `zcat` reads them).
        Ok((Box::new(flate2::bufread::MultiGzDecoder::new(reader)), true))
    } else {
        Ok((Box::new(reader), false))
    }
}

/// A pcap or pcapng file open for reading, frame after frame.
pub struct CaptureFile {
    /// The path as given, for messages.
    name: String,
    input: BufReader<Box<dyn Read + Send>>,
    size: u64,
    /// Bytes consumed so far.
    pos: u64,
    /// Frame (or block) bytes, reused from frame to frame.
    buf: Vec<u8>,
    kind: Kind,
    /// Multi-byte fields are big-endian (pcap file / current pcapng section).
    big: bool,
    /// The interfaces of the current pcapng section.
    interfaces: Vec<Interface>,
    /// Frames returned so far.
    frames: u64,
    /// The end or an error was reached: no more frames.
    done: bool,
}

impl fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureFile")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("pos", &self.pos)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Opens a pcap or pcapng file (detected by magic number), gzip-compressed
    /// or not (detected by gzip's own magic, whatever the file is called);
    /// `-` reads standard input, as tcpdump's `-r -` does.
    pub fn open(path: &Path) -> Result<CaptureFile, CaptureError> {
        if path.as_os_str() == "-" {
            let (reader, _) = ungzip("stdin", Box::new(io::stdin()))?;
            return Self::from_reader("stdin", reader, 0);
        }
        let name = path.display().to_string();
        let file = match File::open(path) {
            Ok(file) => file,
            Err(_) if path.is_dir() => return Err(CaptureError::IsDirectory { file: name }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CaptureError::NotFound { file: name })
            }
            Err(source) => return Err(CaptureError::Open { file: name, source }),
        };
        let meta = file.metadata().map_err(|source| CaptureError::Open {
            file: name.clone(),
            source,
        })?;
        if meta.is_dir() {
            return Err(CaptureError::IsDirectory { file: name });
        }
        let (reader, gzipped) = ungzip(&name, Box::new(file))?;
        // The size drives a progress bar against bytes read: unknown when
        // what is read is the decompressed stream.
        let size = if gzipped { 0 } else { meta.len() };
        Self::from_reader(name, reader, size)
    }

    /// Reads a capture from any reader: `name` names it in messages, `size`
    /// is its length in bytes (for progress). For captures that are not files
    /// (tests, fuzzing, a pipe).
    pub fn from_reader(
        name: impl Into<String>,
        reader: Box<dyn Read + Send>,
        size: u64,
    ) -> Result<CaptureFile, CaptureError> {
        let mut this = CaptureFile {
            name: name.into(),
            input: BufReader::with_capacity(64 * 1024, reader),
            size,
            pos: 0,
            buf: Vec::new(),
            kind: Kind::Pcapng,
            big: false,
            interfaces: Vec::new(),
            frames: 0,
            done: false,
        };
        this.read_file_header()?;
        Ok(this)
    }

    /// The next frame; None at the end of the file. After an error, None.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        let next = match self.kind {
            Kind::Pcap {
                nanos,
                extra,
                linktype,
            } => self.next_pcap(nanos, extra, linktype),
            Kind::Pcapng => self.next_pcapng(),
        };
        match next {
            Ok(Some(record)) => {
                self.frames = self.frames.saturating_add(1);
                Some(Ok(Frame {
                    number: self.frames,
                    timestamp_ns: record.timestamp_ns,
                    linktype: record.linktype,
                    data: self.buf.get(record.data).unwrap_or_default(),
                    truncated: record.truncated,
                }))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Bytes consumed so far (for a progress bar).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The file size in bytes when it was opened (for a progress bar).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the pcap file header, or the first pcapng section header block.
    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        let at = Location::Header;
        let mut magic = [0u8; 4];
        match self.read_some(&mut magic, at)? {
            4 => {}
            0 => {
                return Err(CaptureError::Empty {
                    file: self.name.clone(),
                })
            }
            got => return Err(self.truncated(at, format!("the file is only {got} bytes long"))),
        }
        let (big, nanos, extra) = match u32::from_be_bytes(magic) {
            SHB => {
                self.kind = Kind::Pcapng;
                return self.read_shb(at);
            }
            0xA1B2_C3D4 => (true, false, 0),
            0xD4C3_B2A1 => (false, false, 0),
            0xA1B2_3C4D => (true, true, 0),
            0x4D3C_B2A1 => (false, true, 0),
            0xA1B2_CD34 => (true, false, 8),
            0x34CD_B2A1 => (false, false, 8),
            magic => {
                return Err(CaptureError::UnknownMagic {
                    file: self.name.clone(),
                    magic,
                })
            }
        };
        self.big = big;
        // version (2+2), thiszone (4), sigfigs (4), snaplen (4), linktype (4).
        let mut rest = [0u8; 20];
        let got = self.read_some(&mut rest, at)?;
        if got < rest.len() {
            let what = format!("the 24-byte pcap header ends after {} bytes", got + 4);
            return Err(self.truncated(at, what));
        }
        let major = self.u16_at(&rest, 0);
        if major != 2 {
            let what = format!("pcap version {major}.{} is not 2.x", self.u16_at(&rest, 2));
            return Err(self.unsupported(at, what));
        }
        // The upper bits of the link type field carry FCS information.
        let linktype = self.u32_at(&rest, 16) & 0xFFFF;
        self.kind = Kind::Pcap {
            nanos,
            extra,
            linktype,
        };
        Ok(())
    }

    /// Reads one pcap record: None at a clean end of file.
    fn next_pcap(
        &mut self,
        nanos: bool,
        extra: usize,
        linktype: u32,
    ) -> Result<Option<Record>, CaptureError> {
        let at = self.frame_at(self.pos);
        let mut header = [0u8; 24];
        let header = header.get_mut(..16 + extra).unwrap_or_default();
        let got = self.read_some(header, at)?;
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            let what = format!(
                "the {}-byte record header ends after {got} bytes",
                header.len()
            );
            return Err(self.truncated(at, what));
        }
        let secs = u64::from(self.u32_at(header, 0));
        let frac = u64::from(self.u32_at(header, 4));
        let caplen = self.u32_at(header, 8);
        let origlen = self.u32_at(header, 12);
        let caplen = self.check_len(caplen, at, "record")?;
        let got = self.fill_buf(caplen, at)?;
        if got < caplen {
            let what = format!("record says {caplen} bytes but the file ends after {got}");
            return Err(self.truncated(at, what));
        }
        let frac_ns = if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        Ok(Some(Record {
            timestamp_ns: secs.saturating_mul(1_000_000_000).saturating_add(frac_ns),
            linktype,
            data: 0..caplen,
            truncated: caplen < origlen as usize,
        }))
    }

    /// Where the next frame, whose record or block starts at `offset`, is.
    fn frame_at(&self, offset: u64) -> Location {
        Location::Frame {
            number: self.frames.saturating_add(1),
            offset,
        }
    }

    /// Checks a record or block length against [`MAX_RECORD_BYTES`].
    fn check_len(&self, len: u32, at: Location, what: &str) -> Result<usize, CaptureError> {
        if len > MAX_RECORD_BYTES {
            let what =
                format!("{what} says {len} bytes, more than the limit of {MAX_RECORD_BYTES}");
            return Err(self.corrupt(at, what));
        }
        Ok(len as usize)
    }

    /// Reads up to `len` bytes into `buf` and returns how many the file had;
    /// `buf` grows only as bytes arrive, so a corrupt length allocates nothing.
    fn fill_buf(&mut self, len: usize, at: Location) -> Result<usize, CaptureError> {
        self.buf.clear();
        let got = (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut self.buf)
            .map_err(|source| self.io(at, source))?;
        self.pos = self.pos.saturating_add(got as u64);
        Ok(got)
    }

    /// Reads into `dst` until it is full or the file ends; returns the count.
    fn read_some(&mut self, dst: &mut [u8], at: Location) -> Result<usize, CaptureError> {
        let mut got = 0;
        while let Some(rest) = dst.get_mut(got..).filter(|rest| !rest.is_empty()) {
            match self.input.read(rest) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(self.io(at, source)),
            }
        }
        self.pos = self.pos.saturating_add(got as u64);
        Ok(got)
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> u16 {
        match bytes.get(at..).and_then(<[u8]>::first_chunk::<2>) {
            Some(b) if self.big => u16::from_be_bytes(*b),
            Some(b) => u16::from_le_bytes(*b),
            None => 0,
        }
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> u32 {
        match bytes.get(at..).and_then(<[u8]>::first_chunk::<4>) {
            Some(b) if self.big => u32::from_be_bytes(*b),
            Some(b) => u32::from_le_bytes(*b),
            None => 0,
        }
    }

    fn truncated(&self, at: Location, what: String) -> CaptureError {
        let file = self.name.clone();
        CaptureError::Truncated { file, at, what }
    }

    fn corrupt(&self, at: Location, what: String) -> CaptureError {
        let file = self.name.clone();
        CaptureError::Corrupt { file, at, what }
    }

    fn unsupported(&self, at: Location, what: String) -> CaptureError {
        let file = self.name.clone();
        CaptureError::Unsupported { file, at, what }
    }

    fn io(&self, at: Location, source: io::Error) -> CaptureError {
        let file = self.name.clone();
        CaptureError::Io { file, at, source }
    }
}
