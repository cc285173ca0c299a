//! The ICMPv6 header (RFC 4443 §2.1) and what an error message quotes (§2.4, §3).

use super::next_header::{TCP, UDP};
use super::{be16, byte, Error, Ipv6Packet};

/// Byte ranges of the ICMPv6 header. Error messages (types 1-4) quote, from
/// byte 8 on, as much of the invoking packet as fits:
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     Code      |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |              Unused / MTU / Pointer (errors)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                As much of invoking packet                     |
/// +               as possible without the ICMPv6 packet           +
/// ```
mod field {
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: usize = 2;
    /// Type, code and checksum: what every message has.
    pub const HEADER_LEN: usize = 4;
    /// Where an error message's quoted packet starts.
    pub const QUOTED: usize = 8;
    /// The two ports at the start of a quoted TCP or UDP header.
    pub const QUOTED_PORTS_LEN: usize = 4;
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Views `buffer` that the caller already checked with
    /// [`Icmpv6Packet::new_checked`] (the walk, which keeps only offsets). Safe
    /// on any buffer: an accessor past its end reads zeros, never panics.
    #[inline(always)]
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Views `buffer`, which must hold type, code and checksum (4 bytes).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        byte(self.buffer.as_ref(), field::TYPE)
    }

    /// Code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        byte(self.buffer.as_ref(), field::CODE)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether this is an error message: destination unreachable, packet
    /// too big, time exceeded, parameter problem (types 1-4).
    #[inline]
    pub fn is_error(&self) -> bool {
        is_error(self.msg_type())
    }

    /// What an error message quotes: the invoking packet's fixed header and,
    /// when its next header is TCP or UDP, the two ports. `None` when the
    /// quote is too short for them (or the message is no error).
    pub fn quoted(&self) -> Option<Quoted> {
        if !self.is_error() {
            return None;
        }
        let q = self.buffer.as_ref().get(field::QUOTED..)?;
        let ip = Ipv6Packet::new_checked(q).ok()?;
        let ports = match ip.next_header() {
            TCP | UDP => {
                let p = ip.payload().get(..field::QUOTED_PORTS_LEN)?;
                Some((be16(p, 0), be16(p, 2)))
            }
            _ => None,
        };
        Some(Quoted {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            next_header: ip.next_header(),
            ports,
        })
    }
}

/// Whether ICMPv6 type `ty` is an error message (types 1-4).
#[inline]
pub const fn is_error(ty: u8) -> bool {
    matches!(ty, 1..=4)
}

/// What an ICMPv6 error message quotes of the packet that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Its source (this host, if this host sent it).
    pub src: [u8; 16],
    /// Its destination.
    pub dst: [u8; 16],
    /// Its next-header field.
    pub next_header: u8,
    /// Source and destination port, when the next header is TCP or UDP.
    pub ports: Option<(u16, u16)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::hex;

    /// A port unreachable quoting a UDP packet 41077 -> 33444, from
    /// shared/captures/zeek/communityid/icmp6.pcap (ICMPv6 part, after the
    /// fixed header).
    const UNREACH: &str = "010413520000000060000000001411013ffe050700000001020086fffe0580da\
        3ffe05010410000002c0dffffe47033ea07582a40014cf470a040000f9c8e7369d250b00";
    /// A neighbour solicitation, shared/captures/tcpdump/dcb_ets.pcap.
    const NS: &str = "87007a9100000000fe800000000000000a0027fffe46e884";

    #[test]
    fn an_error_and_what_it_quotes() {
        let b = hex(UNREACH);
        let m = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((m.msg_type(), m.msg_code(), m.checksum()), (1, 4, 0x1352));
        assert!(m.is_error());
        let q = m.quoted().unwrap();
        let src: std::net::Ipv6Addr = "3ffe:507:0:1:200:86ff:fe05:80da".parse().unwrap();
        assert_eq!(q.src, src.octets());
        assert_eq!((q.next_header, q.ports), (17, Some((41077, 33444))));
        // Cut inside the quoted ports, then inside the quoted fixed header.
        for n in 4..52 {
            let m = Icmpv6Packet::new_checked(&b[..n]).unwrap();
            assert_eq!(m.quoted(), None, "{n}");
        }
        assert!(Icmpv6Packet::new_checked(&b[..52])
            .unwrap()
            .quoted()
            .is_some());
        for n in 0..4 {
            assert_eq!(Icmpv6Packet::new_checked(&b[..n]), Err(Error::Truncated));
        }
    }

    #[test]
    fn an_informational_message_quotes_nothing() {
        let b = hex(NS);
        let m = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((m.msg_type(), m.msg_code(), m.is_error()), (135, 0, false));
        assert_eq!(m.quoted(), None);
    }
}
