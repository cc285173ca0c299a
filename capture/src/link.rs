//! Link-layer headers: from a captured frame down to the IPv6 packet it carries.
//!
//! The link types are the `LINKTYPE_*` values of pcap and pcapng files
//! (<https://www.tcpdump.org/linktypes.html>). SPEC.md lists the ones replay
//! understands: Ethernet with 802.1Q/802.1ad tags, raw IP, Linux cooked
//! capture (v1 and v2) and BSD loopback (and OpenBSD's `LINKTYPE_LOOP`).
//! Every other link type carries, as far as replay is concerned, no IPv6
//! packet.

use v6fw_engine::wire::{version_of, IPV6_VERSION};

/// `LINKTYPE_NULL`: BSD loopback, a 4-byte address family in the byte order of
/// the capturing host.
pub const LINKTYPE_NULL: u32 = 0;
/// `LINKTYPE_ETHERNET`: Ethernet II (and 802.3), possibly VLAN-tagged.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_RAW`: a raw IPv4 or IPv6 packet, told apart by its version nibble.
pub const LINKTYPE_RAW: u32 = 101;
/// `LINKTYPE_LOOP`: OpenBSD loopback, a 4-byte address family in network order.
pub const LINKTYPE_LOOP: u32 = 108;
/// `LINKTYPE_LINUX_SLL`: Linux cooked capture v1 (16-byte header).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// `LINKTYPE_IPV4`: a raw IPv4 packet.
pub const LINKTYPE_IPV4: u32 = 228;
/// `LINKTYPE_IPV6`: a raw IPv6 packet.
pub const LINKTYPE_IPV6: u32 = 229;
/// `LINKTYPE_LINUX_SLL2`: Linux cooked capture v2 (20-byte header).
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// The IPv6 ethertype.
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// Ethertypes of a VLAN tag (802.1Q, 802.1ad, and the pre-standard QinQ one):
/// 2 bytes of tag control, then the next ethertype.
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// Ethertypes of an MPLS label stack (unicast, multicast).
const ETHERTYPE_MPLS: [u16; 2] = [0x8847, 0x8848];
/// `AF_INET6` as BSD loopback headers write it: 24 (NetBSD, OpenBSD), 28
/// (FreeBSD, DragonFly), 30 (macOS, iOS).
const AF_INET6: [u32; 3] = [24, 28, 30];

/// Strips the link-layer header of one frame. Returns the IPv6 packet bytes
/// (everything after the link header), or None when the frame carries no IPv6
/// packet (other ethertype/family, unknown link type, short link header, 0 bytes).
///
/// Ethernet and Linux cooked frames may carry any number of VLAN tags
/// (0x8100, 0x88A8, 0x9100) and an MPLS label stack (0x8847, 0x8848) whose
/// payload starts with version nibble 6, as tshark reads them.
///
/// Raw IP (101) and `LINKTYPE_IPV6` (229) frames are returned as they are,
/// whatever their version nibble: the engine judges that. `LINKTYPE_IPV4` (228)
/// is IPv4 by definition and yields None.
pub fn ipv6_payload(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    let packet = match linktype {
        LINKTYPE_ETHERNET => {
            let (_macs, rest) = frame.split_at_checked(12)?;
            after_ethertype(rest)
        }
        LINKTYPE_RAW | LINKTYPE_IPV6 => Some(frame),
        LINKTYPE_LINUX_SLL => {
            // packet type (2), ARPHRD (2), address length (2), address (8),
            // protocol (2).
            let (_head, rest) = frame.split_at_checked(14)?;
            after_ethertype(rest)
        }
        LINKTYPE_LINUX_SLL2 => {
            // protocol (2), reserved (2), interface index (4), ARPHRD (2),
            // packet type (1), address length (1), address (8).
            let (proto, rest) = frame.split_first_chunk::<2>()?;
            by_ethertype(u16::from_be_bytes(*proto), rest.get(18..)?)
        }
        LINKTYPE_NULL => {
            let (family, rest) = frame.split_first_chunk::<4>()?;
            let le = u32::from_le_bytes(*family);
            let be = u32::from_be_bytes(*family);
            (AF_INET6.contains(&le) || AF_INET6.contains(&be)).then_some(rest)
        }
        LINKTYPE_LOOP => {
            let (family, rest) = frame.split_first_chunk::<4>()?;
            AF_INET6
                .contains(&u32::from_be_bytes(*family))
                .then_some(rest)
        }
        _ => None,
    }?;
    (!packet.is_empty()).then_some(packet)
}

/// `rest` starts with an ethertype: follows VLAN tags down to IPv6.
fn after_ethertype(rest: &[u8]) -> Option<&[u8]> {
    let (ty, payload) = rest.split_first_chunk::<2>()?;
    by_ethertype(u16::from_be_bytes(*ty), payload)
}

/// `payload` follows ethertype `ty`.
fn by_ethertype(ty: u16, payload: &[u8]) -> Option<&[u8]> {
    match ty {
        ETHERTYPE_IPV6 => Some(payload),
        ty if ETHERTYPE_VLAN.contains(&ty) => vlan_tags(payload),
        ty if ETHERTYPE_MPLS.contains(&ty) => mpls_labels(payload),
        _ => None,
    }
}

/// `rest` starts with an MPLS label stack: skips the labels up to the one
/// marked bottom of stack. MPLS does not say what follows; as tshark does, a
/// version nibble of 6 means IPv6.
fn mpls_labels(mut rest: &[u8]) -> Option<&[u8]> {
    loop {
        let (label, after) = rest.split_first_chunk::<4>()?;
        rest = after;
        let [_, _, bottom, _] = *label;
        if bottom & 1 == 1 {
            break;
        }
    }
    (version_of(rest)? == IPV6_VERSION).then_some(rest)
}

/// `rest` starts with the tag control of a VLAN tag: skips it and any further
/// tags, then goes on by the ethertype after them.
fn vlan_tags(mut rest: &[u8]) -> Option<&[u8]> {
    loop {
        let (tag, after) = rest.split_first_chunk::<4>()?;
        let [_, _, hi, lo] = *tag;
        let ty = u16::from_be_bytes([hi, lo]);
        if !ETHERTYPE_VLAN.contains(&ty) {
            return by_ethertype(ty, after);
        }
        rest = after;
    }
}
