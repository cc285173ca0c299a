//! The flow table: outbound TCP/UDP flows, so that their replies are
//! `established`, kept the way Linux conntrack keeps them so that a flood
//! cannot push legitimate flows out (SPEC.md, "Outbound packets and state").
//!
//! - A flow is **confirmed** once the host sends a TCP segment without SYN (and
//!   without RST) on it, or an inbound packet is accepted as `established` on it. A spoofed SYN
//!   to an open port makes the host answer SYN-ACK: that records an
//!   unconfirmed flow and nothing more.
//! - A new flow may replace only an unconfirmed flow (the one closest to
//!   expiry in its probe window); when every candidate is confirmed it is not
//!   recorded ([`FlowTable::record`] says so, the worker counts it).
//! - Each packet sets the flow's idle timeout from its state, as conntrack
//!   does: TCP unconfirmed 120 s, confirmed 5 days, 120 s once a FIN was seen
//!   both ways, 10 s after a RST; UDP unconfirmed 30 s, confirmed 120 s.

use crate::state::{FlowKey, HashKey, TimedTable};

/// TCP flag bits of the flags byte.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;

    /// SYN set and ACK clear: a connection attempt, which never matches a flow.
    #[inline]
    pub const fn is_syn_only(flags: u8) -> bool {
        flags & (SYN | ACK) == SYN
    }
}

/// Idle timeouts of flows, in nanoseconds (SPEC.md, after conntrack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// TCP before it is confirmed (conntrack's SYN_SENT/SYN_RECV: 120 s).
    pub tcp_unconfirmed_ns: u64,
    /// TCP once confirmed (conntrack's ESTABLISHED: 432,000 s).
    pub tcp_confirmed_ns: u64,
    /// TCP once a FIN was seen in both directions (conntrack's TIME_WAIT: 120 s).
    pub tcp_closed_ns: u64,
    /// TCP after a RST in either direction (conntrack's CLOSE: 10 s).
    pub tcp_reset_ns: u64,
    /// UDP before a reply was accepted (conntrack's `udp_timeout`: 30 s).
    pub udp_unconfirmed_ns: u64,
    /// UDP once confirmed (conntrack's `udp_timeout_stream`: 120 s).
    pub udp_confirmed_ns: u64,
}

impl Default for FlowTimeouts {
    /// SPEC.md's defaults (their one home is [`crate::policy::StateSettings`]).
    fn default() -> Self {
        crate::state::StateConfig::default().timeouts
    }
}

/// What the table knows of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowState {
    /// The handshake completed, or a reply was accepted on it.
    pub confirmed: bool,
    /// The host sent a FIN.
    pub fin_out: bool,
    /// The remote sent a FIN.
    pub fin_in: bool,
    /// A RST was seen either way.
    pub reset: bool,
}

impl FlowState {
    /// Whether the connection is over (RST, or FIN both ways): a new SYN from
    /// the host on the same tuple then starts a new flow.
    const fn is_closed(self) -> bool {
        self.reset || (self.fin_out && self.fin_in)
    }

    /// The idle timeout this state gets.
    const fn timeout(self, proto: u8, t: &FlowTimeouts) -> u64 {
        if proto != 6 {
            return if self.confirmed {
                t.udp_confirmed_ns
            } else {
                t.udp_unconfirmed_ns
            };
        }
        if self.reset {
            t.tcp_reset_ns
        } else if self.fin_out && self.fin_in {
            t.tcp_closed_ns
        } else if self.confirmed {
            t.tcp_confirmed_ns
        } else {
            t.tcp_unconfirmed_ns
        }
    }
}

/// A worker's flows. Fixed size, allocated once; nothing here allocates later.
pub struct FlowTable {
    table: TimedTable<FlowKey, FlowState>,
    timeouts: FlowTimeouts,
}

/// A new flow may replace only an unconfirmed one.
fn evictable(s: &FlowState) -> bool {
    !s.confirmed
}

impl FlowTable {
    /// A table of `capacity` slots (a power of two, at least 8).
    pub fn new(capacity: usize, key: HashKey, timeouts: FlowTimeouts) -> Self {
        FlowTable {
            table: TimedTable::new(capacity, key),
            timeouts,
        }
    }

    /// Records or refreshes the flow of an outbound packet; `tcp` is the TCP
    /// flags byte (`None` for UDP). Returns `false` when the flow is new and
    /// every slot it could take holds a confirmed flow: it is then not recorded.
    #[inline]
    pub fn record(&mut self, key: FlowKey, tcp: Option<u8>, now: u64) -> bool {
        let t = self.timeouts;
        if let Some(e) = self.table.get(&key, now) {
            let restart = tcp.is_some_and(tcp_flags::is_syn_only) && e.value.is_closed();
            if restart {
                e.value = FlowState::default();
            }
            e.value = outbound(e.value, tcp);
            e.expires = now.saturating_add(e.value.timeout(key.proto, &t));
            return true;
        }
        let state = outbound(FlowState::default(), tcp);
        let until = now.saturating_add(state.timeout(key.proto, &t));
        self.table.insert(key, state, now, until, evictable)
    }

