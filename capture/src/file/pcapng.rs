//! pcapng blocks: section headers, interface descriptions and the packet
//! blocks (enhanced, simple, obsolete), plus systemd journal export blocks,
//! which tshark numbers as frames. Other blocks are skipped.

use std::io::{self, Read};

use super::{CaptureError, CaptureFile, Location, Record, LINKTYPE_NONE};

/// pcapng block types.
pub(super) const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OBSOLETE_PACKET: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const ENHANCED_PACKET: u32 = 6;
const SYSTEMD_JOURNAL: u32 = 9;

/// A pcapng interface, from its interface description block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second (`if_tsresol`, default 10^6).
    units_per_sec: u128,
    /// Seconds added to every timestamp (`if_tsoffset`, default 0).
    offset_s: i64,
}

impl CaptureFile {
    /// Reads pcapng blocks up to the next frame: None at a clean end of file.
    pub(super) fn next_pcapng(&mut self) -> Result<Option<Record>, CaptureError> {
        loop {
            let offset = self.pos;
            let mut block_type = [0u8; 4];
            match self.read_some(&mut block_type, Location::Block { offset })? {
                4 => {}
                0 => return Ok(None),
                got => {
                    let what = format!("the block type ends after {got} bytes");
                    return Err(self.truncated(Location::Block { offset }, what));
                }
            }
            if u32::from_be_bytes(block_type) == SHB {
                self.read_shb(Location::Block { offset })?;
                continue;
            }
            let ty = self.u32_at(&block_type, 0);
            let at = match ty {
                ENHANCED_PACKET | SIMPLE_PACKET | OBSOLETE_PACKET | SYSTEMD_JOURNAL => {
                    self.frame_at(offset)
                }
                _ => Location::Block { offset },
            };
            let total = self.read_block_len(at)?;
            let record = match ty {
                IDB => {
                    let body = self.read_block(total, 8, at)?;
                    self.parse_idb(body, at)?;
                    continue;
                }
                ENHANCED_PACKET | OBSOLETE_PACKET => {
                    let body = self.read_block(total, 8, at)?;
                    self.parse_packet(body, at, ty == OBSOLETE_PACKET)?
                }
                SIMPLE_PACKET => {
                    let body = self.read_block(total, 8, at)?;
                    self.parse_simple(body, at)?
                }
                SYSTEMD_JOURNAL => {
                    let body = self.read_block(total, 8, at)?;
                    Record {
                        timestamp_ns: 0,
                        linktype: LINKTYPE_NONE,
                        data: 0..body,
                        truncated: false,
                    }
                }
                _ => {
                    self.skip_block(total, at)?;
                    continue;
                }
            };
            return Ok(Some(record));
        }
    }

    /// Reads a section header block whose type (4 bytes) was just read: its
    /// byte-order magic sets the byte order of the section, and the section
    /// starts with no interfaces.
    pub(super) fn read_shb(&mut self, at: Location) -> Result<(), CaptureError> {
        let mut head = [0u8; 8];
        let got = self.read_some(&mut head, at)?;
        if got < head.len() {
            let what = format!("the section header block ends after {} bytes", got + 4);
            return Err(self.truncated(at, what));
        }
        let [l0, l1, l2, l3, b0, b1, b2, b3] = head;
        self.big = match u32::from_be_bytes([b0, b1, b2, b3]) {
            0x1A2B_3C4D => true,
            0x4D3C_2B1A => false,
            bom => {
                let what = format!("section header byte-order magic 0x{bom:08x} is not 0x1a2b3c4d");
                return Err(self.corrupt(at, what));
            }
        };
        self.interfaces.clear();
        let total = self.u32_at(&[l0, l1, l2, l3], 0);
        if total < 28 || !total.is_multiple_of(4) {
            let what = format!(
                "section header block length {total} is not a multiple of 4 of at least 28"
            );
            return Err(self.corrupt(at, what));
        }
        self.check_len(total, at, "section header block")?;
        // Type, length and byte-order magic are read; version, section length
        // and options follow.
        self.read_block(total, 12, at)?;
        let major = self.u16_at(&self.buf, 0);
        if major != 1 {
            let minor = self.u16_at(&self.buf, 2);
            let what = format!("pcapng version {major}.{minor} is not 1.x");
            return Err(self.unsupported(at, what));
        }
        Ok(())
    }

    /// Reads a block's total length (its type was just read) and checks it.
    fn read_block_len(&mut self, at: Location) -> Result<u32, CaptureError> {
        let mut len = [0u8; 4];
        let got = self.read_some(&mut len, at)?;
        if got < len.len() {
            let what = format!("the block length ends after {} bytes", got + 4);
            return Err(self.truncated(at, what));
        }
        let total = self.u32_at(&len, 0);
        if total < 12 || !total.is_multiple_of(4) {
            let what = format!("block length {total} is not a multiple of 4 of at least 12");
            return Err(self.corrupt(at, what));
        }
        Ok(total)
    }

    /// Reads the rest of a block of `total` bytes, of which `before` are read,
    /// into `buf`; checks that its trailing length repeats `total`. Returns
    /// the length of the body part in `buf` (without the trailing length).
    fn read_block(&mut self, total: u32, before: u32, at: Location) -> Result<usize, CaptureError> {
        let len = self
            .check_len(total, at, "block")?
            .saturating_sub(before as usize);
        let got = self.fill_buf(len, at)?;
        if got < len {
            let what = format!(
                "block says {total} bytes but the file ends after {}",
                got.saturating_add(before as usize)
            );
            return Err(self.truncated(at, what));
        }
        let body = len.saturating_sub(4);
        self.total_matches(body, total, at)?;
        Ok(body)
    }

