//! The `policy_ops` target: policy changes and held snapshots against a model.
//!
//! The input is read as a sequence of operations (one selector byte, then its
//! arguments). Ports come from a small table, so opens and closes collide
//! often, and it includes port 0, which must be refused. After every
//! operation the published policy, every held `Arc<Policy>` (from
//! `table.policy()`) and every held pinned snapshot are compared with the
//! model as it was when they were taken: held snapshots never change. The
//! pinned snapshots' bitsets must answer exactly as the model's sets (on the
//! candidate ports after each operation, and at the end on a class of ports
//! chosen by the input, so a run covers every port), and
//! the generation must advance by one per change and not at all otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use v6fw_engine::{
    Connection, Opening, Pinned, Policy, PolicyError, PortPair, PortTable, Protocol,
};

use super::Violation;

/// Ports the operations choose from (0 is invalid on purpose).
const PORTS: [u16; 16] = [
    0, 1, 2, 22, 53, 80, 123, 443, 1024, 8080, 32_768, 49_151, 65_534, 65_535, 6, 17,
];
/// Connection ids; connection `i` has interface index `i + 1`.
const CONNS: [&str; 3] = ["c0", "c1", "c2"];
/// Names given when opening.
const NAMES: [&str; 4] = ["a", "b", "c", "d"];
/// Most snapshots held at once, of each kind.
const MAX_HELD: usize = 6;

/// A pair as the model keys it: (protocol number, port).
type Key = (u8, u16);

#[derive(Debug, Clone, PartialEq, Eq)]
struct ConnModel {
    open: BTreeMap<Key, String>,
    ignored: BTreeSet<Key>,
    enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    globals: BTreeMap<Key, String>,
    conns: Vec<ConnModel>,
}

fn key(p: PortPair) -> Key {
    (p.protocol().number(), p.port())
}

fn keyed(map: &BTreeMap<PortPair, Opening>) -> BTreeMap<Key, String> {
    map.iter().map(|(p, o)| (key(*p), o.name.clone())).collect()
}

