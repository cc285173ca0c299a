//! The decision of SPEC.md for one packet, on one worker.
//!
//! [`Engine`] owns what workers share: the [`PortTable`] and the counter
//! registry. A [`Worker`] owns what it alone touches: its flow table, its
//! fragment memory and its counters. A capture backend runs one worker per
//! queue; the kernel's queue balancing hashes both directions of a flow and
//! every fragment of a datagram to the same queue (the IPv6 hash uses the
//! addresses only, symmetrically), so per-worker state sees what it needs.

use std::sync::Arc;

use crate::address;
use crate::counters::{Counters, Totals, WorkerCounters};
use crate::flows::FlowTable;
use crate::policy::IcmpErrors;
use crate::state::{FlowKey, FragKey, StateConfig, TimedTable};
use crate::table::{Admit, PortTable, Publisher, SlotRef, Snapshot};
use crate::walk::{walk, walk_start, Chain, Fragment, Outcome, Quote, Start, Walk};
use crate::wire::icmpv6;
use crate::wire::next_header::{TCP, UDP};
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

    fn with_columns(reason: Reason, w: &Walk<'_>) -> Self {
        Decision {
            reason,
            proto: w.proto(),
            dport: w.dport_column(),
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
    /// An engine publishing `policy`, with the state sizes and timeouts of
    /// its `[state]` table and a random hash key.
    pub fn new(policy: Policy) -> Self {
        let state = StateConfig::from(&policy.state);
        Self::with_state(policy, state)
    }

    /// An engine with explicit state sizes and timeouts.
    pub fn with_state(policy: Policy, state: StateConfig) -> Self {
        Engine {
            table: PortTable::new(policy),
            counters: Counters::default(),
            state,
        }
    }

    /// An engine and its table's one [`Publisher`] (for the API's manager,
    /// which owns the rule "store, then one publish").
    pub fn with_publisher(policy: Policy, state: StateConfig) -> (Self, Publisher) {
        let (table, publisher) = PortTable::with_publisher(policy);
        let engine = Engine {
            table,
            counters: Counters::default(),
            state,
        };
        (engine, publisher)
    }

    /// The port table (to pin for a batch; its one writer is
    /// [`PortTable::take_publisher`]'s).
    pub fn table(&self) -> &PortTable {
        &self.table
    }

    /// The counter registry.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The state sizes and timeouts every worker gets.
    pub fn state(&self) -> &StateConfig {
        &self.state
    }

    /// A new worker with its own state and counters. Allocates its tables now.
    pub fn worker(&self) -> Worker {
        let s = &self.state;
        Worker {
            flows: FlowTable::new(s.flow_capacity, s.hash_key, s.timeouts),
            frags: TimedTable::new(s.frag_capacity, s.hash_key),
            counters: self.counters.register(),
            config: self.state,
        }
    }
}

/// What a first fragment leaves for its later fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragMemo {
    /// Its verdict's reason.
    reason: Reason,
    /// Its fragmentable part's length (RFC 5722: later fragments start after it).
    len: u32,
}

/// One packet loop's private state. Deciding allocates nothing and locks nothing.
pub struct Worker {
    flows: FlowTable,
    frags: TimedTable<FragKey, FragMemo>,
    counters: Arc<WorkerCounters>,
    config: StateConfig,
}

impl Worker {
    /// Decides one packet on a pinned snapshot and counts it: one walk, one
    /// decision, for every packet. Inlined into the caller's packet loop
    /// (what is off the common path is not inlined here: see
    /// `Worker::decide_walked`).
    #[inline(always)]
    pub fn decide(&mut self, snap: &Snapshot, packet: &[u8], meta: &PacketMeta) -> Decision {
        let d = match walk_start(packet, meta.truncated) {
            Start::Walked(w) => self.decide_walked::<false>(snap, &w, meta),
            Start::Chain(c) => self.decide_chain(snap, c, *meta),
            Start::Odd => self.decide_odd(snap, packet, *meta),
        };
        self.counters.bump(d.reason);
        d
    }

    /// [`Worker::decide_walked`] for a packet with extension headers, out of
    /// line, so that the common case keeps its walk in registers.
    #[inline(never)]
    fn decide_chain(&mut self, snap: &Snapshot, chain: Chain<'_>, meta: PacketMeta) -> Decision {
        self.decide_walked::<false>(snap, &chain.walk(), &meta)
    }

