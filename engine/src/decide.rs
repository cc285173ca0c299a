//! The decision of SPEC.md for one packet, on one worker.
//!
//! [`Engine`] owns what workers share: the [`PortTable`] and the counter
//! registry. A [`Worker`] owns what it alone touches: its flow table, its
//! fragment memory and its counters. A capture backend runs one worker per
//! queue; the kernel's queue balancing hashes both directions of a flow and
//! every fragment of a datagram to the same queue (the IPv6 hash uses the
//! addresses only, symmetrically), so per-worker state sees what it needs.

use std::sync::Arc;

use crate::counters::{Counters, WorkerCounters};
use crate::state::{FlowKey, FragKey, TimedTable};
use crate::table::{PortTable, Snapshot};
use crate::walk::{walk, Outcome, Upper, Walk};
use crate::{Policy, Reason, Verdict};

/// Which way a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Arriving at this host: decided against the policy.
    Inbound,
    /// Leaving this host: always accepted; TCP/UDP flows are recorded.
    Outbound,
}

/// What the capture knows about a packet besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// Which way it goes.
    pub direction: Direction,
    /// Interface index: selects the connection.
    pub if_index: u32,
    /// The caller's clock, in nanoseconds (monotonic live, capture time in replay).
    pub now_ns: u64,
    /// The capture cut the frame short (snap length): skip the payload-length check.
    pub truncated: bool,
}

impl PacketMeta {
    /// An inbound, untruncated packet on `if_index` at `now_ns`.
    pub const fn inbound(if_index: u32, now_ns: u64) -> Self {
        PacketMeta {
            direction: Direction::Inbound,
            if_index,
            now_ns,
            truncated: false,
        }
    }

    /// An outbound, untruncated packet on `if_index` at `now_ns`.
    pub const fn outbound(if_index: u32, now_ns: u64) -> Self {
        PacketMeta {
            direction: Direction::Outbound,
            ..Self::inbound(if_index, now_ns)
        }
    }
}

/// A verdict with its reason and SPEC.md's `proto` and `dport` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Why; the verdict follows from it.
    pub reason: Reason,
    /// Upper-layer protocol number, once the walk reached it.
    pub proto: Option<u8>,
    /// TCP/UDP destination port or ICMPv6 type, once that header passed its length check.
    pub dport: Option<u16>,
}

impl Decision {
    /// Accept or drop.
    pub const fn verdict(&self) -> Verdict {
        self.reason.verdict()
    }

    fn bare(reason: Reason) -> Self {
        Decision {
            reason,
            proto: None,
            dport: None,
        }
    }

    fn with_columns(reason: Reason, w: &Walk) -> Self {
        Decision {
            reason,
            proto: w.proto,
            dport: w.dport_column(),
        }
    }
}

const SECOND: u64 = 1_000_000_000;

/// Sizes and timeouts of a worker's state tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateConfig {
    /// Flow table slots.
    pub flow_capacity: usize,
    /// Idle time after which a TCP flow is forgotten.
    pub tcp_idle_ns: u64,
    /// Idle time after which a UDP flow is forgotten.
    pub udp_idle_ns: u64,
    /// Fragment memory slots.
    pub frag_capacity: usize,
    /// How long a first fragment's verdict is remembered (RFC 8200: 60 s).
    pub frag_timeout_ns: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            flow_capacity: 1 << 16,
            tcp_idle_ns: 3_600 * SECOND,
            udp_idle_ns: 180 * SECOND,
            frag_capacity: 1 << 12,
            frag_timeout_ns: 60 * SECOND,
        }
    }
}

/// What the workers share: the port table and the counters.
pub struct Engine {
    table: PortTable,
    counters: Counters,
    state: StateConfig,
}

impl Engine {
    /// An engine publishing `policy`, with default state sizes.
    pub fn new(policy: Policy) -> Self {
        Self::with_state(policy, StateConfig::default())
    }

    /// An engine with explicit state sizes and timeouts.
    pub fn with_state(policy: Policy, state: StateConfig) -> Self {
        Engine {
            table: PortTable::new(policy),
            counters: Counters::default(),
            state,
        }
    }

    /// The port table (to pin for a batch, or to change the policy).
    pub fn table(&self) -> &PortTable {
        &self.table
    }

    /// The counter registry.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A new worker with its own state and counters. Allocates its tables now.
    pub fn worker(&self) -> Worker {
        Worker {
            flows: TimedTable::new(self.state.flow_capacity),
            frags: TimedTable::new(self.state.frag_capacity),
            counters: self.counters.register(),
            config: self.state,
        }
    }
}

