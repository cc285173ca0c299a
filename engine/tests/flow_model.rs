//! The flow table against a model (proptest): random outbound packets,
//! replies, adoptions and waits on a table of one probe window (8 slots, so
//! every key competes for the same slots and the model can be exact).
//!
//! The model is a plain map with SPEC.md's rules written out again: a flow is
//! confirmed by an outbound segment without SYN or RST, or an accepted reply; a SYN
//! without ACK never replies; a new flow takes a free slot, else replaces the
//! unconfirmed flow closest to expiry, else is not recorded; timeouts follow
//! the flow's state. After every step the table must hold exactly the model's
//! flows, and in particular every live confirmed flow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use v6fw_engine::flows::{FlowState, FlowTable, FlowTimeouts};
use v6fw_engine::state::FlowKey;
use v6fw_engine::HashKey;

const S: u64 = 1_000_000_000;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

fn timeouts() -> FlowTimeouts {
    FlowTimeouts {
        tcp_unconfirmed_ns: 20 * S,
        tcp_confirmed_ns: 100 * S,
        tcp_closed_ns: 15 * S,
        tcp_reset_ns: 5 * S,
        udp_unconfirmed_ns: 10 * S,
        udp_confirmed_ns: 30 * S,
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Outbound packet on flow `k`; TCP flags, or UDP.
    Out(u8, Option<u8>),
    /// Inbound packet on flow `k`.
    In(u8, Option<u8>),
    /// Adopt flow `k` as confirmed.
    Adopt(u8),
    /// Let time pass (seconds).
    Wait(u64),
}

fn key(k: u8) -> FlowKey {
    // Keys 0-11 are TCP, 12-15 UDP.
    let proto = if k < 12 { 6 } else { 17 };
    FlowKey::new(
        proto,
        ([0xfd; 16], 40_000 + u16::from(k)),
        ([0x20; 16], 443),
    )
}

fn flags_for(k: u8, f: u8) -> Option<u8> {
    (k < 12).then_some(f)
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        Just(SYN),
        Just(SYN | ACK),
        Just(ACK),
        Just(ACK | FIN),
        Just(RST),
        Just(RST | ACK),
        any::<u8>(),
    ];
    prop_oneof![
        4 => (0u8..16, flags.clone()).prop_map(|(k, f)| Op::Out(k, flags_for(k, f))),
        3 => (0u8..16, flags).prop_map(|(k, f)| Op::In(k, flags_for(k, f))),
        1 => (0u8..16).prop_map(Op::Adopt),
        2 => (0u64..40).prop_map(Op::Wait),
    ]
}

/// The model: flow -> (state, expiry).
#[derive(Default)]
struct Model {
    flows: BTreeMap<u8, (FlowState, u64)>,
}

fn timeout(proto_tcp: bool, s: FlowState) -> u64 {
    let t = timeouts();
    match (proto_tcp, s) {
        (false, s) if s.confirmed => t.udp_confirmed_ns,
        (false, _) => t.udp_unconfirmed_ns,
        (true, s) if s.reset => t.tcp_reset_ns,
        (true, s) if s.fin_in && s.fin_out => t.tcp_closed_ns,
        (true, s) if s.confirmed => t.tcp_confirmed_ns,
        (true, _) => t.tcp_unconfirmed_ns,
    }
}

impl Model {
    fn expire(&mut self, now: u64) {
        self.flows.retain(|_, (_, e)| *e > now);
    }

    /// A new flow `k`: a free slot, else the unconfirmed flow closest to
    /// expiry (among ties, the one `table` no longer has), else refused.
    fn insert(&mut self, k: u8, s: FlowState, now: u64, table: &mut FlowTable) -> bool {
        if self.flows.len() >= 8 {
            let min = self
                .flows
                .values()
                .filter(|(s, _)| !s.confirmed)
                .map(|(_, e)| *e)
                .min();
            let Some(min) = min else {
                return false;
            };
            let victim = self
                .flows
                .iter()
                .filter(|(_, (s, e))| !s.confirmed && *e == min)
                .map(|(k, _)| *k)
                .find(|v| table.state(&key(*v), now).is_none())
                .expect("the table evicted one of the unconfirmed flows closest to expiry");
            self.flows.remove(&victim);
        }
        self.flows
            .insert(k, (s, now + timeout(key(k).proto == 6, s)));
        true
    }

    fn out(&mut self, k: u8, tcp: Option<u8>, now: u64, table: &mut FlowTable) -> bool {
        let mut s = match self.flows.get(&k) {
            Some((s, _)) => *s,
            None => FlowState::default(),
        };
        let existed = self.flows.contains_key(&k);
        if let Some(f) = tcp {
            let closed = s.reset || (s.fin_in && s.fin_out);
            if f & (SYN | ACK) == SYN && closed {
                s = FlowState::default();
            }
            if f & (SYN | RST) == 0 {
                s.confirmed = true;
            }
            s.fin_out |= f & FIN != 0;
            s.reset |= f & RST != 0;
        }
        if existed {
            self.flows
                .insert(k, (s, now + timeout(key(k).proto == 6, s)));
            return true;
        }
        self.insert(k, s, now, table)
    }

    fn reply(&mut self, k: u8, tcp: Option<u8>, now: u64) -> bool {
        if tcp.is_some_and(|f| f & (SYN | ACK) == SYN) {
            return false;
        }
        let Some((mut s, _)) = self.flows.get(&k).copied() else {
            return false;
        };
        s.confirmed = true;
        if let Some(f) = tcp {
            s.fin_in |= f & FIN != 0;
            s.reset |= f & RST != 0;
        }
        self.flows
            .insert(k, (s, now + timeout(key(k).proto == 6, s)));
        true
    }

    fn adopt(&mut self, k: u8, now: u64, table: &mut FlowTable) -> bool {
        let s = FlowState {
            confirmed: true,
            ..FlowState::default()
        };
        let until = now + timeout(key(k).proto == 6, s);
        if let Some(e) = self.flows.get_mut(&k) {
            *e = (s, until);
            return true;
        }
        self.insert(k, s, now, table)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 512 }))]

    #[test]
    fn flow_table_matches_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut table = FlowTable::new(8, HashKey::Fixed(7), timeouts());
        let mut model = Model::default();
        let mut now = 0u64;
        for op in ops {
            model.expire(now);
            let (got, want) = match op {
                Op::Out(k, f) => {
                    let got = table.record(key(k), f, now);
                    (got, model.out(k, f, now, &mut table))
                }
                Op::In(k, f) => (table.reply(key(k), f, now), model.reply(k, f, now)),
                Op::Adopt(k) => {
                    let got = table.adopt(key(k), now);
                    (got, model.adopt(k, now, &mut table))
                }
                Op::Wait(s) => {
                    now += s * S;
                    model.expire(now);
                    (true, true)
                }
            };
            prop_assert_eq!(got, want, "{:?} at {}", op, now);
            for k in 0..16u8 {
                let in_table = table.state(&key(k), now);
                let in_model = model.flows.get(&k).map(|(s, _)| *s);
                prop_assert_eq!(in_table, in_model, "flow {} after {:?} at {}", k, op, now);
            }
            let expiries: BTreeMap<u16, u64> = table
                .live(now)
                .map(|(k, _, e)| (k.local_port - 40_000, e))
                .collect();
            let model_expiries: BTreeMap<u16, u64> = model
                .flows
                .iter()
                .map(|(k, (_, e))| (u16::from(*k), *e))
                .collect();
            prop_assert_eq!(expiries, model_expiries);
        }
    }
}
