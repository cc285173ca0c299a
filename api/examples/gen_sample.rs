//! Writes `samples/sample.pcap`, the capture README's first command replays.
//!
//! Run: `cargo run -p v6fw-api --example gen_sample -- samples/sample.pcap`.
//! Every frame is built here (with etherparse where it has a builder, as raw
//! bytes where the point is a shape etherparse will not build) so that, with
//! the README's policy, the replay shows every reason of SPEC.md except
//! `firewall_disabled`, which needs the connection's firewall off
//! (`--disabled`). The frame list and the reason each one should get is
//! [`FRAMES`]; `api/tests/replay_sample.rs` checks both the bytes and the
//! decisions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use etherparse::PacketBuilder;

/// The host whose capture this is (inside the README's `--local` prefix).
pub const LOCAL: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
/// The all-nodes multicast address, ff02::1 (a source no packet may carry).
const MULTICAST_ALL_NODES: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// A remote peer.
pub const REMOTE: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
];
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// One frame: what it shows, the expected `verdict reason proto dport`, the bytes.
pub struct Sample {
    /// What the frame shows.
    pub what: &'static str,
    /// The expected per-packet line without the frame number.
    pub expect: &'static str,
    /// Captured bytes.
    pub bytes: Vec<u8>,
    /// Original length (more than `bytes.len()` for a snap-truncated frame).
    pub orig_len: usize,
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A raw IPv6 packet: fixed header then `payload` (extension headers included).
fn ip6(next: u8, hop: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, hop]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// An 8-byte extension header (hop-by-hop, destination options: PadN inside).
fn ext8(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// A routing header of `kind` with one address.
fn routing(next: u8, kind: u8) -> Vec<u8> {
    let mut h = vec![next, 2, kind, 1, 0, 0, 0, 0];
    h.extend_from_slice(&LOCAL);
    h
}

/// An AH header with a 4-byte ICV: 16 bytes, length field 2.
fn ah(next: u8) -> Vec<u8> {
    let mut h = vec![next, 2, 0, 0];
    h.extend_from_slice(&[0, 0, 0x10, 0x01]); // SPI
    h.extend_from_slice(&[0, 0, 0, 1]); // sequence
    h.extend_from_slice(&[0; 4]); // ICV
    h
}

fn frag(next: u8, offset_units: u16, more: bool, id: u32) -> Vec<u8> {
    let off = (offset_units << 3) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&off.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

fn tcp_hdr(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(20);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

fn udp_hdr(sport: u16, dport: u16, len: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(8);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h
}

fn syn(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, dst, 64)
        .tcp(sport, dport, 1000, 65535)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

fn udp(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn icmp(hop: u8, ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(REMOTE, LOCAL, hop)
        .icmpv6_raw(ty, 0, [0; 4])
        .write(&mut v, payload)
        .unwrap();
    v
}

fn whole(what: &'static str, expect: &'static str, bytes: Vec<u8>) -> Sample {
    let orig_len = bytes.len();
    Sample {
        what,
        expect,
        bytes,
        orig_len,
    }
}

/// Every frame of the sample, in order.
pub fn frames() -> Vec<Sample> {
    let mut v = vec![
        whole(
            "IPv4 frame",
            "accept\tnot_ipv6\t-\t-",
            eth(
                0x0800,
                &[
                    0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                ],
            ),
        ),
        whole(
            "IPv6 header cut to 30 bytes",
            "drop\tmalformed\t-\t-",
            eth(0x86dd, &ip6(6, 64, REMOTE, LOCAL, &[])[..30]),
        ),
        whole(
            "payload length says more than there is",
            "drop\tmalformed\t-\t-",
            {
                let mut p = ip6(6, 64, REMOTE, LOCAL, &tcp_hdr(1234, 22, 0x02));
                if let Ok(mut ip) = v6fw_engine::wire::Ipv6Packet::new_checked(&mut p[..]) {
                    ip.set_payload_len(200);
                }
                eth(0x86dd, &p)
            },
        ),
        whole(
            "TCP SYN to 22 (own pair)",
            "accept\topen_port\t6\t22",
            syn(REMOTE, LOCAL, 40001, 22),
        ),
        whole(
            "TCP SYN to 443 (global pair)",
            "accept\tglobal_port\t6\t443",
            syn(REMOTE, LOCAL, 40002, 443),
        ),
        whole(
            "TCP SYN to 8080",
            "drop\tport_closed\t6\t8080",
            syn(REMOTE, LOCAL, 40003, 8080),
        ),
        whole(
            "outbound TCP SYN to port 80",
            "accept\toutbound\t6\t80",
            syn(LOCAL, REMOTE, 50000, 80),
        ),
        whole("its SYN-ACK reply", "accept\testablished\t6\t50000", {
            let mut v = Vec::new();
            PacketBuilder::ethernet2(MAC_A, MAC_B)
                .ipv6(REMOTE, LOCAL, 64)
                .tcp(80, 50000, 5000, 65535)
                .syn()
                .ack(1001)
                .write(&mut v, &[])
                .unwrap();
            v
        }),
        whole(
            "UDP to 53 (own pair)",
            "accept\topen_port\t17\t53",
            udp(REMOTE, LOCAL, 5353, 53, b"query"),
        ),
        whole(
            "UDP to 9999",
            "drop\tport_closed\t17\t9999",
            udp(REMOTE, LOCAL, 5353, 9999, b"hello"),
        ),
        whole(
            "outbound UDP to NTP",
            "accept\toutbound\t17\t123",
            udp(LOCAL, REMOTE, 40123, 123, &[0x23; 48]),
        ),
        whole(
            "the NTP reply",
            "accept\testablished\t17\t40123",
            udp(REMOTE, LOCAL, 123, 40123, &[0x24; 48]),
        ),
        whole(
            "ICMPv6 echo request",
            "accept\ticmp_allowed\t58\t128",
            icmp(64, 128, b"ping"),
        ),
        whole(
            "neighbour solicitation, hop limit 255",
            "accept\ticmp_allowed\t58\t135",
            icmp(255, 135, &LOCAL),
        ),
        whole(
            "neighbour solicitation, hop limit 64",
            "drop\ticmp_policy\t58\t135",
            icmp(64, 135, &LOCAL),
        ),
        whole(
            "redirect",
            "drop\ticmp_policy\t58\t137",
            icmp(255, 137, &[LOCAL, REMOTE].concat()),
        ),
        whole(
            "hop-by-hop after destination options",
            "drop\tbad_extension_order\t-\t-",
            {
                let payload = [ext8(0), ext8(6), tcp_hdr(1, 22, 2)].concat();
                eth(0x86dd, &ip6(60, 64, REMOTE, LOCAL, &payload))
            },
        ),
        whole("routing header type 0", "drop\trouting_header_0\t-\t-", {
            let payload = [routing(6, 0), tcp_hdr(1, 22, 2)].concat();
            eth(0x86dd, &ip6(43, 64, REMOTE, LOCAL, &payload))
        }),
        whole("nine extension headers", "drop\tchain_too_long\t-\t-", {
            let mut payload = ext8(51);
            for i in 0..8 {
                payload.extend(ah(if i == 7 { 6 } else { 51 }));
            }
            payload.extend(tcp_hdr(1, 22, 2));
            eth(0x86dd, &ip6(0, 64, REMOTE, LOCAL, &payload))
        }),
        whole("next header 59", "drop\tno_upper_layer\t-\t-", {
            eth(0x86dd, &ip6(60, 64, REMOTE, LOCAL, &ext8(59)))
        }),
        whole(
            "first fragment with its TCP header cut",
            "drop\tincomplete_chain\t6\t-",
            {
                let payload = [frag(6, 0, true, 0x1001), tcp_hdr(1, 22, 2)[..8].to_vec()].concat();
                eth(0x86dd, &ip6(44, 64, REMOTE, LOCAL, &payload))
            },
        ),
        whole(
            "a later fragment of the same datagram",
            "drop\torphan_fragment\t-\t-",
            {
                let payload = [frag(6, 1, false, 0x1001), vec![0; 16]].concat();
                eth(0x86dd, &ip6(44, 64, REMOTE, LOCAL, &payload))
            },
        ),
        whole(
            "first fragment of a DNS query to 53",
            "accept\topen_port\t17\t53",
            {
                let payload = [
                    frag(17, 0, true, 0x2002),
                    udp_hdr(5353, 53, 48),
                    vec![0x11; 24],
                ]
                .concat();
                eth(0x86dd, &ip6(44, 64, REMOTE, LOCAL, &payload))
            },
        ),
        whole("its second fragment", "accept\topen_port\t-\t-", {
            let payload = [frag(17, 4, false, 0x2002), vec![0x11; 16]].concat();
            eth(0x86dd, &ip6(44, 64, REMOTE, LOCAL, &payload))
        }),
        whole("ESP", "drop\tunsupported_protocol\t50\t-", {
            eth(
                0x86dd,
                &ip6(
                    50,
                    64,
                    REMOTE,
                    LOCAL,
                    &[0, 0, 0x10, 1, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd],
                ),
            )
        }),
        whole("TCP header of 12 bytes", "drop\tmalformed\t6\t-", {
            eth(0x86dd, &ip6(6, 64, REMOTE, LOCAL, &tcp_hdr(1, 22, 2)[..12]))
        }),
    ];
    // A frame the capture cut at 74 bytes: judged on the bytes it has.
    let mut long = udp(REMOTE, LOCAL, 5353, 53, &[0x42; 200]);
    let orig_len = long.len();
    long.truncate(14 + 40 + 8 + 12);
    v.push(Sample {
        what: "UDP to 53 cut by the snap length",
        expect: "accept\topen_port\t17\t53",
        bytes: long,
        orig_len,
    });
    // An echo request from a multicast source (a smurf amplifier's victim
    // would get the replies): RFC 4291 §2.7, SPEC.md step 3.
    v.push(whole(
        "ICMPv6 echo request from the multicast source ff02::1",
        "drop\tbad_address\t-\t-",
        {
            let mut v = Vec::new();
            PacketBuilder::ethernet2(MAC_A, MAC_B)
                .ipv6(MULTICAST_ALL_NODES, LOCAL, 64)
                .icmpv6_raw(128, 0, [0; 4])
                .write(&mut v, b"ping")
                .unwrap();
            v
        },
    ));
    v
}

/// The sample as a pcap file (Ethernet, microsecond timestamps, 10 ms apart).
pub fn pcap() -> Vec<u8> {
    const START: u32 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames().iter().enumerate() {
        let usec = i as u32 * 10_000;
        out.extend_from_slice(&(START + usec / 1_000_000).to_le_bytes());
        out.extend_from_slice(&(usec % 1_000_000).to_le_bytes());
        out.extend_from_slice(&(f.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.orig_len as u32).to_le_bytes());
        out.extend_from_slice(&f.bytes);
    }
    out
}

#[allow(dead_code)]
fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "samples/sample.pcap".to_string());
    std::fs::write(&path, pcap()).unwrap();
    for (i, f) in frames().iter().enumerate() {
        println!("{}\t{}\t# {}", i + 1, f.expect, f.what);
    }
}