    /// Checks the trailing length, at `buf[body..]`, against `total`.
    fn total_matches(&self, body: usize, total: u32, at: Location) -> Result<(), CaptureError> {
        let trailer = self.u32_at(&self.buf, body);
        if trailer == total {
            return Ok(());
        }
        let what = format!("block length is {total} at its start but {trailer} at its end");
        Err(self.corrupt(at, what))
    }

    /// Skips a block of `total` bytes that does not matter here (its type and
    /// length are read), checking its trailing length, in constant memory.
    fn skip_block(&mut self, total: u32, at: Location) -> Result<(), CaptureError> {
        let want = u64::from(total).saturating_sub(12);
        let skipped = io::copy(&mut (&mut self.input).take(want), &mut io::sink())
            .map_err(|source| self.io(at, source))?;
        self.pos = self.pos.saturating_add(skipped);
        let mut trailer = [0u8; 4];
        let got = if skipped < want {
            0
        } else {
            self.read_some(&mut trailer, at)?
        };
        if got < trailer.len() {
            let have = skipped.saturating_add(8).saturating_add(got as u64);
            let what = format!("block says {total} bytes but the file ends after {have}");
            return Err(self.truncated(at, what));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&trailer);
        self.total_matches(0, total, at)
    }

    /// Parses an interface description block in `buf`.
    fn parse_idb(&mut self, body: usize, at: Location) -> Result<(), CaptureError> {
        let block = self.buf.get(..body).unwrap_or_default();
        if block.len() < 8 {
            let what = format!("interface description block body is {body} bytes, less than 8");
            return Err(self.corrupt(at, what));
        }
        let mut iface = Interface {
            linktype: u32::from(self.u16_at(block, 0)),
            snaplen: self.u32_at(block, 4),
            units_per_sec: 1_000_000,
            offset_s: 0,
        };
        let mut options = block.get(8..).unwrap_or_default();
        while let Some((head, rest)) = options.split_first_chunk::<4>() {
            let code = self.u16_at(head, 0);
            let len = usize::from(self.u16_at(head, 2));
            let Some(value) = rest.get(..len) else {
                tracing::warn!(
                    "{}: {at}: interface option {code} runs past its block",
                    self.name
                );
                break;
            };
            match (code, value) {
                (0, _) => break,
                (9, &[res]) => {
                    let exp = u32::from(res & 0x7F);
                    let base: u128 = if res & 0x80 == 0 { 10 } else { 2 };
                    iface.units_per_sec = match base.checked_pow(exp) {
                        Some(units) if exp <= 64 => units,
                        _ => {
                            let what = format!(
                                "interface time stamp resolution 0x{res:02x} is out of range"
                            );
                            return Err(self.unsupported(at, what));
                        }
                    };
                }
                (14, value) => {
                    if let Some(bytes) = value.first_chunk::<8>() {
                        iface.offset_s = if self.big {
                            i64::from_be_bytes(*bytes)
                        } else {
                            i64::from_le_bytes(*bytes)
                        };
                    }
                }
                _ => {}
            }
            options = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// Parses an enhanced (or obsolete) packet block in `buf`.
    fn parse_packet(
        &self,
        body: usize,
        at: Location,
        obsolete: bool,
    ) -> Result<Record, CaptureError> {
        let block = self.buf.get(..body).unwrap_or_default();
        if block.len() < 20 {
            let what = format!("packet block body is {body} bytes, less than 20");
            return Err(self.corrupt(at, what));
        }
        let id = if obsolete {
            u32::from(self.u16_at(block, 0))
        } else {
            self.u32_at(block, 0)
        };
        let iface = self.interface(id, at)?;
        let ts = (u64::from(self.u32_at(block, 4)) << 32) | u64::from(self.u32_at(block, 8));
        let caplen = self.u32_at(block, 12) as usize;
        let origlen = self.u32_at(block, 16) as usize;
        if caplen > body - 20 {
            let what = format!(
                "packet says {caplen} captured bytes but its block holds only {}",
                body - 20
            );
            return Err(self.corrupt(at, what));
        }
        let scaled = u128::from(ts) * 1_000_000_000 / iface.units_per_sec;
        let ns = i128::try_from(scaled).unwrap_or(i128::MAX)
            + i128::from(iface.offset_s) * 1_000_000_000;
        Ok(Record {
            timestamp_ns: u64::try_from(ns.max(0)).unwrap_or(u64::MAX),
            linktype: iface.linktype,
            data: 20..20 + caplen,
            truncated: caplen < origlen,
        })
    }

    /// Parses a simple packet block in `buf` (interface 0, no timestamp).
    fn parse_simple(&self, body: usize, at: Location) -> Result<Record, CaptureError> {
        let block = self.buf.get(..body).unwrap_or_default();
        if block.len() < 4 {
            let what = format!("simple packet block body is {body} bytes, less than 4");
            return Err(self.corrupt(at, what));
        }
        let iface = self.interface(0, at)?;
        let origlen = self.u32_at(block, 0) as usize;
        let mut caplen = origlen.min(body - 4);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        Ok(Record {
            timestamp_ns: 0,
            linktype: iface.linktype,
            data: 4..4 + caplen,
            truncated: caplen < origlen,
        })
    }

    /// The interface a packet block names.
    fn interface(&self, id: u32, at: Location) -> Result<Interface, CaptureError> {
        let found = usize::try_from(id)
            .ok()
            .and_then(|i| self.interfaces.get(i));
        found.copied().ok_or_else(|| {
            let what = format!(
                "packet names interface {id} but its section describes {} interface(s)",
                self.interfaces.len()
            );
            self.corrupt(at, what)
        })
    }
}
