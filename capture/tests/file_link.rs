//! `link::ipv6_payload` on hand-built frames of every link type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use v6fw_capture::link::ipv6_payload;

/// A minimal IPv6 header (version 6, no payload, next header 59), written
/// by etherparse.
fn ip6() -> Vec<u8> {
    let h = etherparse::Ipv6Header {
        next_header: etherparse::IpNumber(59),
        hop_limit: 64,
        ..Default::default()
    };
    let p = h.to_bytes().to_vec();
    assert_eq!(p.len(), 40);
    p
}

fn ip4() -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const MACS: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];

#[test]
fn ethernet() {
    let ip = ip6();
    let frame = cat(&[&MACS, &[0x86, 0xDD], &ip]);
    assert_eq!(ipv6_payload(1, &frame), Some(&ip[..]));
    let v4 = cat(&[&MACS, &[0x08, 0x00], &ip4()]);
    assert_eq!(ipv6_payload(1, &v4), None);
    let arp = cat(&[&MACS, &[0x08, 0x06], &[0; 28]]);
    assert_eq!(ipv6_payload(1, &arp), None);
    // Short link header, header only, nothing at all.
    assert_eq!(ipv6_payload(1, &frame[..13]), None);
    assert_eq!(ipv6_payload(1, &frame[..14]), None);
    assert_eq!(ipv6_payload(1, &[]), None);
    // The payload is returned whatever it holds: the engine judges it.
    assert_eq!(ipv6_payload(1, &frame[..15]), Some(&ip[..1]));
}

#[test]
fn vlan_tags() {
    let ip = ip6();
    let vlan = cat(&[&MACS, &[0x81, 0x00, 0x00, 0x64, 0x86, 0xDD], &ip]);
    assert_eq!(ipv6_payload(1, &vlan), Some(&ip[..]));
    let qinq = cat(&[
        &MACS,
        &[0x88, 0xA8, 0x00, 0x0A, 0x81, 0x00, 0x00, 0x64, 0x86, 0xDD],
        &ip,
    ]);
    assert_eq!(ipv6_payload(1, &qinq), Some(&ip[..]));
    let old_qinq = cat(&[
        &MACS,
        &[0x91, 0x00, 0x00, 0x0A, 0x91, 0x00, 0x00, 0x0B],
        &[0x81, 0x00, 0x00, 0x64, 0x86, 0xDD],
        &ip,
    ]);
    assert_eq!(ipv6_payload(1, &old_qinq), Some(&ip[..]));
    let vlan_v4 = cat(&[&MACS, &[0x81, 0x00, 0x00, 0x64, 0x08, 0x00], &ip4()]);
    assert_eq!(ipv6_payload(1, &vlan_v4), None);
    // A tag cut short.
    assert_eq!(ipv6_payload(1, &vlan[..17]), None);
    assert_eq!(ipv6_payload(1, &vlan[..18]), None);
}

#[test]
fn mpls() {
    let ip = ip6();
    // One label, bottom of stack.
    let one = cat(&[&MACS, &[0x88, 0x47, 0x00, 0x01, 0x01, 0x40], &ip]);
    assert_eq!(ipv6_payload(1, &one), Some(&ip[..]));
    // Two labels, under a VLAN tag.
    let two = cat(&[
        &MACS,
        &[0x81, 0x00, 0x00, 0x64, 0x88, 0x47],
        &[0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40],
        &ip,
    ]);
    assert_eq!(ipv6_payload(1, &two), Some(&ip[..]));
    // IPv4 under the labels; a stack without its bottom.
    let v4 = cat(&[&MACS, &[0x88, 0x47, 0x00, 0x01, 0x01, 0x40], &ip4()]);
    assert_eq!(ipv6_payload(1, &v4), None);
    let bottomless = cat(&[&MACS, &[0x88, 0x47, 0x00, 0x01, 0x00, 0x40]]);
    assert_eq!(ipv6_payload(1, &bottomless), None);
}

#[test]
fn linux_sll() {
    let ip = ip6();
    let head = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    let frame = cat(&[&head, &[0x86, 0xDD], &ip]);
    assert_eq!(ipv6_payload(113, &frame), Some(&ip[..]));
    let v4 = cat(&[&head, &[0x08, 0x00], &ip4()]);
    assert_eq!(ipv6_payload(113, &v4), None);
    let vlan = cat(&[&head, &[0x81, 0x00, 0x00, 0x64, 0x86, 0xDD], &ip]);
    assert_eq!(ipv6_payload(113, &vlan), Some(&ip[..]));
    assert_eq!(ipv6_payload(113, &frame[..15]), None);
    assert_eq!(ipv6_payload(113, &frame[..16]), None);
}

