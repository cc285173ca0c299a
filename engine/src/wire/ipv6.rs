//! The IPv6 fixed header (RFC 8200 §3).

use super::{be16, byte, bytes, set_be16, set_bytes, Error};

/// Byte ranges of the fixed header.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Traffic Class |           Flow Label                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Source Address (16 octets)                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |              Destination Address (16 octets)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
mod field {
    /// Version (high nibble), traffic class, flow label.
    pub const VER_TC_FLOW: usize = 0;
    /// Payload length: the bytes after the fixed header.
    pub const PAYLOAD_LEN: usize = 4;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: usize = 8;
    /// Destination address.
    pub const DST_ADDR: usize = 24;
    /// The fixed header's length.
    pub const HEADER_LEN: usize = 40;
}

/// The version nibble of an IPv6 packet.
pub const IPV6_VERSION: u8 = 6;

/// The version nibble of whatever `buffer` starts with (`None` when empty):
/// for telling IPv6 from IPv4 before the length is known.
#[inline]
pub fn version_of(buffer: &[u8]) -> Option<u8> {
    buffer.get(field::VER_TC_FLOW).map(|b| b >> 4)
}

/// The source and destination address a fixed header cut short still holds
/// whole (for logging a packet under 40 bytes).
pub fn addresses_of_cut(buffer: &[u8]) -> (Option<[u8; 16]>, Option<[u8; 16]>) {
    let at = |a: usize| buffer.get(a..).and_then(<[u8]>::first_chunk::<16>).copied();
    (at(field::SRC_ADDR), at(field::DST_ADDR))
}

/// A view of an IPv6 packet: the fixed header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// The fixed header's length (40).
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Views `buffer` that the caller already checked with
    /// [`Ipv6Packet::new_checked`] (the walk, which keeps only offsets). Safe
    /// on any buffer: an accessor past its end reads zeros, never panics.
    #[inline(always)]
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Views `buffer`, which must hold the 40-byte fixed header (anything
    /// else, version included, is the caller's to judge).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }

    /// The version nibble.
    #[inline]
    pub fn version(&self) -> u8 {
        byte(self.buffer.as_ref(), field::VER_TC_FLOW) >> 4
    }

    /// The traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let w = super::be32(self.buffer.as_ref(), field::VER_TC_FLOW);
        ((w >> 20) & 0xff) as u8
    }

    /// The flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        super::be32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0xf_ffff
    }

    /// The payload length field (0 when a Jumbo Payload option carries it).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The next-header field: the first extension header or the upper layer.
    #[inline]
    pub fn next_header(&self) -> u8 {
        byte(self.buffer.as_ref(), field::NEXT_HEADER)
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        byte(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 16] {
        bytes(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 16] {
        bytes(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// Everything after the fixed header, as far as the buffer goes
    /// (whatever the payload length says).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::HEADER_LEN..)
            .unwrap_or_default()
    }

    /// Where the payload length says the packet ends (40 + payload length),
    /// before any Jumbo Payload option is taken into account.
    #[inline]
    pub fn declared_end(&self) -> usize {
        field::HEADER_LEN + usize::from(self.payload_len())
    }

    /// The viewed buffer.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<'a> Ipv6Packet<&'a [u8]> {
    /// The source address, borrowed from the buffer (no copy).
    #[inline]
    pub fn src_addr_ref(&self) -> &'a [u8; 16] {
        addr_ref(self.buffer, field::SRC_ADDR)
    }

    /// The destination address, borrowed from the buffer (no copy).
    #[inline]
    pub fn dst_addr_ref(&self) -> &'a [u8; 16] {
        addr_ref(self.buffer, field::DST_ADDR)
    }
}