    /// The decision of a packet one of whose addresses starts with 0x00 or
    /// 0xff (see [`address::may_refuse`]): the same decision, with SPEC.md
    /// step 3's addresses and step 6's TCP to a multicast destination
    /// looked at. Out of line, so that every other packet pays nothing for
    /// them but two compares.
    #[inline(never)]
    fn decide_odd(&mut self, snap: &Snapshot, packet: &[u8], meta: PacketMeta) -> Decision {
        self.decide_walked::<true>(snap, &walk(packet, meta.truncated), &meta)
    }

    /// Decides a packet that was already walked (does not count it).
    ///
    /// The whole inbound packet whose upper layer was reached is the common
    /// case and stays inline; what is decided before the policy (SPEC.md
    /// steps 1-3: not a whole packet, or outbound), fragment memory and
    /// related ICMPv6 errors are in functions of their own, off the common
    /// path. Those functions get a copy of the walk, made on
    /// their own branch, so that the common path keeps the walk in
    /// registers instead of building it in memory for them.
    ///
    /// `ODD` says one of the packet's addresses starts with 0x00 or 0xff
    /// ([`address::may_refuse`]): only then are SPEC.md step 3's addresses
    /// and step 6's TCP to a multicast destination looked at (a packet
    /// without `ODD` can have neither).
    #[inline(always)]
    fn decide_walked<const ODD: bool>(
        &mut self,
        snap: &Snapshot,
        w: &Walk<'_>,
        meta: &PacketMeta,
    ) -> Decision {
        if meta.direction == Direction::Outbound || w.outcome() != Outcome::Complete {
            if let Some(d) = self.before_policy(snap, &w.clone(), *meta) {
                return d;
            }
        }
        let conn = snap.slot(meta.if_index);
        if !conn.enabled() {
            return Decision::with_columns(Reason::FirewallDisabled, w);
        }
        // Step 3's addresses, and step 6's TCP to a multicast destination:
        // only for a packet one of whose addresses starts with 0x00 or 0xff.
        if ODD {
            if let Some(d) = self.odd_addresses(&w.clone(), meta.now_ns) {
                return d;
            }
        }
        let now = meta.now_ns;
        let reason = match w.outcome() {
            Outcome::Complete => match w.ports() {
                Some((proto, sport, dport)) => {
                    self.port_reason(snap, conn, w, proto, sport, dport, now)
                }
                None => match w.icmp_type() {
                    Some(ty) => self.icmp_reason(snap, w, ty, now),
                    None => Reason::UnsupportedProtocol,
                },
            },
            Outcome::LaterFragment => return Decision::bare(self.later_fragment(&w.clone(), now)),
            Outcome::BadFragment => return Decision::bare(self.bad_fragment(&w.clone())),
            Outcome::BadLength => Reason::Malformed,
            Outcome::Invalid(r) | Outcome::Stop(r) => r,
        };
        if w.has_fragment() {
            self.first_fragment(&w.clone(), reason, now);
        }
        Decision::with_columns(reason, w)
    }

    /// Steps 1-3 for a packet that is outbound or whose walk did not reach
    /// a whole upper layer: the decision when one of them makes it, `None`
    /// when the policy decides.
    #[inline(never)]
    fn before_policy(
        &mut self,
        snap: &Snapshot,
        w: &Walk<'_>,
        meta: PacketMeta,
    ) -> Option<Decision> {
        match w.outcome() {
            // `not_ipv6`, or a version-6 frame under 40 bytes: it has no
            // addresses, so it "cannot be placed as outbound" (SPEC.md).
            Outcome::Invalid(reason) => return Some(Decision::bare(reason)),
            // Step 2 comes before the firewall switch (step 3) inbound.
            Outcome::BadLength if meta.direction == Direction::Inbound => {
                return Some(Decision::bare(Reason::Malformed));
            }
            _ => {}
        }
        // Outbound traffic is never blocked, whatever its shape (SPEC.md).
        if meta.direction == Direction::Outbound {
            if snap.state() {
                if let Some((proto, sport, dport)) = w.ports() {
                    let key = flow_key(proto, (w.src(), sport), (w.dst(), dport));
                    self.record(key, w.tcp_flags(), meta.now_ns);
                }
            }
            return Some(Decision::with_columns(Reason::Outbound, w));
        }
        None
    }

    /// Step 5 for a packet with a fragment header decided `reason`: a first
    /// fragment is remembered for its later fragments (an atomic one is not).
    #[inline(never)]
    fn first_fragment(&mut self, w: &Walk<'_>, reason: Reason, now: u64) {
        if let Some(frag) = w.fragment().filter(|f| f.is_first()) {
            self.remember_first_fragment(w, frag, reason, now);
        }
    }