#[test]
fn linux_sll2() {
    let ip = ip6();
    let rest = [0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    let frame = cat(&[&[0x86, 0xDD], &rest, &ip]);
    assert_eq!(ipv6_payload(276, &frame), Some(&ip[..]));
    let v4 = cat(&[&[0x08, 0x00], &rest, &ip4()]);
    assert_eq!(ipv6_payload(276, &v4), None);
    assert_eq!(ipv6_payload(276, &frame[..19]), None);
    assert_eq!(ipv6_payload(276, &frame[..20]), None);
    // An SLL (v1) frame is not SLL2.
    let v1 = cat(&[&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xDD], &ip]);
    assert_eq!(ipv6_payload(276, &v1), None);
}

#[test]
fn bsd_null_either_byte_order() {
    let ip = ip6();
    for family in [24u32, 28, 30] {
        let le = cat(&[&family.to_le_bytes(), &ip]);
        let be = cat(&[&family.to_be_bytes(), &ip]);
        assert_eq!(ipv6_payload(0, &le), Some(&ip[..]), "{family} LE");
        assert_eq!(ipv6_payload(0, &be), Some(&ip[..]), "{family} BE");
    }
    let v4 = cat(&[&2u32.to_le_bytes(), &ip4()]);
    assert_eq!(ipv6_payload(0, &v4), None);
    assert_eq!(ipv6_payload(0, &[30, 0, 0]), None);
    assert_eq!(ipv6_payload(0, &[30, 0, 0, 0]), None);
}

#[test]
fn openbsd_loop_network_order() {
    let ip = ip6();
    let be = cat(&[&24u32.to_be_bytes(), &ip]);
    assert_eq!(ipv6_payload(108, &be), Some(&ip[..]));
    let le = cat(&[&24u32.to_le_bytes(), &ip]);
    assert_eq!(ipv6_payload(108, &le), None);
    let v4 = cat(&[&2u32.to_be_bytes(), &ip4()]);
    assert_eq!(ipv6_payload(108, &v4), None);
}

#[test]
fn raw_ip() {
    let ip = ip6();
    let v4 = ip4();
    assert_eq!(ipv6_payload(101, &ip), Some(&ip[..]));
    assert_eq!(ipv6_payload(229, &ip), Some(&ip[..]));
    // 101 and 229 hand over whatever they hold; 228 is IPv4 by definition.
    assert_eq!(ipv6_payload(101, &v4), Some(&v4[..]));
    assert_eq!(ipv6_payload(229, &v4), Some(&v4[..]));
    assert_eq!(ipv6_payload(228, &v4), None);
    assert_eq!(ipv6_payload(228, &ip), None);
    assert_eq!(ipv6_payload(101, &[]), None);
    assert_eq!(ipv6_payload(229, &[]), None);
}

#[test]
fn unlisted_link_types() {
    let ip = ip6();
    // Frame relay, 802.15.4, PPP, SLIP, Wi-Fi, and nonsense.
    for linktype in [107, 195, 9, 8, 105, 127, 12, 14, 0xFFFF, u32::MAX] {
        assert_eq!(ipv6_payload(linktype, &ip), None, "{linktype}");
    }
}

#[test]
fn never_panics() {
    let mut bytes: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    let linktypes = [0, 1, 101, 108, 113, 228, 229, 276, 107];
    for head in [
        &[0x86, 0xDD][..],
        &[0x81, 0x00],
        &[0x88, 0x47],
        &[0, 0, 0, 30],
    ] {
        for at in [0, 12, 14] {
            let mut b = bytes.clone();
            b[at..at + head.len()].copy_from_slice(head);
            for len in 0..b.len() {
                for lt in linktypes {
                    let _ = ipv6_payload(lt, &b[..len]);
                }
            }
        }
    }
    // All VLAN tags, all MPLS labels without bottom.
    bytes = [0x81, 0x00].repeat(100);
    assert_eq!(ipv6_payload(1, &bytes), None);
    bytes = cat(&[&MACS, &[0x88, 0x47], &[0u8; 4000]]);
    assert_eq!(ipv6_payload(1, &bytes), None);
}
