//! Reading IPv6 packets out of pcap and pcapng files, for fuzz seed corpora.
//!
//! Only what seeding needs: the link types of the shared captures that carry
//! IPv6 directly (Ethernet with 802.1Q tags, raw IP 101/228/229, Linux cooked
//! 113/276, BSD loopback 0/108). Frames of other link types or ethertypes
//! are skipped. The capture backends in `v6fw-capture` are the real readers;
//! this one exists so the seed tool does not depend on them.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

/// One IPv6 packet taken from a capture.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The IP packet's bytes (link header removed).
    pub bytes: Vec<u8>,
    /// The capture cut the frame short (captured length < original length).
    pub truncated: bool,
}

const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: [u16; 2] = [0x8100, 0x88A8];

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?
        .first_chunk::<2>()
        .map(|x| u16::from_be_bytes(*x))
}

/// The IP packet inside one frame of link type `link`, if it is IPv6 (or
/// claims to be: the version nibble is left to the engine).
pub fn ip_payload(link: u32, frame: &[u8]) -> Option<&[u8]> {
    match link {
        101 | 228 | 229 => Some(frame),
        0 | 108 => frame.get(4..),
        1 => {
            let mut off = 12;
            let mut ty = be16(frame, off)?;
            while ETHERTYPE_VLAN.contains(&ty) {
                off += 4;
                ty = be16(frame, off)?;
            }
            (ty == ETHERTYPE_IPV6).then(|| frame.get(off + 2..))?
        }
        113 => (be16(frame, 14)? == ETHERTYPE_IPV6).then(|| frame.get(16..))?,
        276 => (be16(frame, 0)? == ETHERTYPE_IPV6).then(|| frame.get(20..))?,
        _ => None,
    }
}

fn push(out: &mut Vec<Extracted>, link: u32, frame: &[u8], orig_len: u32) {
    if let Some(ip) = ip_payload(link, frame) {
        let truncated = usize::try_from(orig_len).is_ok_and(|o| o > frame.len());
        out.push(Extracted {
            bytes: ip.to_vec(),
            truncated,
        });
    }
}

/// Every IPv6 packet in a pcap or pcapng file, in order.
pub fn read_ipv6(path: &Path) -> Result<Vec<Extracted>, String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut out = Vec::new();
    let file = File::open(path).map_err(|e| err(&e))?;
    if let Ok(mut reader) = PcapReader::new(BufReader::new(file)) {
        let link = u32::from(reader.header().datalink);
        while let Some(pkt) = reader.next_packet() {
            let pkt = pkt.map_err(|e| err(&e))?;
            push(&mut out, link, &pkt.data, pkt.orig_len);
        }
        return Ok(out);
    }
    let file = File::open(path).map_err(|e| err(&e))?;
    let mut reader = PcapNgReader::new(BufReader::new(file)).map_err(|e| err(&e))?;
    let mut links: Vec<u32> = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.map_err(|e| err(&e))? {
            Block::SectionHeader(_) => links.clear(),
            Block::InterfaceDescription(idb) => links.push(u32::from(idb.linktype)),
            Block::EnhancedPacket(epb) => {
                let link = usize::try_from(epb.interface_id)
                    .ok()
                    .and_then(|i| links.get(i).copied());
                if let Some(link) = link {
                    push(&mut out, link, &epb.data, epb.original_len);
                }
            }
            Block::SimplePacket(spb) => {
                if let Some(&link) = links.first() {
                    push(&mut out, link, &spb.data, spb.original_len);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_are_removed() {
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&0x8100u16.to_be_bytes());
        eth.extend_from_slice(&[0, 5]);
        eth.extend_from_slice(&0x86DDu16.to_be_bytes());
        eth.extend_from_slice(&[0x60, 1, 2]);
        assert_eq!(ip_payload(1, &eth), Some(&[0x60u8, 1, 2][..]));
        assert_eq!(ip_payload(101, &[0x60]), Some(&[0x60u8][..]));
        assert_eq!(ip_payload(1, &[0u8; 13]), None);
        assert_eq!(ip_payload(147, &[0x60]), None);
    }
}
