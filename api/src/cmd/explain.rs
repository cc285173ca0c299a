//! `v6fw replay CAPTURE --explain N`: frame N's walk, printed as `tshark -V`
//! prints a dissection: the link layer, each IPv6 header with its byte
//! offset and fields, the upper layer, what the flow state and the fragment
//! memory said, and the step of SPEC.md that decided.
//!
//! It is built on the engine's own walk ([`v6fw_engine::walk::walk`]) and
//! the decision the replay made for the frame (after every frame before it,
//! so the state is the replay's); it decides nothing itself.

mod layers;

use std::io::{self, Write};
use std::net::Ipv6Addr;

use serde::Serialize;
use v6fw_capture::replay::{Prefix, Replayed};
use v6fw_engine::walk::{walk, Fragment, Outcome, Upper, Walk};
use v6fw_engine::{Decision, Direction, IcmpErrors, Policy, Reason};

pub use layers::Layer;

/// What the explanation needs from the replay's policy.
#[derive(Debug, Clone)]
pub struct Context {
    /// `--local` prefixes (outbound sources).
    pub local: Vec<Prefix>,
    /// Whether flows are tracked.
    pub state: bool,
    /// How ICMPv6 errors are judged.
    pub icmp_errors: IcmpErrors,
    /// How long a first fragment's verdict is remembered, in seconds.
    pub fragment_s: u32,
}

impl Context {
    /// The context of a replay on `policy` with `local` prefixes.
    pub fn new(policy: &Policy, local: &[Prefix]) -> Self {
        Context {
            local: local.to_vec(),
            state: policy.state.enabled,
            icmp_errors: policy.icmp_errors,
            fragment_s: policy.state.fragment_s,
        }
    }
}

/// One frame explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Frame number, from 1.
    pub frame: u64,
    /// Captured bytes.
    pub captured: usize,
    /// The capture's snap length cut the frame.
    pub truncated: bool,
    /// Capture time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The layers, outermost first.
    pub layers: Vec<Layer>,
    /// `inbound` or `outbound`, and why.
    pub direction: String,
    /// What the flow table was asked, and what it said.
    pub state: String,
    /// What the fragment memory was asked, and what it said.
    pub fragments: String,
    /// The decision.
    pub verdict: &'static str,
    /// Its reason.
    pub reason: &'static str,
    /// SPEC.md's `proto` column.
    pub proto: Option<u8>,
    /// SPEC.md's `dport` column.
    pub dport: Option<u16>,
    /// The SPEC.md step that decided, e.g. `Inbound decision, step 6`.
    pub step: &'static str,
    /// Why that step decided so.
    pub why: String,
}

/// Explains one decided frame; `not_recorded` says its decision counted a
/// flow in `flows_not_recorded`.
pub fn explain(r: &Replayed<'_>, ctx: &Context, not_recorded: bool) -> Explanation {
    let w = walk(r.packet, r.meta.truncated);
    let base = r.link.len().saturating_sub(r.packet.len());
    let link_len = if r.packet.is_empty() {
        r.link.len()
    } else {
        base
    };
    let mut all = vec![layers::link_layer(r.linktype, r.link, link_len)];
    let mut upper_at = 40;
    if !r.packet.is_empty() {
        all.push(layers::fixed_header(r.packet, base, &w));
        let (ext, at) = layers::extension_headers(r.packet, base, &w);
        all.extend(ext);
        upper_at = at;
    }
    if !matches!(w.outcome(), Outcome::Invalid(_) | Outcome::BadLength) {
        all.extend(layers::upper_layer(r.packet, base, upper_at, &w));
    }
    let d = r.decision;
    let (step, why) = step(&d, &w, r.packet.is_empty(), r.meta.direction);
    Explanation {
        frame: r.frame,
        captured: r.link.len(),
        truncated: r.meta.truncated,
        timestamp_ns: r.meta.now_ns,
        layers: all,
        direction: direction(r, ctx, &w),
        state: state_note(&d, &w, ctx, r.meta.direction, not_recorded),
        fragments: fragment_note(&d, &w, ctx, r.meta.direction),
        verdict: d.verdict().as_str(),
        reason: d.reason.as_str(),
        proto: d.proto,
        dport: d.dport,
        step,
        why,
    }
}

fn addr(a: [u8; 16]) -> Ipv6Addr {
    Ipv6Addr::from(a)
}