/// The 16 bytes at `at` (zeros past the end, which the contract rules out).
#[inline(always)]
fn addr_ref(b: &[u8], at: usize) -> &[u8; 16] {
    b.get(at..)
        .and_then(<[u8]>::first_chunk::<16>)
        .unwrap_or(&[0; 16])
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the payload length field.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        set_be16(self.buffer.as_mut(), field::PAYLOAD_LEN, len);
    }

    /// Sets the next-header field.
    #[inline]
    pub fn set_next_header(&mut self, next: u8) {
        super::set_byte(self.buffer.as_mut(), field::NEXT_HEADER, next);
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        super::set_byte(self.buffer.as_mut(), field::HOP_LIMIT, hop_limit);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 16]) {
        set_bytes(self.buffer.as_mut(), field::SRC_ADDR, addr);
    }

    /// Everything after the fixed header, as far as the buffer goes, to
    /// change (the first extension header or the upper layer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::HEADER_LEN..)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::hex;

    /// A UDP DNS query, frame 1 of shared/captures/tcpdump/LINKTYPE_IPV6.pcap:
    /// 2001:db8::1 -> 2620:fe::9, payload length 37, hop limit 64.
    const UDP_DNS: &str = "6000000000251140 20010db8000000000000000000000001 \
        262000fe000000000000000000000009 30390035002598b3 \
        123401000001000000000000076578616d706c6503636f6d0000010001";

    #[test]
    fn setters_write_what_getters_read() {
        let mut bytes = hex(UDP_DNS);
        let mut p = Ipv6Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_payload_len(8);
        p.set_next_header(59);
        p.set_hop_limit(255);
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (8, 59, 255)
        );
        // Bytes 4-7 of the fixed header, nothing else.
        let mut want = hex(UDP_DNS);
        want[4..8].copy_from_slice(&[0, 8, 59, 255]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn address_setters_and_the_payload_to_change() {
        let mut bytes = hex(UDP_DNS);
        let mut p = Ipv6Packet::new_checked(&mut bytes[..]).unwrap();
        let dst = p.dst_addr();
        p.set_src_addr([0xaa; 16]);
        assert_eq!((p.src_addr(), p.dst_addr()), ([0xaa; 16], dst));
        p.payload_mut()[0] = 0xff;
        assert_eq!(p.payload().len(), hex(UDP_DNS).len() - 40);
        // Bytes 8-23 and the payload's first, nothing else.
        let mut want = hex(UDP_DNS);
        want[8..24].copy_from_slice(&[0xaa; 16]);
        want[40] = 0xff;
        assert_eq!(bytes, want);
        // A bare fixed header has an empty payload to change.
        let mut header = [0u8; 40];
        let mut p = Ipv6Packet::new_checked(&mut header[..]).unwrap();
        assert!(p.payload_mut().is_empty());
    }

    #[test]
    fn reads_a_real_header() {
        let bytes = hex(UDP_DNS);
        let p = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0, 0));
        let mut marked = bytes.clone();
        marked[..4].copy_from_slice(&[0x6b, 0x81, 0x23, 0x45]);
        let m = Ipv6Packet::new_checked(&marked[..]).unwrap();
        assert_eq!((m.traffic_class(), m.flow_label()), (0xb8, 0x1_2345));
        assert_eq!(p.payload_len(), 37);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hop_limit(), 64);
        let src: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: std::net::Ipv6Addr = "2620:fe::9".parse().unwrap();
        assert_eq!(p.src_addr(), src.octets());
        assert_eq!(p.dst_addr(), dst.octets());
        assert_eq!(
            (p.src_addr_ref(), p.dst_addr_ref()),
            (&src.octets(), &dst.octets())
        );
        assert_eq!(p.payload().len(), 37);
        assert_eq!(p.declared_end(), bytes.len());
        assert_eq!(version_of(&bytes), Some(6));
        assert_eq!(version_of(&[]), None);
    }

    #[test]
    fn truncated_at_every_boundary_is_an_error() {
        let bytes = hex(UDP_DNS);
        let whole = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        for n in 0..40 {
            let (src, dst) = addresses_of_cut(&bytes[..n]);
            assert_eq!(src, (n >= 24).then(|| whole.src_addr()), "{n}");
            assert_eq!(dst, (n >= 40).then(|| whole.dst_addr()), "{n}");
        }
        for n in 0..40 {
            assert_eq!(
                Ipv6Packet::new_checked(&bytes[..n]),
                Err(Error::Truncated),
                "{n}"
            );
        }
        for n in 40..=bytes.len() {
            let p = Ipv6Packet::new_checked(&bytes[..n]).unwrap();
            assert_eq!(p.payload().len(), n - 40);
        }
    }

    #[test]
    fn an_overflowing_payload_length_is_only_read() {
        let mut bytes = hex(UDP_DNS);
        let mut p = Ipv6Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_payload_len(0xffff);
        assert_eq!(p.payload_len(), 0xffff);
        assert_eq!(p.declared_end(), 40 + 0xffff);
        assert_eq!(p.payload().len(), 37);
    }
}
