//! IPv6 extension headers (RFC 8200 §4, RFC 4302) and their options.

use super::next_header::{AUTH, FRAGMENT};
use super::{be16, be32, byte, Error};

/// Byte ranges of the extension headers.
///
/// Hop-by-hop, routing and destination options (length in 8-octet units,
/// not counting the first 8); AH (RFC 4302: in 4-octet units, not counting
/// the first 2):
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Next Header  |  Hdr Ext Len  | Routing Type  | Segments Left |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   (AH: Security Parameters Index, then Sequence Number)       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
/// .            Options / type-specific data                       .
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Fragment (RFC 8200 §4.5):
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Identification                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// An option of hop-by-hop or destination options (RFC 8200 §4.2; Pad1 is
/// the single byte 0); Jumbo Payload is type 0xC2 with 4 bytes (RFC 2675):
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - - - - - - -
/// |  Option Type  |  Opt Data Len |  Option Data
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - - - - - - -
/// ```
mod field {
    /// Next header, in every extension header.
    pub const NEXT_HEADER: usize = 0;
    /// Header extension length.
    pub const LENGTH: usize = 1;
    /// Routing type (routing header only).
    pub const ROUTING_TYPE: usize = 2;
    /// Segments left (routing header only).
    pub const SEGMENTS_LEFT: usize = 3;
    /// Security parameters index (AH only).
    pub const AUTH_SPI: usize = 4;
    /// Sequence number (AH only).
    pub const AUTH_SEQ: usize = 8;
    /// Where the options of hop-by-hop and destination options start.
    pub const OPTIONS: usize = 2;
    /// Fragment offset (13 bits) and M flag (fragment header).
    pub const FRAG_OFFSET_M: usize = 2;
    /// Identification (fragment header).
    pub const FRAG_ID: usize = 4;
    /// The fragment header's length.
    pub const FRAGMENT_LEN: usize = 8;
}

/// Option types of hop-by-hop and destination-options headers (IANA's
/// "Destination Options and Hop-by-Hop Options" registry).
pub mod option_type {
    /// Pad1 (RFC 8200): one byte, no length.
    pub const PAD1: u8 = 0;
    /// PadN (RFC 8200).
    pub const PADN: u8 = 1;
    /// Router Alert (RFC 2711).
    pub const ROUTER_ALERT: u8 = 5;
    /// Jumbo Payload (RFC 2675).
    pub const JUMBO: u8 = 0xC2;
}

