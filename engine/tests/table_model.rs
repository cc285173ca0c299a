//! Random open/close/ignore/observe/enable/disable sequences on global and
//! connection pairs, each open with one of a few source scopes, applied
//! through `PortTable::update`, against a plain BTreeMap/BTreeSet model
//! whose scopes are lists of (address, length) compared bit by bit. After
//! every step the published policy (`table.policy()`), the snapshot's
//! bitsets and scoped answers, and the decisions of packets from several
//! sources to every port of the domain agree with the model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{line, pair, tcp_pkt, udp_pkt, LOCAL};
use proptest::prelude::*;
use v6fw_engine::{
    Admit, Connection, Engine, PacketMeta, Policy, PolicyError, PortPair, Protocol, Reason, Scope,
};

/// Ports the operations use; 3 and 65534 are never opened (controls).
const PORTS: [u16; 5] = [1, 2, 22, 80, 65535];
const CONTROL_PORTS: [u16; 2] = [3, 65534];
/// Connection ids and their interface indexes.
const CONNS: [(&str, u32); 2] = [("eth0", 2), ("wlan0", 4)];
const UNKNOWN_IF: u32 = 99;

/// The scopes an open may carry, as text: index 0 is any source.
const SCOPES: [&[&str]; 4] = [
    &[],
    &["fd00::/8"],
    &["2001:db8::/32", "fd00:1::/32"],
    &["2001:db8::2/128"],
];

/// Sources of the packets: inside and outside the scopes above.
const SOURCES: [&str; 5] = [
    "fd00::9",
    "fd00:1::5",
    "2001:db8::2",
    "2001:db8::3",
    "fe80::1",
];