fn direction(r: &Replayed<'_>, ctx: &Context, w: &Walk<'_>) -> String {
    let prefixes: Vec<String> = ctx.local.iter().map(ToString::to_string).collect();
    match r.meta.direction {
        Direction::Outbound => format!(
            "outbound: the source {} is inside --local {}",
            addr(w.src()),
            prefixes.join(", ")
        ),
        Direction::Inbound if matches!(w.outcome(), Outcome::Invalid(_)) => {
            "inbound: a frame without an IPv6 source cannot be placed as outbound".to_string()
        }
        Direction::Inbound if prefixes.is_empty() => {
            "inbound: no --local prefix was given, every frame is inbound".to_string()
        }
        Direction::Inbound => format!(
            "inbound: the source {} is outside --local {}",
            addr(w.src()),
            prefixes.join(", ")
        ),
    }
}

/// Decided before the connection's pairs and state were consulted.
fn before_lookups(d: &Decision, w: &Walk<'_>) -> bool {
    !matches!(w.outcome(), Outcome::Complete | Outcome::LaterFragment)
        || d.reason == Reason::FirewallDisabled
        || d.reason == Reason::IncompleteChain
        || (d.reason == Reason::BadAddress && w.outcome() != Outcome::LaterFragment)
}

fn state_note(
    d: &Decision,
    w: &Walk<'_>,
    ctx: &Context,
    dir: Direction,
    not_recorded: bool,
) -> String {
    let ports = w.ports();
    if dir == Direction::Outbound {
        return match ports {
            _ if !ctx.state => "state is off: no flow is recorded".to_string(),
            Some((p, sport, dport)) => format!(
                "{} the flow {} [{}]:{} -> [{}]:{}",
                if not_recorded {
                    "not recorded (counted in flows_not_recorded: every slot it could take holds a confirmed flow):"
                } else {
                    "records or refreshes"
                },
                layers::proto_name(p),
                addr(w.src()),
                sport,
                addr(w.dst()),
                dport
            ),
            _ => "no flow is recorded: only a TCP or UDP header that passed its length check starts one".to_string(),
        };
    }
    if before_lookups(d, w) {
        return "not consulted: decided before the pairs and the flow table".to_string();
    }
    if w.outcome() == Outcome::LaterFragment {
        return "not consulted: a later fragment is decided by its first fragment's memory"
            .to_string();
    }
    match d.reason {
        Reason::OpenPort | Reason::GlobalPort => {
            "not consulted: open pairs are checked before established".to_string()
        }
        Reason::Established => match ports {
            Some((p, sport, dport)) => format!(
                "the reverse of this packet, {} [{}]:{} -> [{}]:{}, is a tracked flow: established (the flow is now confirmed)",
                layers::proto_name(p),
                addr(w.dst()),
                dport,
                addr(w.src()),
                sport
            ),
            None => "the first fragment's flow was tracked".to_string(),
        },
        Reason::PortClosed if !ctx.state => "state is off: no flow lookup".to_string(),
        Reason::PortClosed
            if matches!(w.upper(), Upper::Tcp { flags, .. } if flags & 0x12 == 0x02) =>
        {
            "not matched: a TCP SYN without ACK never matches a flow (a new connection attempt)"
                .to_string()
        }
        Reason::PortClosed | Reason::OutOfScope => {
            "no tracked flow is the reverse of this packet".to_string()
        }
        Reason::IcmpUnrelated => {
            "the packet this error quotes is not one the host sent (no tracked flow, or another source)"
                .to_string()
        }
        Reason::IcmpAllowed if matches!(w.upper(), Upper::Icmp { ty: 1..=4, .. }) => {
            match ctx.icmp_errors {
                IcmpErrors::Related => {
                    "the packet this error quotes is one the host sent".to_string()
                }
                IcmpErrors::Any => {
                    "not consulted: ICMPv6 errors are judged by type (icmp_errors = \"any\")"
                        .to_string()
                }
            }
        }
        Reason::IcmpAllowed | Reason::IcmpPolicy => {
            "not consulted: ICMPv6 is judged by its type's policy".to_string()
        }
        _ => "not consulted".to_string(),
    }
}

fn frag_key(w: &Walk<'_>, f: Fragment) -> String {
    format!(
        "(source {}, destination {}, identification 0x{:08x})",
        addr(w.src()),
        addr(w.dst()),
        f.id
    )
}