/// One extension header: hop-by-hop, routing, fragment, destination options
/// or AH, with the bytes its length field covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
    len: usize,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Views the header of type `kind` (its protocol number) at the start of
    /// `buffer`, which must hold as many bytes as its length field says (8
    /// for a fragment header; AH in 4-octet units, the others in 8).
    #[inline]
    pub fn new_checked(buffer: T, kind: u8) -> Result<Self, Error> {
        let b = buffer.as_ref();
        let len = match kind {
            FRAGMENT => field::FRAGMENT_LEN,
            AUTH => (usize::from(*b.get(field::LENGTH).ok_or(Error::Truncated)?) + 2) * 4,
            _ => (usize::from(*b.get(field::LENGTH).ok_or(Error::Truncated)?) + 1) * 8,
        };
        if b.len() < len {
            return Err(Error::Truncated);
        }
        Ok(ExtHeader { buffer, kind, len })
    }

    /// Its protocol number (0, 43, 44, 51 or 60).
    #[inline]
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The next header field.
    #[inline]
    pub fn next_header(&self) -> u8 {
        byte(self.buffer.as_ref(), field::NEXT_HEADER)
    }

    /// Its length in bytes, as its length field says.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.len
    }

    /// Its bytes, as many as [`ExtHeader::header_len`].
    #[inline]
    pub fn header(&self) -> &[u8] {
        self.buffer.as_ref().get(..self.len).unwrap_or_default()
    }

    /// The routing type (meaningful for a routing header: 0 is the
    /// deprecated type 0, RFC 5095).
    #[inline]
    pub fn routing_type(&self) -> u8 {
        byte(self.buffer.as_ref(), field::ROUTING_TYPE)
    }

    /// Segments left (meaningful for a routing header).
    #[inline]
    pub fn segments_left(&self) -> u8 {
        byte(self.buffer.as_ref(), field::SEGMENTS_LEFT)
    }

    /// The security parameters index (meaningful for AH).
    #[inline]
    pub fn auth_spi(&self) -> u32 {
        be32(self.buffer.as_ref(), field::AUTH_SPI)
    }

    /// The sequence number (meaningful for AH).
    #[inline]
    pub fn auth_sequence(&self) -> u32 {
        be32(self.buffer.as_ref(), field::AUTH_SEQ)
    }

    /// The options of a hop-by-hop or destination-options header.
    #[inline]
    pub fn options(&self) -> Ipv6Options<'_> {
        Ipv6Options {
            rest: self.header().get(field::OPTIONS..).unwrap_or_default(),
        }
    }

    /// The Jumbo Payload length, when this header holds the option and it is
    /// valid (RFC 2675: data length 4, a value over 65,535); `None` also when
    /// an option before it runs past the header.
    #[inline]
    pub fn jumbo_payload_len(&self) -> Option<u32> {
        let mut opts = self.options();
        let opt = opts.find(|o| o.ty == option_type::JUMBO || o.is_cut())?;
        let v = u32::from_be_bytes(*opt.data.first_chunk::<4>()?);
        (opt.ty == option_type::JUMBO && opt.len == Some(4) && v > 65_535).then_some(v)
    }

    /// The header as a fragment header (a fragment header's kind only).
    #[inline]
    pub fn fragment(&self) -> Option<FragmentHeader<'_>> {
        (self.kind == FRAGMENT).then(|| FragmentHeader {
            buffer: self.header(),
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    /// Sets a fragment header's offset (8-octet units, 13 bits) and M flag,
    /// clearing the reserved bits; does nothing to another kind of header.
    #[inline]
    pub fn set_fragment_offset(&mut self, offset: u16, more: bool) {
        if self.kind == FRAGMENT {
            let v = (offset << 3) | u16::from(more);
            super::set_be16(self.buffer.as_mut(), field::FRAG_OFFSET_M, v);
        }
    }

    /// Sets the header extension length field (8-octet units after the
    /// first 8; AH: 4-octet units after the first 8, minus 2). The view
    /// keeps the length it was checked with; a packet whose field now says
    /// more than it has is what tests of malformed chains build, and the
    /// walk judges it afresh.
    #[inline]
    pub fn set_length_field(&mut self, units: u8) {
        super::set_byte(self.buffer.as_mut(), field::LENGTH, units);
    }
}

impl<'a> ExtHeader<&'a [u8]> {
    /// Its bytes, borrowed from the buffer for as long as the buffer lives.
    #[inline]
    pub fn header_bytes(&self) -> &'a [u8] {
        self.buffer.get(..self.len).unwrap_or_default()
    }
}

/// A fragment header's fields, viewed from an [`ExtHeader`] of kind 44.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader<'a> {
    buffer: &'a [u8],
}

impl FragmentHeader<'_> {
    /// Fragment offset, in 8-octet units.
    #[inline]
    pub fn offset(&self) -> u16 {
        be16(self.buffer, field::FRAG_OFFSET_M) >> 3
    }

    /// The M (more fragments) flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        be16(self.buffer, field::FRAG_OFFSET_M) & 1 == 1
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        be32(self.buffer, field::FRAG_ID)
    }
}

/// One option of a hop-by-hop or destination-options header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Option<'a> {
    /// Option type.
    pub ty: u8,
    /// Its data length field: `None` for Pad1, and for an option cut before
    /// its length byte.
    pub len: Option<u8>,
    /// Option data, as much as the header holds (shorter than `len` when the
    /// option runs past the header, which ends the options).
    pub data: &'a [u8],
}

impl Ipv6Option<'_> {
    /// Whether the option runs past its header (the last one yielded, then).
    pub fn is_cut(&self) -> bool {
        match self.len {
            None => self.ty != option_type::PAD1,
            Some(len) => self.data.len() < usize::from(len),
        }
    }
}

