//! The dissection part of `--explain`: the link layer, each IPv6 header with
//! its byte offset and fields, and the upper layer, as `tshark -V` lists them.
//! Everything here only reads bytes the walk already judged; nothing decides.

use std::net::Ipv6Addr;

use serde::Serialize;
use v6fw_capture::link;
use v6fw_engine::walk::{ext_headers, Outcome, Upper, Walk};
use v6fw_engine::wire::{self, next_header, version_of, Ipv6Packet, TcpPacket, UdpPacket};

/// One field of a layer: its name and its value as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// The field's name, e.g. `Source port`.
    pub name: String,
    /// Its value, e.g. `40001`.
    pub value: String,
}

/// One layer of the frame: what it is, where it starts in the frame, how
/// long it is, and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// What the layer is, e.g. `IPv6 fragment header`.
    pub name: String,
    /// Its byte offset in the captured frame.
    pub offset: usize,
    /// Its length in bytes (as far as it was read).
    pub length: usize,
    /// Its fields, in header order.
    pub fields: Vec<Field>,
}

impl Layer {
    fn new(name: impl Into<String>, offset: usize, length: usize) -> Self {
        Layer {
            name: name.into(),
            offset,
            length,
            fields: Vec::new(),
        }
    }

    fn field(&mut self, name: &str, value: impl ToString) {
        self.fields.push(Field {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
}

/// A protocol number with its name, e.g. `TCP (6)`.
pub fn proto_name(p: u8) -> String {
    let name = match p {
        0 => "hop-by-hop options",
        6 => "TCP",
        17 => "UDP",
        43 => "routing",
        44 => "fragment",
        50 => "ESP",
        51 => "authentication header",
        58 => "ICMPv6",
        59 => "no next header",
        60 => "destination options",
        132 => "SCTP",
        _ => return p.to_string(),
    };
    format!("{name} ({p})")
}

/// An upper-layer protocol's short name, e.g. `TCP` (the number if unnamed).
fn short_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        _ => format!("protocol {p}"),
    }
}

/// An ICMPv6 type with its name, e.g. `echo request (128)`.
fn icmp_type_name(ty: u8) -> String {
    let name = match ty {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbour solicitation",
        136 => "neighbour advertisement",
        137 => "redirect",
        143 => "multicast listener report v2",
        _ => return ty.to_string(),
    };
    format!("{name} ({ty})")
}

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*b.get(at..)?.first_chunk::<2>()?))
}

/// The link layer: its type and the header before the IPv6 packet
/// (`link_len` bytes; the whole frame when it carries no IPv6 packet).
pub fn link_layer(linktype: u32, frame: &[u8], link_len: usize) -> Layer {
    let name = match linktype {
        link::LINKTYPE_NULL => "BSD loopback",
        link::LINKTYPE_ETHERNET => "Ethernet II",
        link::LINKTYPE_RAW => "raw IP",
        link::LINKTYPE_LOOP => "OpenBSD loopback",
        link::LINKTYPE_LINUX_SLL => "Linux cooked capture v1",
        link::LINKTYPE_IPV4 => "raw IPv4",
        link::LINKTYPE_IPV6 => "raw IPv6",
        link::LINKTYPE_LINUX_SLL2 => "Linux cooked capture v2",
        _ => "unknown link type",
    };
    let mut l = Layer::new(format!("Link layer: {name}"), 0, link_len);
    l.field("Link type", linktype);
    if linktype == link::LINKTYPE_ETHERNET {
        if let Some(h) = frame.get(..12) {
            l.field("Destination", mac(h.get(..6).unwrap_or_default()));
            l.field("Source", mac(h.get(6..).unwrap_or_default()));
        }
        // Ethertypes (and VLAN tags) up to where the IPv6 packet starts.
        let mut at = 12;
        while at + 2 <= link_len.max(14) {
            let Some(ty) = be16(frame, at) else { break };
            l.field("Type", format!("0x{ty:04x}"));
            if matches!(ty, 0x8100 | 0x88a8 | 0x9100) {
                if let Some(tci) = be16(frame, at + 2) {
                    l.field("VLAN id", tci & 0x0fff);
                }
                at += 4;
            } else {
                break;
            }
        }
    }
    if link_len == frame.len() {
        l.field("IPv6 packet", "none in this frame");
    }
    l
}

/// The fixed IPv6 header at frame offset `base` (cut, when the packet is
/// shorter than 40 bytes).
pub fn fixed_header(pkt: &[u8], base: usize, w: &Walk<'_>) -> Layer {
    let Ok(h) = Ipv6Packet::new_checked(pkt) else {
        let mut l = Layer::new("IPv6 header (cut)", base, pkt.len());
        l.field("Version", version_of(pkt).unwrap_or(0));
        l.field("Captured bytes", pkt.len());
        return l;
    };
    let mut l = Layer::new("IPv6 header", base, Ipv6Packet::<&[u8]>::HEADER_LEN);
    l.field("Version", h.version());
    l.field("Traffic class", format!("0x{:02x}", h.traffic_class()));
    l.field("Flow label", format!("0x{:05x}", h.flow_label()));
    l.field("Payload length", h.payload_len());
    l.field("Next header", proto_name(h.next_header()));
    l.field("Hop limit", h.hop_limit());
    l.field("Source", Ipv6Addr::from(w.src()));
    l.field("Destination", Ipv6Addr::from(w.dst()));
    if let Some(j) = w.jumbo() {
        l.field("Jumbo payload length", j);
    }
    l
}