fn fragment_note(d: &Decision, w: &Walk<'_>, ctx: &Context, dir: Direction) -> String {
    let Some(f) = w.fragment() else {
        return "no fragment header".to_string();
    };
    if f.is_atomic() {
        return "atomic fragment (offset 0, M = 0): decided as an unfragmented packet, never remembered".to_string();
    }
    if dir == Direction::Outbound || d.reason == Reason::FirewallDisabled {
        return "not consulted: only inbound fragments are remembered".to_string();
    }
    if d.reason == Reason::BadAddress && address_refusal(w).is_some() {
        return "not consulted: decided by its addresses, before the fragment header".to_string();
    }
    if w.outcome() == Outcome::BadFragment {
        return if f.is_first() {
            format!(
                "a first fragment whose length breaks RFC 8200 §4.5: not remembered, and any memory for {} is removed (its later fragments are orphans)",
                frag_key(w, f)
            )
        } else {
            "not consulted: the fragment's length breaks RFC 8200 §4.5 (malformed before offset, overlap and memory are looked at)".to_string()
        };
    }
    if f.is_first() {
        return if d.reason == Reason::IncompleteChain {
            format!(
                "first fragment without its whole header chain: not remembered, and any memory for {} is removed (its later fragments are orphans)",
                frag_key(w, f)
            )
        } else {
            format!(
                "first fragment: {} is remembered for {} for {} s, with its fragmentable part of {} bytes",
                d.reason,
                frag_key(w, f),
                ctx.fragment_s,
                f.fragmentable_len
            )
        };
    }
    let start = u32::from(f.offset) * 8;
    match d.reason {
        Reason::OrphanFragment => format!(
            "later fragment (offset {start} bytes): nothing is remembered for {}",
            frag_key(w, f)
        ),
        Reason::FragmentOverlap => format!(
            "later fragment (offset {start} bytes): starts inside the fragmentable part remembered for {}",
            frag_key(w, f)
        ),
        r => format!(
            "later fragment (offset {start} bytes): its first fragment's verdict, {r}, is remembered for {}",
            frag_key(w, f)
        ),
    }
}

/// The step of SPEC.md that decided, and why.
fn step(d: &Decision, w: &Walk<'_>, no_packet: bool, dir: Direction) -> (&'static str, String) {
    const INBOUND_1: &str = "Inbound decision, step 1";
    const INBOUND_2: &str = "Inbound decision, step 2";
    const INBOUND_3: &str = "Inbound decision, step 3";
    const INBOUND_4: &str = "Inbound decision, step 4";
    const INBOUND_5: &str = "Inbound decision, step 5";
    const INBOUND_6: &str = "Inbound decision, step 6";
    let s = |x: &str| x.to_string();
    match d.reason {
        Reason::NotIpv6 if no_packet => (
            "Replay and the per-packet line",
            s("the frame carries no IPv6 packet (another ethertype or address family, an unknown link type or a short link header): not_ipv6, as step 1 lets IPv4 through"),
        ),
        Reason::NotIpv6 => (INBOUND_1, s("the version nibble is not 6")),
        Reason::Malformed => match w.outcome() {
            Outcome::Invalid(_) => (INBOUND_2, s("fewer than 40 bytes")),
            Outcome::BadLength if w.jumbo().is_none() && dir == Direction::Inbound => (
                INBOUND_2,
                s("the payload length says more bytes than the packet has, or is 0 without a valid Jumbo Payload option"),
            ),
            Outcome::BadFragment => (INBOUND_5, fragment_length_why(w)),
            _ if w.proto().is_some() => (
                INBOUND_6,
                s("the upper-layer header is shorter than its minimum (TCP 20 bytes and a data offset of at least 5 that fits, UDP 8, ICMPv6 4)"),
            ),
            _ => (INBOUND_4, s("an extension header runs past the end of the packet")),
        },
        Reason::FirewallDisabled => (INBOUND_3, s("the connection's firewall is off")),
        Reason::BadAddress => match address_refusal(w) {
            Some(r) => (
                INBOUND_3,
                format!("an address no packet from another node may carry: {}", r.rule()),
            ),
            None if w.outcome() == Outcome::LaterFragment => (
                INBOUND_5,
                s("a later fragment gets its first fragment's remembered verdict: bad_address"),
            ),
            None => (
                INBOUND_6,
                format!(
                    "TCP to the multicast destination {} (RFC 1122 §4.2.3.10, RFC 9293 §3.10.7.2)",
                    addr(w.dst())
                ),
            ),
        },
        Reason::BadExtensionOrder => (
            INBOUND_4,
            s("hop-by-hop not right after the fixed header, a second fragment header, or a third destination-options header"),
        ),
        Reason::RoutingHeader0 => (INBOUND_4, s("a routing header of type 0 (RFC 5095)")),
        Reason::ChainTooLong => (INBOUND_4, s("more than 8 extension headers")),
        Reason::NoUpperLayer => (INBOUND_4, s("next header 59: no next header")),
        Reason::IncompleteChain => (
            INBOUND_5,
            s("a first fragment without the whole header chain and upper-layer header (RFC 7112)"),
        ),
        Reason::OrphanFragment => (INBOUND_5, s("a later fragment whose first fragment is not remembered")),
        Reason::FragmentOverlap => (
            INBOUND_5,
            s("a later fragment that starts inside its first fragment's fragmentable part (RFC 5722)"),
        ),
        _ if matches!(w.outcome(), Outcome::LaterFragment) && dir == Direction::Inbound => (
            INBOUND_5,
            format!("a later fragment gets its first fragment's remembered verdict: {}", d.reason),
        ),
        Reason::OpenPort => (INBOUND_6, port_why(d, w, "one of the connection's own open pairs")),
        Reason::GlobalPort => (INBOUND_6, port_why(d, w, "open through a global pair")),
        Reason::Established => (INBOUND_6, s("the reverse of a tracked flow")),
        Reason::PortClosed => (INBOUND_6, port_why(d, w, "not open, and no tracked flow matches")),
        Reason::OutOfScope => (
            INBOUND_6,
            port_why(d, w, "open, but only for sources its scope holds, and no tracked flow matches"),
        ),
        Reason::IcmpAllowed => (INBOUND_6, s("the ICMPv6 policy allows this type (with its hop-limit and fragment conditions)")),
        Reason::IcmpPolicy => (INBOUND_6, s("the ICMPv6 policy refuses this type, or its hop-limit or fragment condition fails (NDP: hop limit 255 and no fragment header; MLD: hop limit 1)")),
        Reason::IcmpUnrelated => (INBOUND_6, s("icmp_errors = \"related\" and the error quotes no packet the host sent")),
        Reason::UnsupportedProtocol => (INBOUND_6, s("an upper-layer protocol other than TCP, UDP and ICMPv6")),
        Reason::Outbound => ("Outbound packets and state", s("outbound packets are always accepted, whatever their shape")),
    }
}