/// The options of a header in order; one cut short by the end of the
/// header is yielded last.
#[derive(Debug, Clone)]
pub struct Ipv6Options<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Ipv6Options<'a> {
    type Item = Ipv6Option<'a>;

    fn next(&mut self) -> Option<Ipv6Option<'a>> {
        let (&ty, rest) = self.rest.split_first()?;
        if ty == option_type::PAD1 {
            self.rest = rest;
            return Some(Ipv6Option {
                ty,
                len: None,
                data: &[],
            });
        }
        let Some((&len, rest)) = rest.split_first() else {
            self.rest = &[];
            return Some(Ipv6Option {
                ty,
                len: None,
                data: &[],
            });
        };
        let (data, rest) = rest
            .split_at_checked(usize::from(len))
            .unwrap_or((rest, &[]));
        self.rest = rest;
        Some(Ipv6Option {
            ty,
            len: Some(len),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::next_header::{DEST_OPTS, HOP_BY_HOP, ROUTING};
    use crate::wire::testing::hex;
    use crate::wire::Ipv6Packet;

    /// The extension headers of real packets, after their fixed header.
    /// Hop-by-hop with a router alert (MLD report), frame 1 of
    /// shared/captures/tcpdump/babel.pcap.
    const HBH: &str = "3a000502000001008f003f60000000020400";
    /// BIG TCP's hop-by-hop with a Jumbo Payload of 80,040 bytes,
    /// shared/captures/tcpdump/bigtcp-ipv6-hbh.pcap frame 1.
    const HBH_JUMBO: &str = "0600c204000138a8";
    /// A type 0 routing header (deprecated, RFC 5095), shared/captures/tcpdump/ipv6-routing-header.pcap.
    const ROUTING2: &str = "3a02000100000000220000000000021000020000000000048000d3ab";
    /// AH of OSPFv3, shared/captures/tcpdump/OSPFv3_with_AH.pcap frame 1.
    const AH: &str = "59040000000001000000001321d3a95c5ffd4d184622b9f8";
    /// The last fragment (offset 362, M = 0, id 1) of a DNS answer,
    /// shared/captures/zeek/ipv6-fragmented-dns.pcap frame 1.
    const FRAG: &str = "11000b5000000001";
    /// Destination options with a home address option, shared/captures/zeek/
    /// chksums/ip6-hoa-tcp-bad-chksum.pcap.
    const DSTOPTS: &str = "060201020000c910200100780001003200000000000000017530";

    fn truncations(bytes: &[u8], kind: u8, len: usize) {
        for n in 0..len {
            assert_eq!(
                ExtHeader::new_checked(&bytes[..n], kind),
                Err(Error::Truncated),
                "kind {kind} cut at {n}"
            );
        }
        assert!(ExtHeader::new_checked(&bytes[..len], kind).is_ok());
    }

    #[test]
    fn set_length_field_writes_the_second_byte() {
        let mut b = hex(HBH);
        let mut h = ExtHeader::new_checked(&mut b[..], HOP_BY_HOP).unwrap();
        h.set_length_field(2);
        let mut want = hex(HBH);
        want[1] = 2;
        assert_eq!(b, want);
        // Now it says 24 bytes and has 8: a fresh check refuses it.
        assert_eq!(
            ExtHeader::new_checked(&b[..], HOP_BY_HOP),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn hop_by_hop_options() {
        let b = hex(HBH);
        let h = ExtHeader::new_checked(&b[..], HOP_BY_HOP).unwrap();
        assert_eq!((h.next_header(), h.header_len()), (58, 8));
        let opts: Vec<_> = h.options().collect();
        assert_eq!(opts.len(), 2);
        assert_eq!((opts[0].ty, opts[0].data), (5, &[0u8, 0][..]));
        assert_eq!((opts[1].ty, opts[1].data), (1, &[][..]));
        assert!(!opts[0].is_cut() && !opts[1].is_cut());
        assert_eq!(h.jumbo_payload_len(), None);
        truncations(&b, HOP_BY_HOP, 8);
    }

    #[test]
    fn jumbo_payload() {
        let b = hex(HBH_JUMBO);
        let h = ExtHeader::new_checked(&b[..], HOP_BY_HOP).unwrap();
        assert_eq!(h.next_header(), 6);
        assert_eq!(h.jumbo_payload_len(), Some(80_040));
        // A value under 65,536, or a data length other than 4, is invalid.
        let small = hex("0600c20400000100");
        assert_eq!(
            ExtHeader::new_checked(&small[..], 0)
                .unwrap()
                .jumbo_payload_len(),
            None
        );
        let long = hex("0600c205000138a8");
        assert_eq!(
            ExtHeader::new_checked(&long[..], 0)
                .unwrap()
                .jumbo_payload_len(),
            None
        );
        // An option that overflows the header is the last, cut.
        let over = hex("060001ffc2040001");
        let h = ExtHeader::new_checked(&over[..], 0).unwrap();
        let opts: Vec<_> = h.options().collect();
        assert_eq!(opts.len(), 1);
        assert!(opts[0].is_cut());
        assert_eq!(
            (opts[0].ty, opts[0].len, opts[0].data.len()),
            (1, Some(0xff), 4)
        );
        assert_eq!(h.jumbo_payload_len(), None);
        // Cut before its length byte.
        let no_len = hex("0600010001000001");
        let h = ExtHeader::new_checked(&no_len[..], 0).unwrap();
        let last = h.options().last().unwrap();
        assert_eq!((last.ty, last.len, last.is_cut()), (1, None, true));
        truncations(&b, HOP_BY_HOP, 8);
    }

    #[test]
    fn routing_ah_fragment_dest_opts() {
        let r = hex(ROUTING2);
        let h = ExtHeader::new_checked(&r[..], ROUTING).unwrap();
        assert_eq!(
            (h.next_header(), h.header_len(), h.routing_type()),
            (58, 24, 0)
        );
        truncations(&r, ROUTING, 24);

        let a = hex(AH);
        let h = ExtHeader::new_checked(&a[..], AUTH).unwrap();
        assert_eq!((h.next_header(), h.header_len()), (89, 24));
        assert_eq!((h.auth_spi(), h.auth_sequence()), (0x100, 0x13));
        assert_eq!(h.fragment(), None);
        truncations(&a, AUTH, 24);

        let f = hex(FRAG);
        let h = ExtHeader::new_checked(&f[..], FRAGMENT).unwrap();
        let frag = h.fragment().unwrap();
        assert_eq!(h.next_header(), 17);
        assert_eq!(
            (frag.offset(), frag.more_fragments(), frag.ident()),
            (362, false, 1)
        );
        truncations(&f, FRAGMENT, 8);
        let mut g = f.clone();
        let mut h = ExtHeader::new_checked(&mut g[..], FRAGMENT).unwrap();
        h.set_fragment_offset(1, true);
        let frag = h.fragment().unwrap();
        assert_eq!(
            (frag.offset(), frag.more_fragments(), frag.ident()),
            (1, true, 1)
        );

        let d = hex(DSTOPTS);
        let h = ExtHeader::new_checked(&d[..], DEST_OPTS).unwrap();
        assert_eq!((h.next_header(), h.header_len()), (6, 24));
        assert_eq!(h.options().map(|o| o.ty).collect::<Vec<_>>(), [1, 0xc9]);
        truncations(&d, DEST_OPTS, 24);
    }

    #[test]
    fn an_overflowing_length_field_is_truncated() {
        let mut b = hex(HBH);
        b[1] = 0xff; // 2,048 bytes
        assert_eq!(
            ExtHeader::new_checked(&b[..], HOP_BY_HOP),
            Err(Error::Truncated)
        );
        let mut a = hex(AH);
        a[1] = 0xff;
        assert_eq!(ExtHeader::new_checked(&a[..], AUTH), Err(Error::Truncated));
    }

    #[test]
    fn the_chain_of_a_real_packet() {
        let p = hex(
            "6000000000380001fe8000000000000068d31235d0681f9eff020000000000000000000000000016\
             3a000502000001008f003f600000000204000000ff02000000000000000000000001000604000000\
             ff02000000000000cca6c0f9e1825359",
        );
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        let h = ExtHeader::new_checked(ip.payload(), ip.next_header()).unwrap();
        assert_eq!(h.header(), &hex(HBH)[..8]);
    }
}
