//! The TCP header (RFC 9293 §3.1).

use super::{be16, be32, byte, Error};

/// Byte ranges of the TCP header.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Source Port          |       Destination Port        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Sequence Number                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Acknowledgment Number                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Data |       |C|E|U|A|P|R|S|F|                               |
/// | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
/// |       |       |R|E|G|K|H|T|N|N|                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Checksum            |         Urgent Pointer        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
mod field {
    /// Source port.
    pub const SRC_PORT: usize = 0;
    /// Destination port.
    pub const DST_PORT: usize = 2;
    /// Sequence number.
    pub const SEQ_NUM: usize = 4;
    /// Acknowledgment number.
    pub const ACK_NUM: usize = 8;
    /// Data offset (high nibble, in 4-octet units).
    pub const DATA_OFFSET: usize = 12;
    /// Flags (CWR ECE URG ACK PSH RST SYN FIN).
    pub const FLAGS: usize = 13;
    /// Window.
    pub const WINDOW: usize = 14;
    /// The header without options.
    pub const HEADER_LEN: usize = 20;
}

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// The flag bit SYN.
    pub const SYN: u8 = 0x02;
    /// The flag bit ACK.
    pub const ACK: u8 = 0x10;

    /// Views `buffer` that the caller already checked with
    /// [`TcpPacket::new_checked`] (the walk, which keeps only offsets). Safe
    /// on any buffer: an accessor past its end reads zeros, never panics.
    #[inline(always)]
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Views `buffer`, which must hold the header as long as its data offset
    /// says: [`Error::Truncated`] when it is shorter than 20 bytes or than
    /// the data offset, [`Error::Malformed`] when the data offset is under 5.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        // The length first: it proves the data offset byte is there, so
        // reading it needs no second bounds check.
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let off = b.get(field::DATA_OFFSET).copied().unwrap_or(0);
        let header_len = usize::from(off >> 4) * 4;
        if header_len < field::HEADER_LEN {
            Err(Error::Malformed)
        } else if header_len > b.len() {
            Err(Error::Truncated)
        } else {
            Ok(TcpPacket { buffer })
        }
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// The header's length, options included (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(byte(self.buffer.as_ref(), field::DATA_OFFSET) >> 4) * 4
    }

    /// The flags byte (CWR ECE URG ACK PSH RST SYN FIN).
    #[inline]
    pub fn flags(&self) -> u8 {
        byte(self.buffer.as_ref(), field::FLAGS)
    }

    /// Window.
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the flags byte (CWR ECE URG ACK PSH RST SYN FIN).
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        super::set_byte(self.buffer.as_mut(), field::FLAGS, flags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::hex;
    use crate::wire::Ipv6Packet;

    /// A TCP SYN 30000 -> 80, shared/captures/zeek/chksums/ip6-tcp-bad-chksum.pcap.
    const SYN: &str = "6000000000140640200104f80004000702e081fffe52ffff\
        200104f80004000702e081fffe529a6b7530005000000000000000005002200000010000";

    #[test]
    fn set_flags_writes_what_flags_reads() {
        let mut p = hex(SYN);
        let mut t = TcpPacket::new_checked(p.get_mut(40..).unwrap()).unwrap();
        t.set_flags(0x12);
        assert_eq!(t.flags(), 0x12);
        // Byte 13 of the TCP header, nothing else.
        let mut want = hex(SYN);
        want[53] = 0x12;
        assert_eq!(p, want);
    }

    #[test]
    fn reads_a_real_syn() {
        let p = hex(SYN);
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (30000, 80));
        assert_eq!((t.seq_number(), t.ack_number()), (0, 0));
        assert_eq!(
            (t.header_len(), t.flags(), t.window_len()),
            (20, 0x02, 0x2000)
        );
    }

    #[test]
    fn truncated_at_every_boundary() {
        let p = hex(SYN);
        let l4 = &p[40..];
        for n in 0..20 {
            assert_eq!(
                TcpPacket::new_checked(&l4[..n]),
                Err(Error::Truncated),
                "{n}"
            );
        }
        assert!(TcpPacket::new_checked(l4).is_ok());
    }

    #[test]
    fn data_offsets_under_5_or_past_the_end() {
        let mut l4 = hex(SYN)[40..].to_vec();
        for off in 0..5u8 {
            l4[12] = off << 4;
            assert_eq!(
                TcpPacket::new_checked(&l4[..]),
                Err(Error::Malformed),
                "{off}"
            );
        }
        l4[12] = 6 << 4; // 24 bytes of header in 20
        assert_eq!(TcpPacket::new_checked(&l4[..]), Err(Error::Truncated));
        l4.extend_from_slice(&[1, 1, 1, 0]);
        assert_eq!(TcpPacket::new_checked(&l4[..]).unwrap().header_len(), 24);
    }
}