/// The extension headers the walk read (the last one may be one that did
/// not fit: then it is missing here), and the offset in the packet where the
/// upper layer starts.
pub fn extension_headers(pkt: &[u8], base: usize, w: &Walk<'_>) -> (Vec<Layer>, usize) {
    let mut layers = Vec::new();
    let mut upper_at = Ipv6Packet::<&[u8]>::HEADER_LEN;
    let walked = match w.outcome() {
        Outcome::Invalid(_) | Outcome::BadLength => 0,
        _ => usize::from(w.ext_headers()),
    };
    for h in ext_headers(pkt).take(walked) {
        upper_at = h.offset + h.bytes.len();
        let b = h.bytes;
        let mut l = Layer::new(
            format!("IPv6 {} header", ext_name(h.kind)),
            base + h.offset,
            b.len(),
        );
        l.field(
            "Next header",
            proto_name(b.first().copied().unwrap_or_default()),
        );
        let Ok(v) = wire::ExtHeader::new_checked(b, h.kind) else {
            layers.push(l);
            continue;
        };
        match h.kind {
            next_header::FRAGMENT => {
                let f = v.fragment();
                let off = f.map_or(0, |f| f.offset());
                l.field(
                    "Fragment offset",
                    format!("{off} ({} bytes)", u32::from(off) * 8),
                );
                l.field(
                    "More fragments",
                    f.map_or(0, |f| u8::from(f.more_fragments())),
                );
                l.field(
                    "Identification",
                    format!("0x{:08x}", f.map_or(0, |f| f.ident())),
                );
            }
            next_header::ROUTING => {
                l.field("Length", b.len());
                l.field("Routing type", v.routing_type());
                l.field("Segments left", v.segments_left());
            }
            next_header::AUTH => {
                l.field("Length", b.len());
                l.field("SPI", format!("0x{:08x}", v.auth_spi()));
                l.field("Sequence", v.auth_sequence());
            }
            _ => {
                l.field("Length", b.len());
                l.field("Options", options(v.options()));
            }
        }
        layers.push(l);
    }
    (layers, upper_at)
}

fn ext_name(kind: u8) -> &'static str {
    match kind {
        next_header::HOP_BY_HOP => "hop-by-hop options",
        next_header::ROUTING => "routing",
        next_header::FRAGMENT => "fragment",
        next_header::AUTH => "authentication",
        _ => "destination options",
    }
}

/// The options of a hop-by-hop or destination-options header, e.g.
/// `PadN (4 bytes)`.
fn options(opts: wire::Ipv6Options<'_>) -> String {
    let mut names = Vec::new();
    for o in opts {
        let Some(len) = o.len else {
            names.push(if o.ty == wire::option_type::PAD1 {
                "Pad1".to_string()
            } else {
                format!("type 0x{:02x} (cut)", o.ty)
            });
            continue;
        };
        let name = match o.ty {
            wire::option_type::PADN => "PadN".to_string(),
            wire::option_type::JUMBO => "Jumbo payload".to_string(),
            wire::option_type::ROUTER_ALERT => "Router alert".to_string(),
            ty => format!("type 0x{ty:02x}"),
        };
        names.push(format!("{name} ({len} bytes)"));
    }
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The upper-layer header at packet offset `at`, once the walk reached it.
pub fn upper_layer(pkt: &[u8], base: usize, at: usize, w: &Walk<'_>) -> Option<Layer> {
    let proto = w.proto()?;
    let l4 = pkt.get(at..).unwrap_or_default();
    let l = match w.upper() {
        Upper::Tcp {
            sport,
            dport,
            flags,
            window,
            seq,
            ack,
        } => {
            let data_offset = TcpPacket::new_checked(l4).map_or(0, |t| t.header_len());
            let mut l = Layer::new("TCP header", base + at, data_offset);
            l.field("Source port", sport);
            l.field("Destination port", dport);
            l.field("Sequence number", seq);
            l.field("Acknowledgement number", ack);
            l.field("Header length", data_offset);
            l.field("Flags", tcp_flags(flags));
            l.field("Window", window);
            l
        }
        Upper::Udp { sport, dport } => {
            let mut l = Layer::new("UDP header", base + at, 8);
            l.field("Source port", sport);
            l.field("Destination port", dport);
            l.field("Length", UdpPacket::new_checked(l4).map_or(0, |u| u.len()));
            l
        }
        Upper::Icmp { ty, code } => {
            let mut l = Layer::new("ICMPv6 header", base + at, l4.len().min(8));
            l.field("Type", icmp_type_name(ty));
            l.field("Code", code);
            l
        }
        Upper::Other => {
            let mut l = Layer::new(
                format!("{} payload", proto_name(proto)),
                base + at,
                l4.len(),
            );
            l.field("Header", "no known header size: nothing read");
            l
        }
        Upper::None => {
            let mut l = Layer::new(
                format!("{} header (cut)", short_name(proto)),
                base + at,
                l4.len(),
            );
            l.field("Captured bytes", l4.len());
            l
        }
    };
    Some(l)
}

/// TCP flags by name, e.g. `0x12 (SYN, ACK)`.
fn tcp_flags(flags: u8) -> String {
    const NAMES: [(u8, &str); 8] = [
        (0x80, "CWR"),
        (0x40, "ECE"),
        (0x20, "URG"),
        (0x10, "ACK"),
        (0x08, "PSH"),
        (0x04, "RST"),
        (0x02, "SYN"),
        (0x01, "FIN"),
    ];
    let set: Vec<&str> = NAMES
        .iter()
        .rev()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    format!(
        "0x{flags:02x} ({})",
        if set.is_empty() {
            "none".into()
        } else {
            set.join(", ")
        }
    )
}
