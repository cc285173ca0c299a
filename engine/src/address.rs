//! SPEC.md step 3's addresses: what no packet from another node may carry
//! (RFC 4291), judged on inbound packets before any extension header.

/// The loopback address `::1` (RFC 4291 §2.5.3).
const LOOPBACK: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// The unspecified address `::` (RFC 4291 §2.5.2).
const UNSPECIFIED: [u8; 16] = [0; 16];
/// The first 12 bytes of an IPv4-mapped address, `::ffff:0:0/96` (RFC 4291 §2.5.5.2).
const V4_MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
/// The first byte of every multicast address, `ff00::/8` (RFC 4291 §2.7).
const MULTICAST: u8 = 0xff;

/// Why an address is refused (SPEC.md step 3, RFC 4291).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A multicast source (ff00::/8, RFC 4291 §2.7).
    MulticastSource,
    /// An IPv4-mapped source (::ffff:0:0/96, RFC 4291 §2.5.5.2, RFC 4942 §2.2).
    MappedSource,
    /// The loopback address as the source, the destination being another
    /// (RFC 4291 §2.5.3).
    LoopbackSource,
    /// The loopback address as the destination, the source being another
    /// (RFC 4291 §2.5.3).
    LoopbackDestination,
    /// The unspecified address as the destination (RFC 4291 §2.5.2).
    UnspecifiedDestination,
    /// A multicast destination of scope 0 (reserved) or 1 (interface-local):
    /// RFC 4291 §2.7 and its erratum 3480. Holds the scope.
    MulticastScope(u8),
}

impl Refusal {
    /// The rule and its RFC section, in words (for `replay --explain`).
    pub fn rule(self) -> String {
        match self {
            Refusal::MulticastSource => "a multicast source (ff00::/8, RFC 4291 §2.7)".into(),
            Refusal::MappedSource => {
                "an IPv4-mapped source (::ffff:0:0/96, RFC 4291 §2.5.5.2, RFC 4942 §2.2)".into()
            }
            Refusal::LoopbackSource => {
                "the loopback source ::1 to another destination (RFC 4291 §2.5.3)".into()
            }
            Refusal::LoopbackDestination => {
                "the loopback destination ::1 from another source (RFC 4291 §2.5.3)".into()
            }
            Refusal::UnspecifiedDestination => {
                "the unspecified destination :: (RFC 4291 §2.5.2)".into()
            }
            Refusal::MulticastScope(0) => {
                "a multicast destination of reserved scope 0 (RFC 4291 §2.7)".into()
            }
            Refusal::MulticastScope(scope) => format!(
                "a multicast destination of interface-local scope {scope} (RFC 4291 §2.7, erratum 3480)"
            ),
        }
    }
}

/// Whether a packet whose source starts with byte `src0` and destination
/// with `dst0` may carry an address [`refusal`] refuses, or be TCP to a
/// multicast destination: every such address starts with 0x00 or 0xff. The
/// walk asks this once per packet (two compares on bytes it has), so a packet
/// between global, link-local or ULA addresses never looks at its addresses
/// again.
#[inline(always)]
pub const fn may_refuse(src0: u8, dst0: u8) -> bool {
    // 0x00 and 0xff are the two values v for which v + 1 (wrapping) <= 1.
    src0.wrapping_add(1) <= 1 || dst0.wrapping_add(1) <= 1
}

/// Why an inbound packet from `src` to `dst` is `bad_address` (SPEC.md step
/// 3), if it is: a multicast source; an IPv4-mapped source; `::1` as source
/// or destination but not both; `::` as the destination; a multicast
/// destination of scope 0 or 1, whatever its flags. The first that applies,
/// in that order.
pub fn refusal(src: &[u8; 16], dst: &[u8; 16]) -> Option<Refusal> {
    let (src_loop, dst_loop) = (*src == LOOPBACK, *dst == LOOPBACK);
    if src[0] == MULTICAST {
        Some(Refusal::MulticastSource)
    } else if src.starts_with(&V4_MAPPED) {
        Some(Refusal::MappedSource)
    } else if src_loop && !dst_loop {
        Some(Refusal::LoopbackSource)
    } else if dst_loop && !src_loop {
        Some(Refusal::LoopbackDestination)
    } else if *dst == UNSPECIFIED {
        Some(Refusal::UnspecifiedDestination)
    } else if dst[0] == MULTICAST && multicast_scope(dst) <= 1 {
        Some(Refusal::MulticastScope(multicast_scope(dst)))
    } else {
        None
    }
}

/// The scope of a multicast address (the low nibble of its second byte).
#[inline]
const fn multicast_scope(addr: &[u8; 16]) -> u8 {
    addr[1] & 0x0f
}

/// Whether `dst` is a multicast address (TCP to one is `bad_address`:
/// SPEC.md step 6, RFC 1122 §4.2.3.10).
#[inline(always)]
pub const fn is_multicast(dst: &[u8; 16]) -> bool {
    dst[0] == MULTICAST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(text: &str) -> [u8; 16] {
        text.parse::<std::net::Ipv6Addr>()
            .map(|a| a.octets())
            .unwrap_or_default()
    }

    #[test]
    fn the_fast_test_lets_no_refused_address_through() {
        // Every refused first byte is 0x00 or 0xff: scan each first byte
        // with the other bytes of both refused shapes.
        for b in 0..=255u8 {
            for rest in [a("::1"), a("::ffff:1.2.3.4"), a("::"), a("ff01::1")] {
                let mut x = rest;
                x[0] = b;
                let peer = a("2001:db8::1");
                if refusal(&x, &peer).is_some() {
                    assert!(may_refuse(x[0], peer[0]), "{x:?} as source");
                }
                if refusal(&peer, &x).is_some() || is_multicast(&x) {
                    assert!(may_refuse(peer[0], x[0]), "{x:?} as destination");
                }
            }
        }
    }

    #[test]
    fn classes() {
        let good = a("2001:db8::1");
        let refused = |s: &[u8; 16], d: &[u8; 16]| refusal(s, d).is_some();
        assert!(!refused(&good, &good));
        assert!(refused(&a("ff02::1"), &good));
        assert!(refused(&a("::ffff:10.0.0.1"), &good));
        assert!(refused(&a("::1"), &good));
        assert!(refused(&good, &a("::1")));
        assert!(!refused(&a("::1"), &a("::1")));
        assert!(refused(&good, &a("::")));
        assert!(!refused(&a("::"), &a("ff02::1:ff00:1")));
        assert!(refused(&good, &a("ff00::1")));
        assert!(refused(&good, &a("ff01::1")));
        assert!(refused(&good, &a("ff11::1")));
        assert!(!refused(&good, &a("ff02::1")));
        assert!(!refused(&good, &a("ff05::2")));
        assert!(!refused(&good, &a("::ffff:10.0.0.1")));
        assert!(is_multicast(&a("ff02::1")) && !is_multicast(&good));
    }
}