fn addr(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// The plain model of a scope: (address as u128, length) pairs.
fn model_scope(i: usize) -> Vec<(u128, u32)> {
    SCOPES[i]
        .iter()
        .map(|t| {
            let (a, l) = t.split_once('/').unwrap();
            (u128::from_be_bytes(addr(a)), l.parse().unwrap())
        })
        .collect()
}

fn model_holds(scope: &[(u128, u32)], src: [u8; 16]) -> bool {
    let src = u128::from_be_bytes(src);
    scope.is_empty()
        || scope
            .iter()
            .any(|&(a, l)| l == 0 || (src >> (128 - l)) == (a >> (128 - l)))
}

fn scope(i: usize) -> Scope {
    Scope::parse(SCOPES[i]).unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    OpenGlobal(PortPair, &'static str, usize),
    CloseGlobal(PortPair),
    Open(usize, PortPair, &'static str, usize),
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
    let sc = 0..SCOPES.len();
    prop_oneof![
        (pair_strategy(), name.clone(), sc.clone()).prop_map(|(p, n, s)| Op::OpenGlobal(p, n, s)),
        pair_strategy().prop_map(Op::CloseGlobal),
        (conn.clone(), pair_strategy(), name, sc).prop_map(|(c, p, n, s)| Op::Open(c, p, n, s)),
        (conn.clone(), pair_strategy()).prop_map(|(c, p)| Op::Close(c, p)),
        (conn.clone(), pair_strategy()).prop_map(|(c, p)| Op::Ignore(c, p)),
        (conn.clone(), pair_strategy()).prop_map(|(c, p)| Op::Observe(c, p)),
        conn.clone().prop_map(Op::Enable),
        conn.clone().prop_map(Op::Disable),
        (conn, pair_strategy()).prop_map(|(c, p)| Op::Fail(c, p)),
    ]
}

/// An open pair in the model: its first name and its scope's index.
type Entry = (String, usize);

#[derive(Debug, Clone, Default)]
struct ModelConn {
    enabled: bool,
    open: BTreeMap<PortPair, Entry>,
    ignored: BTreeSet<PortPair>,
}

#[derive(Debug, Clone, Default)]
struct Model {
    globals: BTreeMap<PortPair, Entry>,
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
        /// The first name stays; another scope replaces the scope.
        fn insert_first(
            map: &mut BTreeMap<PortPair, Entry>,
            p: PortPair,
            n: &str,
            s: usize,
        ) -> bool {
            match map.get_mut(&p) {
                Some(e) if SCOPES[e.1] == SCOPES[s] => false,
                Some(e) => {
                    e.1 = s;
                    true
                }
                None => {
                    map.insert(p, (n.to_string(), s));
                    true
                }
            }
        }
        match *op {
            Op::OpenGlobal(p, n, s) => insert_first(&mut self.globals, p, n, s),
            Op::CloseGlobal(p) => self.globals.remove(&p).is_some(),
            Op::Open(c, p, n, s) => insert_first(&mut self.conns[c].open, p, n, s),
            Op::Close(c, p) => self.conns[c].open.remove(&p).is_some(),
            Op::Ignore(c, p) => self.conns[c].ignored.insert(p),
            Op::Observe(c, p) => self.conns[c].ignored.remove(&p),
            Op::Enable(c) => !std::mem::replace(&mut self.conns[c].enabled, true),
            Op::Disable(c) => std::mem::replace(&mut self.conns[c].enabled, false),
            Op::Fail(..) => false,
        }
    }

    /// What a set entry says for a source: closed, open or out of scope.
    fn admit(entry: Option<&Entry>, src: [u8; 16]) -> Admit {
        match entry {
            None => Admit::Closed,
            Some((_, s)) if model_holds(&model_scope(*s), src) => Admit::Open,
            Some(_) => Admit::OutOfScope,
        }
    }

    /// The own and effective-global answers for `p` from `src` on
    /// connection `c` (`None`: unknown interface).
    fn admits(&self, c: Option<usize>, p: PortPair, src: [u8; 16]) -> (Admit, Admit) {
        let Some(c) = c else {
            return (Admit::Closed, Self::admit(self.globals.get(&p), src));
        };
        let conn = &self.conns[c];
        let global = self.globals.get(&p).filter(|_| !conn.ignored.contains(&p));
        (
            Self::admit(conn.open.get(&p), src),
            Self::admit(global, src),
        )
    }

    /// The reason for a TCP/UDP packet to `p` from `src` on connection `c`
    /// (`None`: unknown interface). No flows are ever recorded here.
    fn expect(&self, c: Option<usize>, p: PortPair, src: [u8; 16]) -> Reason {
        if c.is_some_and(|c| !self.conns[c].enabled) {
            return Reason::FirewallDisabled;
        }
        match self.admits(c, p, src) {
            (Admit::Open, _) => Reason::OpenPort,
            (_, Admit::Open) => Reason::GlobalPort,
            (Admit::OutOfScope, _) | (_, Admit::OutOfScope) => Reason::OutOfScope,
            _ => Reason::PortClosed,
        }
    }
}

/// Applies `op` to the policy the way the API would.
fn change(policy: &mut Policy, op: &Op) -> Result<bool, PolicyError> {
    fn conn(policy: &mut Policy, c: usize) -> Result<&mut Connection, PolicyError> {
        policy.connection_mut(CONNS[c].0)
    }
    Ok(match *op {
        Op::OpenGlobal(p, n, s) => policy.open_global_from(p, n, scope(s)),
        Op::CloseGlobal(p) => policy.close_global(p),
        Op::Open(c, p, n, s) => conn(policy, c)?.open_port_from(p, n, scope(s)),
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
    let entries = |m: &BTreeMap<PortPair, Entry>| -> BTreeMap<PortPair, (String, Scope)> {
        m.iter()
            .map(|(p, (n, s))| (*p, (n.clone(), scope(*s))))
            .collect()
    };
    let entries_of =
        |m: &BTreeMap<PortPair, v6fw_engine::Opening>| -> BTreeMap<PortPair, (String, Scope)> {
            m.iter()
                .map(|(p, o)| (*p, (o.name.clone(), o.from.clone())))
                .collect()
        };
    assert_eq!(entries_of(&pol.globals), entries(&model.globals));
    for (i, (id, if_index)) in CONNS.iter().enumerate() {
        let c = pol.connection(id).unwrap();
        let m = &model.conns[i];
        assert_eq!(c.if_index, *if_index);
        assert_eq!(c.enabled, m.enabled, "{id} enabled");
        assert_eq!(entries_of(&c.open), entries(&m.open), "{id} own pairs");
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
                for src in SOURCES.map(addr) {
                    let (own, global) = model.admits(c, pp, src);
                    let n = proto.number();
                    assert_eq!(tables.own.admits(n, port, &src), own, "{pp} own");
                    assert_eq!(tables.global.admits(n, port, &src), global, "{pp} global");
                    let pkt = match proto {
                        Protocol::Tcp => tcp_pkt(src, LOCAL, 40_000, port),
                        Protocol::Udp => udp_pkt(src, LOCAL, 40_000, port),
                    };
                    let d = worker.decide(&snap, &pkt, &PacketMeta::inbound(if_index, 0));
                    let expect = model.expect(c, pp, src);
                    assert_eq!(d.reason, expect, "{pp} on if {if_index}: {}", line(&d));
                    assert_eq!(d.proto, Some(proto.number()));
                    assert_eq!(d.dport, Some(port));
                }
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
        let publisher = engine.table().take_publisher().unwrap();
        let mut worker = engine.worker();
        let mut model = Model::new();
        check(&engine, &mut worker, &model);
        let mut generation = 0;
        for op in &ops {
            let expect_changed = model.apply(op);
            let got = publisher.update(|p| change(p, op));
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
    let publisher = engine.table().take_publisher().unwrap();
    let p = pair(22, Protocol::Tcp);
    for name in ["ssh", "other"] {
        publisher
            .update(|pol| {
                pol.open_global(p, name);
                pol.connection_mut("eth0").map(|c| c.open_port(p, name))
            })
            .unwrap();
    }
    let pol = engine.table().policy();
    assert_eq!(pol.globals.get(&p).map(|o| o.name.as_str()), Some("ssh"));
    assert_eq!(
        pol.connection("eth0")
            .unwrap()
            .open
            .get(&p)
            .map(|o| o.name.as_str()),
        Some("ssh")
    );
    assert_eq!(
        engine.table().pin().generation(),
        1,
        "the second open changed nothing"
    );
}