    /// Records a flow as confirmed (a session that existed before v6fw
    /// started). Returns `false` if it could not be recorded.
    pub fn adopt(&mut self, key: FlowKey, now: u64) -> bool {
        let state = FlowState {
            confirmed: true,
            ..FlowState::default()
        };
        let until = now.saturating_add(state.timeout(key.proto, &self.timeouts));
        if let Some(e) = self.table.get(&key, now) {
            e.value = state;
            e.expires = until;
            return true;
        }
        self.table.insert(key, state, now, until, evictable)
    }

    /// Whether an inbound packet on `key` is `established`: the flow is live
    /// and the packet is not a TCP SYN without ACK. If so the flow is
    /// confirmed and its timeout set from the packet's flags.
    #[inline]
    pub fn reply(&mut self, key: FlowKey, tcp: Option<u8>, now: u64) -> bool {
        if !Self::may_reply(tcp) {
            return false;
        }
        let Some(e) = self.table.get(&key, now) else {
            return false;
        };
        let mut s = e.value;
        s.confirmed = true;
        if let Some(f) = tcp {
            s.fin_in |= f & tcp_flags::FIN != 0;
            s.reset |= f & tcp_flags::RST != 0;
        }
        e.value = s;
        e.expires = now.saturating_add(s.timeout(key.proto, &self.timeouts));
        true
    }

    /// Whether an inbound packet with these TCP flags (`None` for UDP) may
    /// be a reply at all: a TCP SYN without ACK never is. The decision asks
    /// before it builds the key to look up.
    #[inline]
    pub const fn may_reply(tcp: Option<u8>) -> bool {
        match tcp {
            Some(flags) => !tcp_flags::is_syn_only(flags),
            None => true,
        }
    }

    /// Whether `key` is a live flow (no refresh, no change).
    pub fn contains(&mut self, key: &FlowKey, now: u64) -> bool {
        self.table.get(key, now).is_some()
    }

    /// The state of a live flow (for tests and stats).
    pub fn state(&mut self, key: &FlowKey, now: u64) -> Option<FlowState> {
        self.table.get(key, now).map(|e| e.value)
    }

    /// Live flows at `now` (a scan; for tests and stats).
    pub fn len(&self, now: u64) -> usize {
        self.table.len(now)
    }

    /// Whether no flow is live at `now`.
    pub fn is_empty(&self, now: u64) -> bool {
        self.table.is_empty(now)
    }

    /// Live flows at `now` with their state (a scan; for tests and stats).
    pub fn live(&self, now: u64) -> impl Iterator<Item = (FlowKey, FlowState, u64)> + '_ {
        self.table.live(now).map(|(k, e)| (k, e.value, e.expires))
    }
}

/// The state after an outbound packet with these TCP flags (`None`: UDP).
#[inline]
const fn outbound(mut s: FlowState, tcp: Option<u8>) -> FlowState {
    if let Some(f) = tcp {
        // The handshake completed: a RST completes nothing (the host's answer
        // to a spoofed segment for a port nobody listens on).
        if f & (tcp_flags::SYN | tcp_flags::RST) == 0 {
            s.confirmed = true;
        }
        s.fin_out |= f & tcp_flags::FIN != 0;
        s.reset |= f & tcp_flags::RST != 0;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::tcp_flags::*;
    use super::*;

    fn key(n: u16) -> FlowKey {
        FlowKey::new(6, ([1; 16], n), ([2; 16], 443))
    }

    #[test]
    fn syn_ack_stays_unconfirmed_ack_confirms() {
        let mut f = FlowTable::new(64, HashKey::Fixed(1), FlowTimeouts::default());
        assert!(f.record(key(1), Some(SYN | ACK), 0));
        assert_eq!(f.state(&key(1), 0).map(|s| s.confirmed), Some(false));
        assert!(f.record(key(1), Some(ACK), 1));
        assert_eq!(f.state(&key(1), 1).map(|s| s.confirmed), Some(true));
    }

    #[test]
    fn syn_only_never_replies() {
        let mut f = FlowTable::new(64, HashKey::Fixed(1), FlowTimeouts::default());
        f.record(key(1), Some(SYN), 0);
        assert!(!f.reply(key(1), Some(SYN), 1));
        assert!(f.reply(key(1), Some(SYN | ACK), 1));
        assert_eq!(f.state(&key(1), 1).map(|s| s.confirmed), Some(true));
    }

    #[test]
    fn an_outbound_rst_does_not_confirm() {
        let mut f = FlowTable::new(64, HashKey::Fixed(1), FlowTimeouts::default());
        f.record(key(1), Some(RST | ACK), 0);
        let s = f.state(&key(1), 0);
        assert_eq!(s.map(|s| (s.confirmed, s.reset)), Some((false, true)));
    }

    #[test]
    fn syn_after_close_restarts_the_flow() {
        let mut f = FlowTable::new(64, HashKey::Fixed(1), FlowTimeouts::default());
        f.record(key(1), Some(ACK), 0);
        f.reply(key(1), Some(RST), 1);
        assert_eq!(f.state(&key(1), 1).map(|s| s.reset), Some(true));
        f.record(key(1), Some(SYN), 2);
        assert_eq!(f.state(&key(1), 2), Some(FlowState::default()));
    }
}
