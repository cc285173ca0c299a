//! Replay: decide every frame of a capture file as the live path would.
//!
//! Every frame is one packet on one connection (SPEC.md, "Replay"). A frame
//! whose source lies inside a `--local` prefix is outbound (so replies can be
//! replayed as `established`); every other frame is inbound. A frame without
//! an IPv6 packet is `not_ipv6`. The capture's own timestamps drive the flow
//! and fragment timeouts, so a replay is deterministic.

use std::ops::ControlFlow;

use v6fw_engine::wire::{Ipv6Packet, IPV6_VERSION};
use v6fw_engine::{Decision, Direction, Engine, PacketMeta, Totals};

use crate::file::{CaptureError, CaptureFile};

/// An IPv6 prefix such as `fd00::/8` (the engine's, shared with scopes).
pub use v6fw_engine::{Prefix, PrefixError};

/// How frames are placed.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Sources inside these prefixes are outbound.
    pub local: Vec<Prefix>,
    /// The connection's interface index.
    pub if_index: u32,
}

impl ReplayOptions {
    /// The direction of an IPv6 packet: outbound when its source is local.
    /// A packet too short to have a source is inbound.
    pub fn direction(&self, packet: &[u8]) -> Direction {
        // A version-6 packet under 40 bytes has no source: it cannot be placed
        // as outbound (SPEC.md) and is judged inbound.
        let src = Ipv6Packet::new_checked(packet)
            .ok()
            .filter(|ip| ip.version() == IPV6_VERSION)
            .map(|ip| ip.src_addr());
        match src {
            Some(src) => {
                if self.local.iter().any(|p| p.contains(&src)) {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                }
            }
            _ => Direction::Inbound,
        }
    }
}

/// One decided frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed<'a> {
    /// Frame number, from 1.
    pub frame: u64,
    /// The IPv6 packet (empty when the frame carries none).
    pub packet: &'a [u8],
    /// The whole captured frame, link-layer header included (for explaining it).
    pub link: &'a [u8],
    /// The frame's link type (`LINKTYPE_*`, see [`crate::link`]).
    pub linktype: u32,
    /// How the packet was placed (direction, time, truncation).
    pub meta: PacketMeta,
    /// The decision.
    pub decision: Decision,
    /// Bytes of the capture file read so far (for progress).
    pub position: u64,
}

/// A replay that stopped at a bad frame: the counts of the frames decided
/// before it, and the error (as tcpdump and tshark report what they read, then
/// the error).
#[derive(Debug, thiserror::Error)]
#[error("{error} (after {} frames)", totals.packets())]
pub struct Interrupted {
    /// The counts of the frames decided before the error.
    pub totals: Totals,
    /// Why the capture could not be read further.
    #[source]
    pub error: CaptureError,
}

/// Decides every frame of `file` on `engine`, calling `each` per frame (which
/// may stop the replay early), and returns the counts of this replay (every
/// reason, and the flows the flow table could not record); on a frame that
/// cannot be read, the counts so far with the error.
pub fn replay(
    file: &mut CaptureFile,
    engine: &Engine,
    opts: &ReplayOptions,
    mut each: impl FnMut(&Replayed<'_>) -> ControlFlow<()>,
) -> Result<Totals, Box<Interrupted>> {
    let mut worker = engine.worker();
    // Nothing changes the policy during a replay: one pin for the whole run.
    let snap = engine.table().pin();
    loop {
        let position = file.position();
        let Some(frame) = file.next_frame() else {
            break;
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                let totals = worker.totals();
                return Err(Box::new(Interrupted { totals, error }));
            }
        };
        let packet = frame.ipv6().unwrap_or_default();
        let meta = PacketMeta {
            direction: opts.direction(packet),
            if_index: opts.if_index,
            now_ns: frame.timestamp_ns,
            truncated: frame.truncated,
        };
        let decision = worker.decide(&snap, packet, &meta);
        let replayed = Replayed {
            frame: frame.number,
            packet,
            link: frame.data,
            linktype: frame.linktype,
            meta,
            decision,
            position,
        };
        if each(&replayed).is_break() {
            break;
        }
    }
    // The worker's own counters: this replay's decisions and nothing else.
    Ok(worker.totals())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn prefixes() {
        let p: Prefix = "fd00::/8".parse().unwrap();
        let a: Ipv6Addr = "fd12::1".parse().unwrap();
        let b: Ipv6Addr = "fe80::1".parse().unwrap();
        assert!(p.contains(&a.octets()));
        assert!(!p.contains(&b.octets()));
        let all: Prefix = "::/0".parse().unwrap();
        assert!(all.contains(&b.octets()));
        let host: Prefix = "fd12::1".parse().unwrap();
        assert!(host.contains(&a.octets()));
        assert_eq!(host.to_string(), "fd12::1/128");
        for bad in ["fd00::/129", "10.0.0.0/8", "fd00::/x", ""] {
            let e = bad.parse::<Prefix>().unwrap_err().to_string();
            assert!(e.contains("is not an IPv6 prefix"), "{e}");
        }
    }

    #[test]
    fn direction_from_source() {
        let opts = ReplayOptions {
            local: vec!["fd00::/8".parse().unwrap()],
            if_index: 0,
        };
        // A fixed header (no payload) from `src`.
        let from = |src: [u8; 16]| {
            let mut pkt = Vec::new();
            etherparse::Ipv6Header {
                next_header: etherparse::IpNumber(59),
                hop_limit: 64,
                source: src,
                ..Default::default()
            }
            .write(&mut pkt)
            .unwrap();
            pkt
        };
        let mut local = [0u8; 16];
        local[0] = 0xfd;
        let mut outside = [0u8; 16];
        outside[0] = 0x20;
        let pkt = from(local);
        assert_eq!(opts.direction(&pkt), Direction::Outbound);
        assert_eq!(opts.direction(&from(outside)), Direction::Inbound);
        assert_eq!(opts.direction(&pkt[..39]), Direction::Inbound);
        // An IPv4 header, padded to IPv6's length: never from fd00::/8.
        let mut v4 = Vec::new();
        etherparse::Ipv4Header::default().write(&mut v4).unwrap();
        v4.resize(pkt.len(), 0xfd);
        assert_eq!(opts.direction(&v4), Direction::Inbound);
    }
}