/// The step-3 address rule the packet breaks, if any (the engine's own test).
fn address_refusal(w: &Walk<'_>) -> Option<v6fw_engine::address::Refusal> {
    v6fw_engine::address::refusal(w.src_ref(), w.dst_ref())
}

/// Which half of step 5's length rule (RFC 8200 §4.5) a fragment breaks.
fn fragment_length_why(w: &Walk<'_>) -> String {
    let Some(f) = w.fragment() else {
        return "the fragment's length breaks RFC 8200 §4.5".to_string();
    };
    let len = f.fragmentable_len;
    if f.more && !len.is_multiple_of(8) {
        format!("M = 1 and the fragment's {len} bytes are not a multiple of 8 (RFC 8200 §4.5)")
    } else {
        format!(
            "the headers before the fragment header + offset {} bytes + the fragment's {len} bytes are over 65,535 (RFC 8200 §4.5)",
            u32::from(f.offset) * 8
        )
    }
}

fn port_why(d: &Decision, w: &Walk<'_>, what: &str) -> String {
    let proto = match w.proto() {
        Some(6) => "tcp",
        Some(17) => "udp",
        _ => "?",
    };
    match d.dport {
        Some(p) => format!("destination {p}/{proto}: {what}"),
        None => what.to_string(),
    }
}

/// Writes the explanation as text (`tshark -V`'s layout) or JSON.
pub fn write(out: &mut impl Write, e: &Explanation, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, e)?;
        return writeln!(out);
    }
    writeln!(
        out,
        "Frame {}: {} bytes captured{}, at {}.{:09} s (Unix time)",
        e.frame,
        e.captured,
        if e.truncated {
            " (cut by the snap length)"
        } else {
            ""
        },
        e.timestamp_ns / 1_000_000_000,
        e.timestamp_ns % 1_000_000_000
    )?;
    for l in &e.layers {
        writeln!(out, "{}, offset {}, {} bytes", l.name, l.offset, l.length)?;
        for f in &l.fields {
            writeln!(out, "    {}: {}", f.name, f.value)?;
        }
    }
    writeln!(out, "Direction: {}", e.direction)?;
    writeln!(out, "Flow state: {}", e.state)?;
    writeln!(out, "Fragment memory: {}", e.fragments)?;
    writeln!(out, "Decision: {} {}", e.verdict, e.reason)?;
    writeln!(out, "    SPEC.md: {}: {}", e.step, e.why)?;
    let col = |v: Option<u16>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    writeln!(
        out,
        "    Per-packet line: {}\t{}\t{}\t{}\t{}",
        e.frame,
        e.verdict,
        e.reason,
        col(e.proto.map(u16::from)),
        col(e.dport)
    )
}