/// One packet loop's private state. Deciding allocates nothing and locks nothing.
pub struct Worker {
    flows: TimedTable<FlowKey, ()>,
    frags: TimedTable<FragKey, Reason>,
    counters: Arc<WorkerCounters>,
    config: StateConfig,
}

impl Worker {
    /// Decides one packet on a pinned snapshot and counts it.
    #[inline]
    pub fn decide(&mut self, snap: &Snapshot, packet: &[u8], meta: &PacketMeta) -> Decision {
        let d = match self.plain(snap, packet, meta) {
            Some(d) => d,
            None => self.decide_walked(snap, &walk(packet, meta.truncated), meta),
        };
        self.counters.bump(d.reason);
        d
    }

    /// The common case straight from the bytes: a TCP, UDP or ICMPv6 header
    /// right after the fixed header, with every length consistent, inbound
    /// on an enabled connection or outbound. Gives exactly what the full walk
    /// and [`Worker::decide_walked`] would give (no extension header, so no
    /// fragment memory; open pairs before flows, as SPEC.md says); `None`
    /// sends every other packet down the full path. The `decide` fuzz check
    /// compares both paths on every input.
    #[inline]
    fn plain(&mut self, snap: &Snapshot, packet: &[u8], meta: &PacketMeta) -> Option<Decision> {
        let h = packet.first_chunk::<48>()?;
        let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        if h[0] >> 4 != 6 || payload_len == 0 || 40 + payload_len > packet.len() {
            return None;
        }
        let proto = h[6];
        let (sport, dport) = (
            u16::from_be_bytes([h[40], h[41]]),
            u16::from_be_bytes([h[42], h[43]]),
        );
        match proto {
            6 => {
                let data_offset = usize::from(packet.get(52)? >> 4) * 4;
                if payload_len < 20 || data_offset < 20 || data_offset > payload_len {
                    return None;
                }
            }
            17 if payload_len >= 8 => {}
            58 if payload_len >= 4 && meta.direction == Direction::Inbound => {
                let conn = snap.connection(meta.if_index);
                if !conn.enabled {
                    return None;
                }
                let reason = if snap.icmp().allows(h[40], h[7]) {
                    Reason::IcmpAllowed
                } else {
                    Reason::IcmpPolicy
                };
                return Some(Decision {
                    reason,
                    proto: Some(proto),
                    dport: Some(u16::from(h[40])),
                });
            }
            _ => return None,
        }
        let (src, dst) = addresses(h);
        let reason = match meta.direction {
            Direction::Outbound => {
                if snap.state() {
                    self.record(src, dst, proto, sport, dport, meta.now_ns);
                }
                Reason::Outbound
            }
            Direction::Inbound => {
                let conn = snap.connection(meta.if_index);
                if !conn.enabled {
                    return None;
                }
                if conn.own.contains(proto, dport) {
                    Reason::OpenPort
                } else if conn.global.contains(proto, dport) {
                    Reason::GlobalPort
                } else if snap.state() && self.is_reply(src, dst, proto, sport, dport, meta.now_ns)
                {
                    Reason::Established
                } else {
                    Reason::PortClosed
                }
            }
        };
        Some(Decision {
            reason,
            proto: Some(proto),
            dport: Some(dport),
        })
    }