    /// Step 5 for a first fragment decided `reason`: remembered for its later
    /// fragments, unless it was `incomplete_chain`.
    #[inline(always)]
    fn remember_first_fragment(&mut self, w: &Walk<'_>, frag: Fragment, reason: Reason, now: u64) {
        let key = FragKey {
            id: frag.id,
            src: w.src(),
            dst: w.dst(),
        };
        if reason == Reason::IncompleteChain {
            // Not remembered, and it replaces what an earlier first
            // fragment with this key left: its later fragments are orphans.
            self.frags.remove(&key);
        } else {
            let until = now.saturating_add(self.config.frag_timeout_ns);
            let memo = FragMemo {
                reason,
                len: frag.fragmentable_len,
            };
            self.frags.insert(key, memo, now, until, |_| true);
        }
    }

    /// SPEC.md step 3 and step 6's TCP rule for an inbound packet on an
    /// enabled connection one of whose addresses starts with 0x00 or 0xff:
    /// `bad_address` without columns for a step-3 address (before the walk,
    /// so no fragment memory); `bad_address` with its columns for TCP that
    /// passed its length check to a multicast destination, remembered like
    /// any first fragment's reason; `None` when the rest of the decision
    /// decides.
    #[inline(never)]
    fn odd_addresses(&mut self, w: &Walk<'_>, now: u64) -> Option<Decision> {
        if w.bad_address() {
            return Some(Decision::bare(Reason::BadAddress));
        }
        let tcp = w.outcome() == Outcome::Complete && w.tcp_flags().is_some();
        if !(tcp && address::is_multicast(w.dst_ref())) {
            return None;
        }
        if w.has_fragment() {
            self.first_fragment(w, Reason::BadAddress, now);
        }
        Some(Decision::with_columns(Reason::BadAddress, w))
    }

    /// Step 5's length rule broken (RFC 8200 §4.5): `malformed`, and never
    /// remembered. A first fragment replaces what an earlier one with its
    /// key left, so its later fragments are orphans (as for
    /// `incomplete_chain`); other fragments leave the memory alone.
    #[inline(never)]
    fn bad_fragment(&mut self, w: &Walk<'_>) -> Reason {
        if let Some(frag) = w.fragment().filter(|f| f.is_first()) {
            self.frags.remove(&FragKey {
                id: frag.id,
                src: w.src(),
                dst: w.dst(),
            });
        }
        Reason::Malformed
    }

    /// Step 6 for an inbound TCP or UDP packet (`proto`, ports `sport` to
    /// `dport`), in SPEC.md's order (TCP to a multicast destination was
    /// decided before: [`Worker::odd_addresses`]): the connection's own pairs, the global
    /// pairs (each only when its scope holds the source), the reverse of a
    /// tracked flow (never for a TCP SYN without ACK), then `out_of_scope`
    /// when a pair was open for other sources only, else closed. Unscoped
    /// pairs cost one bit test each; the addresses are read from the packet
    /// (borrowed, not copied) only for a scope or a flow lookup.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // the packet's fields, passed by value on the hot path
    fn port_reason(
        &mut self,
        snap: &Snapshot,
        conn: SlotRef<'_>,
        w: &Walk<'_>,
        proto: u8,
        sport: u16,
        dport: u16,
        now: u64,
    ) -> Reason {
        let src = || w.src_ref();
        let own = conn.own().admits_from(proto, dport, src);
        if own == Admit::Open {
            return Reason::OpenPort;
        }
        let global = conn.global().admits_from(proto, dport, src);
        if global == Admit::Open {
            Reason::GlobalPort
        } else if snap.state()
            && FlowTable::may_reply(w.tcp_flags())
            && self.is_reply(
                proto,
                (w.dst_ref(), dport),
                (w.src_ref(), sport),
                w.tcp_flags(),
                now,
            )
        {
            Reason::Established
        } else if own == Admit::OutOfScope || global == Admit::OutOfScope {
            Reason::OutOfScope
        } else {
            Reason::PortClosed
        }
    }

    /// Whether the packet (TCP flags `tcp`, `None` for UDP) from `remote`
    /// to `local` (address, port) is the reply of a tracked flow.
    #[inline]
    fn is_reply(
        &mut self,
        proto: u8,
        local: (&[u8; 16], u16),
        remote: (&[u8; 16], u16),
        tcp: Option<u8>,
        now: u64,
    ) -> bool {
        let key = flow_key(proto, (*local.0, local.1), (*remote.0, remote.1));
        self.flows.reply(key, tcp, now)
    }

