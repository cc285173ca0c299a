//! Random open/close/ignore/observe/enable/disable sequences on global and
//! connection pairs, applied through `PortTable::update`, against a plain
//! BTreeMap/BTreeSet model. After every step the published policy
//! (`table.policy()`), the snapshot's bitsets and the decisions of packets to
//! every port of the domain agree with the model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{line, pair, tcp_in, udp_in};
use proptest::prelude::*;
use v6fw_engine::{
    Connection, Engine, PacketMeta, Policy, PolicyError, PortPair, Protocol, Reason,
};

/// Ports the operations use; 3 and 65534 are never opened (controls).
const PORTS: [u16; 5] = [1, 2, 22, 80, 65535];
const CONTROL_PORTS: [u16; 2] = [3, 65534];
/// Connection ids and their interface indexes.
const CONNS: [(&str, u32); 2] = [("eth0", 2), ("wlan0", 4)];
const UNKNOWN_IF: u32 = 99;

#[derive(Debug, Clone)]
enum Op {
    OpenGlobal(PortPair, &'static str),
    CloseGlobal(PortPair),
    Open(usize, PortPair, &'static str),
    Close(usize, PortPair),
    Ignore(usize, PortPair),
    Observe(usize, PortPair),
    Enable(usize),
    Disable(usize),
    /// A change that fails: nothing may be published.
    Fail(usize, PortPair),
}

fn pair_strategy() -> impl Strategy<Value = PortPair> {
    (
        prop::sample::select(PORTS.to_vec()),
        prop::sample::select(Protocol::ALL.to_vec()),
    )
        .prop_map(|(port, proto)| pair(port, proto))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let conn = 0..CONNS.len();
    let name = prop::sample::select(vec!["first", "second"]);
    prop_oneof![
        (pair_strategy(), name.clone()).prop_map(|(p, n)| Op::OpenGlobal(p, n)),
        pair_strategy().prop_map(Op::CloseGlobal),
        (conn.clone(), pair_strategy(), name).prop_map(|(c, p, n)| Op::Open(c, p, n)),
        (conn.clone(), pair_strategy()).prop_map(|(c, p)| Op::Close(c, p)),
        (conn.clone(), pair_strategy()).prop_map(|(c, p)| Op::Ignore(c, p)),
        (conn.clone(), pair_strategy()).prop_map(|(c, p)| Op::Observe(c, p)),
        conn.clone().prop_map(Op::Enable),
        conn.clone().prop_map(Op::Disable),
        (conn, pair_strategy()).prop_map(|(c, p)| Op::Fail(c, p)),
    ]
}

#[derive(Debug, Clone, Default)]
struct ModelConn {
    enabled: bool,
    open: BTreeMap<PortPair, String>,
    ignored: BTreeSet<PortPair>,
}

#[derive(Debug, Clone, Default)]
struct Model {
    globals: BTreeMap<PortPair, String>,
    conns: Vec<ModelConn>,
}

impl Model {
    fn new() -> Self {
        Model {
            globals: BTreeMap::new(),
            conns: vec![
                ModelConn {
                    enabled: true,
                    ..ModelConn::default()
                };
                CONNS.len()
            ],
        }
    }

    /// Applies `op`; returns whether the state changed.
    fn apply(&mut self, op: &Op) -> bool {
        #[allow(clippy::map_entry)] // the model stays as plain as possible
        fn insert_first(map: &mut BTreeMap<PortPair, String>, p: PortPair, n: &str) -> bool {
            if map.contains_key(&p) {
                false
            } else {
                map.insert(p, n.to_string());
                true
            }
        }
        match *op {
            Op::OpenGlobal(p, n) => insert_first(&mut self.globals, p, n),
            Op::CloseGlobal(p) => self.globals.remove(&p).is_some(),
            Op::Open(c, p, n) => insert_first(&mut self.conns[c].open, p, n),
            Op::Close(c, p) => self.conns[c].open.remove(&p).is_some(),
            Op::Ignore(c, p) => self.conns[c].ignored.insert(p),
            Op::Observe(c, p) => self.conns[c].ignored.remove(&p),
            Op::Enable(c) => !std::mem::replace(&mut self.conns[c].enabled, true),
            Op::Disable(c) => std::mem::replace(&mut self.conns[c].enabled, false),
            Op::Fail(..) => false,
        }
    }

    /// The reason for a TCP/UDP packet to `p` on connection `c` (`None`: unknown interface).
    fn expect(&self, c: Option<usize>, p: PortPair) -> Reason {
        let Some(c) = c else {
            return if self.globals.contains_key(&p) {
                Reason::GlobalPort
            } else {
                Reason::PortClosed
            };
        };
        let conn = &self.conns[c];
        if !conn.enabled {
            Reason::FirewallDisabled
        } else if conn.open.contains_key(&p) {
            Reason::OpenPort
        } else if self.globals.contains_key(&p) && !conn.ignored.contains(&p) {
            Reason::GlobalPort
        } else {
            Reason::PortClosed
        }
    }
}

/// Applies `op` to the policy the way the API would.
fn change(policy: &mut Policy, op: &Op) -> Result<bool, PolicyError> {
    fn conn(policy: &mut Policy, c: usize) -> Result<&mut Connection, PolicyError> {
        policy.connection_mut(CONNS[c].0)
    }
    Ok(match *op {
        Op::OpenGlobal(p, n) => policy.open_global(p, n),
        Op::CloseGlobal(p) => policy.close_global(p),
        Op::Open(c, p, n) => conn(policy, c)?.open_port(p, n),
        Op::Close(c, p) => conn(policy, c)?.close_port(p),
        Op::Ignore(c, p) => conn(policy, c)?.ignore_global(p),
        Op::Observe(c, p) => conn(policy, c)?.observe_global(p),
        Op::Enable(c) => !std::mem::replace(&mut conn(policy, c)?.enabled, true),
        Op::Disable(c) => std::mem::replace(&mut conn(policy, c)?.enabled, false),
        Op::Fail(c, p) => {
            // Half-apply, then fail: the copy is thrown away.
            conn(policy, c)?.open_port(p, "never");
            policy.open_global(p, "never");
            return Err(PolicyError::UnknownConnection("nope".into()));
        }
    })
}

fn check(engine: &Engine, worker: &mut v6fw_engine::Worker, model: &Model) {
    // The policy the API reads.
    let pol = engine.table().policy();
    assert_eq!(pol.globals, model.globals);
    for (i, (id, if_index)) in CONNS.iter().enumerate() {
        let c = pol.connection(id).unwrap();
        let m = &model.conns[i];
        assert_eq!(c.if_index, *if_index);
        assert_eq!(c.enabled, m.enabled, "{id} enabled");
        assert_eq!(c.open, m.open, "{id} own pairs");
        assert_eq!(c.ignored, m.ignored, "{id} ignored");
        for p in PORTS {
            for proto in Protocol::ALL {
                let pp = pair(p, proto);
                assert_eq!(c.is_port_open(pp), m.open.contains_key(&pp));
            }
        }
        let eff: BTreeSet<PortPair> = m
            .open
            .keys()
            .chain(model.globals.keys().filter(|g| !m.ignored.contains(g)))
            .copied()
            .collect();
        assert_eq!(pol.effective(c), eff, "{id} effective");
    }

    // The hot path's view, all on one pinned snapshot.
    let snap = engine.table().pin();
    assert!(Protocol::ALL.len() == 2);
    let ifs = CONNS
        .iter()
        .enumerate()
        .map(|(i, (_, ifx))| (Some(i), *ifx))
        .chain([(None, UNKNOWN_IF)]);
    for (c, if_index) in ifs {
        let tables = snap.connection(if_index);
        for port in PORTS.iter().chain(&CONTROL_PORTS).copied() {
            for proto in Protocol::ALL {
                let pp = pair(port, proto);
                let expect = model.expect(c, pp);
                if let Some(c) = c {
                    let m = &model.conns[c];
                    assert_eq!(tables.enabled, m.enabled);
                    assert_eq!(
                        tables.own.contains(proto.number(), port),
                        m.open.contains_key(&pp)
                    );
                    assert_eq!(
                        tables.global.contains(proto.number(), port),
                        model.globals.contains_key(&pp) && !m.ignored.contains(&pp)
                    );
                } else {
                    assert!(tables.enabled);
                    assert!(!tables.own.contains(proto.number(), port));
                    assert_eq!(
                        tables.global.contains(proto.number(), port),
                        model.globals.contains_key(&pp)
                    );
                }
                let pkt = match proto {
                    Protocol::Tcp => tcp_in(port),
                    Protocol::Udp => udp_in(port),
                };
                let d = worker.decide(&snap, &pkt, &PacketMeta::inbound(if_index, 0));
                assert_eq!(d.reason, expect, "{pp} on if {if_index}: {}", line(&d));
                assert_eq!(d.proto, Some(proto.number()));
                assert_eq!(d.dport, Some(port));
            }
        }
    }
}

fn initial_policy() -> Policy {
    let mut p = Policy::default();
    for (id, ifx) in CONNS {
        p.add_connection(Connection::new(id, id, ifx)).unwrap();
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        ..ProptestConfig::default()
    })]

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri; the epoch paths are covered by the table tests")]
    fn table_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let engine = Engine::new(initial_policy());
        let mut worker = engine.worker();
        let mut model = Model::new();
        check(&engine, &mut worker, &model);
        let mut generation = 0;
        for op in &ops {
            let expect_changed = model.apply(op);
            let got = engine.table().update(|p| change(p, op));
            match op {
                Op::Fail(..) => prop_assert!(got.is_err()),
                _ => prop_assert_eq!(got.unwrap(), expect_changed, "{:?}", op),
            }
            if expect_changed {
                generation += 1;
            }
            prop_assert_eq!(engine.table().pin().generation(), generation, "{:?}", op);
            check(&engine, &mut worker, &model);
        }
    }
}

#[test]
fn first_name_stays_through_the_table() {
    let engine = Engine::new(initial_policy());
    let p = pair(22, Protocol::Tcp);
    for name in ["ssh", "other"] {
        engine
            .table()
            .update(|pol| {
                pol.open_global(p, name);
                pol.connection_mut("eth0").map(|c| c.open_port(p, name))
            })
            .unwrap();
    }
    let pol = engine.table().policy();
    assert_eq!(pol.globals.get(&p).map(String::as_str), Some("ssh"));
    assert_eq!(
        pol.connection("eth0")
            .unwrap()
            .open
            .get(&p)
            .map(String::as_str),
        Some("ssh")
    );
    assert_eq!(
        engine.table().pin().generation(),
        1,
        "the second open changed nothing"
    );
}