    /// Decides a packet that was already walked (does not count it).
    pub fn decide_walked(&mut self, snap: &Snapshot, w: &Walk, meta: &PacketMeta) -> Decision {
        match w.outcome {
            // `not_ipv6`, or a version-6 frame under 40 bytes: it has no
            // addresses, so it "cannot be placed as outbound" (SPEC.md).
            Outcome::Invalid(reason) => return Decision::bare(reason),
            // Step 2 comes before the firewall switch (step 3) inbound.
            Outcome::BadLength if meta.direction == Direction::Inbound => {
                return Decision::bare(Reason::Malformed);
            }
            _ => {}
        }
        // Outbound traffic is never blocked, whatever its shape (SPEC.md).
        if meta.direction == Direction::Outbound {
            if snap.state() {
                self.record_flow(w, meta.now_ns);
            }
            return Decision::with_columns(Reason::Outbound, w);
        }
        let conn = snap.connection(meta.if_index);
        if !conn.enabled {
            return Decision::with_columns(Reason::FirewallDisabled, w);
        }
        let reason = match w.outcome {
            Outcome::LaterFragment => return Decision::bare(self.later_fragment(w, meta.now_ns)),
            Outcome::BadLength => Reason::Malformed,
            Outcome::Invalid(r) | Outcome::Stop(r) => r,
            Outcome::Complete => match w.upper {
                Upper::Tcp { sport, dport, .. } | Upper::Udp { sport, dport } => {
                    let proto = w.proto.unwrap_or(0);
                    if conn.own.contains(proto, dport) {
                        Reason::OpenPort
                    } else if conn.global.contains(proto, dport) {
                        Reason::GlobalPort
                    } else if snap.state()
                        && self.is_reply(w.src, w.dst, proto, sport, dport, meta.now_ns)
                    {
                        Reason::Established
                    } else {
                        Reason::PortClosed
                    }
                }
                Upper::Icmp { ty, .. } => {
                    if snap.icmp().allows(ty, w.hop_limit) {
                        Reason::IcmpAllowed
                    } else {
                        Reason::IcmpPolicy
                    }
                }
                Upper::Other | Upper::None => Reason::UnsupportedProtocol,
            },
        };
        if let Some(frag) = w.fragment.filter(|f| f.is_first()) {
            let key = FragKey {
                id: frag.id,
                src: w.src,
                dst: w.dst,
            };
            if reason == Reason::IncompleteChain {
                // Not remembered, and it replaces what an earlier first
                // fragment with this key left: its later fragments are orphans.
                self.frags.remove(&key);
            } else {
                let until = meta.now_ns.saturating_add(self.config.frag_timeout_ns);
                self.frags.insert(key, reason, meta.now_ns, until);
            }
        }
        Decision::with_columns(reason, w)
    }

    fn later_fragment(&mut self, w: &Walk, now: u64) -> Reason {
        let Some(frag) = w.fragment else {
            return Reason::OrphanFragment;
        };
        let key = FragKey {
            id: frag.id,
            src: w.src,
            dst: w.dst,
        };
        self.frags
            .get(&key, now, None)
            .unwrap_or(Reason::OrphanFragment)
    }

    fn idle(&self, proto: u8) -> u64 {
        if proto == 6 {
            self.config.tcp_idle_ns
        } else {
            self.config.udp_idle_ns
        }
    }

    /// Whether an inbound packet from `src`:`sport` to `dst`:`dport` is the
    /// reply of a recorded outbound flow; refreshes the flow if so.
    fn is_reply(
        &mut self,
        src: [u8; 16],
        dst: [u8; 16],
        proto: u8,
        sport: u16,
        dport: u16,
        now: u64,
    ) -> bool {
        // The reply's destination is the local end of the flow.
        let key = flow_key(proto, (dst, dport), (src, sport));
        let until = now.saturating_add(self.idle(proto));
        self.flows.get(&key, now, Some(until)).is_some()
    }

    fn record_flow(&mut self, w: &Walk, now: u64) {
        if let Some((proto, sport, dport)) = w.ports() {
            self.record(w.src, w.dst, proto, sport, dport, now);
        }
    }

    /// Records the outbound flow `src`:`sport` → `dst`:`dport`.
    fn record(
        &mut self,
        src: [u8; 16],
        dst: [u8; 16],
        proto: u8,
        sport: u16,
        dport: u16,
        now: u64,
    ) {
        let key = flow_key(proto, (src, sport), (dst, dport));
        let until = now.saturating_add(self.idle(proto));
        self.flows.insert(key, (), now, until);
    }

    /// Live flows at `now` (a scan; for tests and stats).
    pub fn flow_count(&self, now: u64) -> usize {
        self.flows.len(now)
    }
}

/// The flow between the `local` and `remote` (address, port) ends.
#[inline]
fn flow_key(proto: u8, local: ([u8; 16], u16), remote: ([u8; 16], u16)) -> FlowKey {
    FlowKey {
        proto,
        local_port: local.1,
        remote_port: remote.1,
        local: local.0,
        remote: remote.0,
    }
}

/// Source and destination address of a fixed header.
#[inline]
fn addresses(h: &[u8; 48]) -> ([u8; 16], [u8; 16]) {
    let mut src = [0; 16];
    let mut dst = [0; 16];
    src.copy_from_slice(h.get(8..24).unwrap_or(&[0; 16]));
    dst.copy_from_slice(h.get(24..40).unwrap_or(&[0; 16]));
    (src, dst)
}
