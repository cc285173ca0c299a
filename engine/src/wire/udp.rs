//! The UDP header (RFC 768).

use super::{be16, Error};

/// Byte ranges of the UDP header.
///
/// ```text
///  0      7 8     15 16    23 24    31
/// +--------+--------+--------+--------+
/// |     Source      |   Destination   |
/// |      Port       |      Port       |
/// +--------+--------+--------+--------+
/// |                 |                 |
/// |     Length      |    Checksum     |
/// +--------+--------+--------+--------+
/// ```
mod field {
    /// Source port.
    pub const SRC_PORT: usize = 0;
    /// Destination port.
    pub const DST_PORT: usize = 2;
    /// Length (header and data).
    pub const LENGTH: usize = 4;
    /// Checksum.
    pub const CHECKSUM: usize = 6;
    /// The header's length.
    pub const HEADER_LEN: usize = 8;
}

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Views `buffer` that the caller already checked with
    /// [`UdpPacket::new_checked`] (the walk, which keeps only offsets). Safe
    /// on any buffer: an accessor past its end reads zeros, never panics.
    #[inline(always)]
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Views `buffer`, which must hold the 8-byte header (the length field
    /// is only read, not checked).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(UdpPacket { buffer })
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

    /// The length field (header and data).
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the length field is 0 (a UDP jumbogram, RFC 2675 §4, or invalid).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::hex;

    /// The UDP header of a DNS query 12345 -> 53, frame 1 of
    /// shared/captures/tcpdump/LINKTYPE_IPV6.pcap.
    const DNS: &str = "30390035002598b31234010000010000";

    #[test]
    fn reads_a_real_header_and_rejects_every_truncation() {
        let b = hex(DNS);
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (12345, 53));
        assert_eq!((u.len(), u.checksum(), u.is_empty()), (37, 0x98b3, false));
        for n in 0..8 {
            assert_eq!(
                UdpPacket::new_checked(&b[..n]),
                Err(Error::Truncated),
                "{n}"
            );
        }
        // A length field past the buffer is read as it is.
        let mut over = b.clone();
        over[4] = 0xff;
        assert_eq!(UdpPacket::new_checked(&over[..8]).unwrap().len(), 0xff25);
    }
}