    /// Step 6 for an inbound ICMPv6 message of type `ty`: the type's policy
    /// with the NDP and MLD conditions, then, for errors with
    /// `icmp_errors = "related"`, what the error quotes.
    #[inline(always)]
    fn icmp_reason(&mut self, snap: &Snapshot, w: &Walk<'_>, ty: u8, now: u64) -> Reason {
        let fragmented = w.has_fragment();
        if !snap.icmp().allows(ty, w.hop_limit(), fragmented) {
            Reason::IcmpPolicy
        } else if snap.icmp_errors() == IcmpErrors::Related
            && icmpv6::is_error(ty)
            && !self.quotes_own_packet(snap, w.quote(), w.dst(), now)
        {
            Reason::IcmpUnrelated
        } else {
            Reason::IcmpAllowed
        }
    }

    /// Whether an ICMPv6 error to `dst` quotes a packet this host sent: a TCP
    /// or UDP packet whose flow is tracked, or any other packet whose source
    /// is `dst`. A quote cut short is not. (Off the hot path: only errors
    /// with `icmp_errors = "related"` get here.)
    #[inline(never)]
    fn quotes_own_packet(
        &mut self,
        snap: &Snapshot,
        quote: Option<Quote>,
        dst: [u8; 16],
        now: u64,
    ) -> bool {
        match quote {
            Some(Quote::Packet {
                src,
                dst: remote,
                next_header,
                ports: Some((sport, dport)),
            }) => {
                let key = flow_key(next_header, (src, sport), (remote, dport));
                snap.state() && self.flows.contains(&key, now)
            }
            Some(Quote::Packet { src, .. }) => src == dst,
            Some(Quote::Short) | None => false,
        }
    }

    /// Step 5 for a non-first fragment: its first fragment's remembered
    /// reason, `fragment_overlap` when it starts inside that fragment's
    /// fragmentable part (RFC 5722), `orphan_fragment` when none is remembered.
    #[inline(never)]
    fn later_fragment(&mut self, w: &Walk<'_>, now: u64) -> Reason {
        let Some(frag) = w.fragment() else {
            return Reason::OrphanFragment;
        };
        let key = FragKey {
            id: frag.id,
            src: w.src(),
            dst: w.dst(),
        };
        match self.frags.get(&key, now) {
            None => Reason::OrphanFragment,
            Some(e) if u32::from(frag.offset) * 8 < e.value.len => Reason::FragmentOverlap,
            Some(e) => e.value.reason,
        }
    }

    /// Records or refreshes an outbound flow (`tcp`: the flags byte, `None`
    /// for UDP), counting it in `flows_not_recorded` when it cannot be.
    #[inline]
    fn record(&mut self, key: FlowKey, tcp: Option<u8>, now: u64) {
        if !self.flows.record(key, tcp, now) {
            self.counters.bump_not_recorded();
        }
    }

    /// Records the flow between `local` and `remote` (address, port) as
    /// confirmed, as if its handshake had been seen: for sessions that
    /// existed before v6fw started. `proto` is TCP or UDP. Returns
    /// `false` if it could not be recorded (another protocol, or every slot
    /// it could take holds a confirmed flow).
    pub fn adopt_flow(
        &mut self,
        proto: u8,
        local: ([u8; 16], u16),
        remote: ([u8; 16], u16),
        now_ns: u64,
    ) -> bool {
        matches!(proto, TCP | UDP) && self.flows.adopt(flow_key(proto, local, remote), now_ns)
    }

    /// Live flows at `now` (a scan; for tests and stats).
    pub fn flow_count(&self, now: u64) -> usize {
        self.flows.len(now)
    }

    /// This worker's flow table (for tests and stats).
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// This worker's counts alone (every reason and `flows_not_recorded`).
    pub fn totals(&self) -> Totals {
        self.counters.totals()
    }

    /// Scans the flow table and the fragment memory and publishes how many
    /// live entries they hold at `now` in this worker's counters (a scan of
    /// every slot, tens of microseconds: call it now and then between
    /// batches, never per packet).
    pub fn publish_held(&self, now: u64) {
        let flows = self.flows.len(now) as u64;
        let fragments = self.frags.len(now) as u64;
        self.counters.set_held(flows, fragments);
    }

    /// This worker's counter block, for a reader on another thread (the
    /// daemon's metrics endpoint): relaxed loads, no lock.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }
}

/// The flow between the `local` and `remote` (address, port) ends.
#[inline]
const fn flow_key(proto: u8, local: ([u8; 16], u16), remote: ([u8; 16], u16)) -> FlowKey {
    FlowKey::new(proto, local, remote)
}