impl Model {
    fn of(policy: &Policy) -> Model {
        Model {
            globals: keyed(&policy.globals),
            conns: CONNS
                .iter()
                .map(|id| {
                    policy.connections.get(id).map_or(
                        ConnModel {
                            open: BTreeMap::new(),
                            ignored: BTreeSet::new(),
                            enabled: false,
                        },
                        |c| ConnModel {
                            open: keyed(&c.open),
                            ignored: c.ignored.iter().copied().map(key).collect(),
                            enabled: c.enabled,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Whether `(proto, port)` is in the effective globals of connection `c`.
    fn effective_global(&self, c: &ConnModel, k: Key) -> bool {
        self.globals.contains_key(&k) && !c.ignored.contains(&k)
    }
}

/// Reads the operation bytes.
struct Ops<'a>(std::slice::Iter<'a, u8>);

impl Ops<'_> {
    fn byte(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }
    fn conn(&mut self) -> usize {
        usize::from(self.byte()) % CONNS.len()
    }
    fn pair(&mut self) -> (u16, Protocol) {
        let b = self.byte();
        let port = PORTS.get(usize::from(b & 15)).copied().unwrap_or(1);
        let proto = if b & 16 == 0 {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        (port, proto)
    }
    fn name(&mut self) -> &'static str {
        NAMES
            .get(usize::from(self.byte() & 3))
            .copied()
            .unwrap_or("a")
    }
}

/// Checks a pinned snapshot's bitsets and flags against `model` on the
/// candidate ports (`full`: also on their neighbours and byte-swapped
/// values, where a wrong shift or byte order would set a stray bit).
fn check_bits(pinned: &Pinned<'_>, model: &Model, full: bool) -> Result<(), Violation> {
    let mut ports: Vec<u16> = PORTS.iter().copied().filter(|&p| p != 0).collect();
    if full {
        let extra: Vec<u16> = ports
            .iter()
            .flat_map(|&p| [p.wrapping_sub(1), p.wrapping_add(1), p.swap_bytes(), p ^ 64])
            .filter(|&p| p != 0)
            .collect();
        ports.extend(extra);
    }
    for proto in [6u8, 17] {
        for &port in &ports {
            let k = (proto, port);
            let fallback = pinned.connection(99);
            if fallback.global.contains(proto, port) != model.globals.contains_key(&k)
                || fallback.own.contains(proto, port)
            {
                return Err(format!("unknown interface's bits wrong at {k:?}"));
            }
            for (i, c) in model.conns.iter().enumerate() {
                let t = pinned.connection(u32::try_from(i).unwrap_or(0) + 1);
                if t.enabled != c.enabled {
                    return Err(format!(
                        "connection {i} enabled flag differs from the model"
                    ));
                }
                if t.own.contains(proto, port) != c.open.contains_key(&k) {
                    return Err(format!("connection {i}: own bit for {k:?} differs"));
                }
                if t.global.contains(proto, port) != model.effective_global(c, k) {
                    return Err(format!("connection {i}: global bit for {k:?} differs"));
                }
            }
        }
    }
    Ok(())
}

/// Checks one residue class of ports (every port `p` with `p % 64 ==
/// class`) on every connection of the final snapshot against the model. The
/// class comes from the input, so over a run every port is covered, at a
/// sixty-fourth of the cost of a full scan per input.
fn check_port_class(table: &PortTable, model: &Model, class: u16) -> Result<(), Violation> {
    let pinned = table.pin();
    for port in (1..=u16::MAX).filter(|p| p % 64 == class % 64) {
        for proto in [6u8, 17] {
            let k = (proto, port);
            for (i, c) in model.conns.iter().enumerate() {
                let t = pinned.connection(u32::try_from(i).unwrap_or(0) + 1);
                if t.own.contains(proto, port) != c.open.contains_key(&k)
                    || t.global.contains(proto, port) != model.effective_global(c, k)
                {
                    return Err(format!("connection {i}: stray or missing bit at {k:?}"));
                }
            }
        }
    }
    Ok(())
}

/// Runs the operations in `data` against a table and the model.
pub fn policy_ops(data: &[u8]) -> Result<(), Violation> {
    let mut initial = Policy::default();
    for (i, id) in CONNS.iter().enumerate() {
        let if_index = u32::try_from(i).unwrap_or(0) + 1;
        let _ = initial.add_connection(Connection::new(*id, *id, if_index));
    }
    let (table, publisher) = PortTable::with_publisher(initial.clone());
    let mut model = Model::of(&initial);
    let mut generation = 0u64;
    let mut held: Vec<(Arc<Policy>, Model)> = Vec::new();
    let mut pinned: Vec<(Pinned<'_>, Model, u64)> = Vec::new();
    let mut ops = Ops(data.iter());

    while let Some(&selector) = ops.0.next() {
        let before = model.clone();
        let result: Result<bool, PolicyError> = match selector % 11 {
            0 | 1 => {
                let (port, proto) = ops.pair();
                let name = ops.name();
                let open = selector % 11 == 0;
                let out = publisher.update(|p| {
                    let pair = PortPair::new(port, proto)?;
                    Ok(if open {
                        p.open_global(pair, name)
                    } else {
                        p.close_global(pair)
                    })
                });
                if port != 0 {
                    let k = (proto.number(), port);
                    if open {
                        model.globals.entry(k).or_insert_with(|| name.to_string());
                    } else {
                        model.globals.remove(&k);
                    }
                }
                out
            }
            sel @ 2..=5 => {
                let c = ops.conn();
                let (port, proto) = ops.pair();
                let name = ops.name();
                let id = CONNS.get(c).copied().unwrap_or("c0");
                let out = publisher.update(|p| {
                    let pair = PortPair::new(port, proto)?;
                    let conn = p.connection_mut(id)?;
                    Ok(match sel {
                        2 => conn.open_port(pair, name),
                        3 => conn.close_port(pair),
                        4 => conn.ignore_global(pair),
                        _ => conn.observe_global(pair),
                    })
                });
                if let (true, Some(m)) = (port != 0, model.conns.get_mut(c)) {
                    let k = (proto.number(), port);
                    match sel {
                        2 => {
                            m.open.entry(k).or_insert_with(|| name.to_string());
                        }
                        3 => {
                            m.open.remove(&k);
                        }
                        4 => {
                            m.ignored.insert(k);
                        }
                        _ => {
                            m.ignored.remove(&k);
                        }
                    }
                }
                out
            }
            6 => {
                let c = ops.conn();
                let on = ops.byte() & 1 == 1;
                let id = CONNS.get(c).copied().unwrap_or("c0");
                if let Some(m) = model.conns.get_mut(c) {
                    m.enabled = on;
                }
                publisher.update(|p| {
                    let conn = p.connection_mut(id)?;
                    let changed = conn.enabled != on;
                    conn.enabled = on;
                    Ok(changed)
                })
            }
            7 => {
                if held.len() == MAX_HELD {
                    held.remove(0);
                }
                held.push((table.policy(), model.clone()));
                Ok(false)
            }
            8 => {
                if pinned.len() == MAX_HELD {
                    pinned.remove(0);
                }
                let p = table.pin();
                let g = p.generation();
                pinned.push((p, model.clone(), g));
                Ok(false)
            }
            9 => {
                // Drop the oldest held snapshots of both kinds.
                if !held.is_empty() {
                    held.remove(0);
                }
                if !pinned.is_empty() {
                    pinned.remove(0);
                }
                Ok(false)
            }
            _ => publisher.update(|p| p.connection_mut("nope").map(|_| true)),
        };
        let changed = model != before;
        match (&result, changed) {
            (Ok(c), _) if *c != changed => {
                return Err(format!(
                    "op {selector}: returned changed={c}, model changed={changed}"
                ));
            }
            (Err(_), true) => {
                return Err(format!("op {selector}: refused but the model changed"));
            }
            _ => {}
        }
        generation += u64::from(changed);
        let current = table.pin();
        if current.generation() != generation {
            return Err(format!(
                "op {selector}: generation {} expected {generation}",
                current.generation()
            ));
        }
        if Model::of(current.policy()) != model {
            return Err(format!(
                "op {selector}: published policy differs from the model"
            ));
        }
        check_bits(&current, &model, false)?;
        drop(current);
        for (policy, m) in &held {
            if Model::of(policy) != *m {
                return Err(format!("op {selector}: a held policy snapshot changed"));
            }
        }
        for (p, m, g) in &pinned {
            if p.generation() != *g || Model::of(p.policy()) != *m {
                return Err(format!("op {selector}: a pinned snapshot changed"));
            }
            check_bits(p, m, false)?;
        }
    }
    drop(pinned);
    check_bits(&table.pin(), &model, true)?;
    check_port_class(&table, &model, u16::try_from(data.len() % 64).unwrap_or(0))
}
