//! Snapshot collections: `OpenPorts` and its enumerator, connection details.
//!
//! A collection is built from one `Arc<Policy>` of the port table, the exact
//! policy one published snapshot was made from. It never changes afterwards:
//! pairs opened later are not in it, pairs closed later still are, and it
//! never shows half of a change (SPEC.md, "Port/protocol pairs").

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use v6fw_engine::{Connection, Opening, Policy, PortPair, Protocol, Scope};

/// Where an open pair in a connection's effective set comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortScope {
    /// The connection's own pair (the engine says `open_port`).
    Own,
    /// A global pair the connection does not ignore (`global_port`).
    Global,
}

impl PortScope {
    /// `own` or `global`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PortScope::Own => "own",
            PortScope::Global => "global",
        }
    }
}

/// One open port/protocol pair with the name it was first opened with
/// (`INetFwV6OpenPort`) and the sources it lets in (`RemoteAddresses`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpenPort {
    pair: PortPair,
    name: String,
    scope: PortScope,
    from: Scope,
}

impl OpenPort {
    /// A pair with its name and where it comes from, for any source.
    pub fn new(pair: PortPair, name: impl Into<String>, scope: PortScope) -> Self {
        OpenPort {
            pair,
            name: name.into(),
            scope,
            from: Scope::ANY,
        }
    }

    fn of(pair: PortPair, entry: &Opening, scope: PortScope) -> Self {
        OpenPort {
            pair,
            name: entry.name.clone(),
            scope,
            from: entry.from.clone(),
        }
    }

    /// The sources the pair lets in (`RemoteAddresses`); `Scope::ANY`: all.
    pub fn remote_addresses(&self) -> &Scope {
        &self.from
    }

    /// The port, 1-65535, host order.
    pub fn port(&self) -> u16 {
        self.pair.port()
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.pair.protocol()
    }

    /// The pair.
    pub fn pair(&self) -> PortPair {
        self.pair
    }

    /// The name given when the pair was first opened.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Own pair or global pair.
    pub fn scope(&self) -> PortScope {
        self.scope
    }
}

/// A snapshot of open pairs (`INetFwV6OpenPorts`): a count and the pairs in
/// host order, sorted by protocol (TCP before UDP) then port.
///
/// Cloning is cheap (shared); the contents never change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPorts {
    items: Arc<[OpenPort]>,
}

impl OpenPorts {
    /// The global pairs of `policy`.
    pub fn globals(policy: &Policy) -> Self {
        Self::from_sorted(
            policy
                .globals
                .iter()
                .map(|(p, o)| OpenPort::of(*p, o, PortScope::Global))
                .collect(),
        )
    }

    /// The effective set of `conn` in `policy`: its own pairs and the global
    /// pairs it does not ignore. A pair that is both is reported as own, as the
    /// engine decides it (`open_port` before `global_port`).
    pub fn effective(policy: &Policy, conn: &Connection) -> Self {
        let mut items: Vec<OpenPort> = conn
            .open
            .iter()
            .map(|(p, o)| OpenPort::of(*p, o, PortScope::Own))
            .collect();
        items.extend(
            policy
                .globals
                .iter()
                .filter(|(p, _)| !conn.is_ignored(**p) && !conn.is_port_open(**p))
                .map(|(p, o)| OpenPort::of(*p, o, PortScope::Global)),
        );
        items.sort_by_key(OpenPort::pair);
        Self::from_sorted(items)
    }

    /// The connection's own pairs only.
    pub fn own(conn: &Connection) -> Self {
        Self::from_sorted(
            conn.open
                .iter()
                .map(|(p, o)| OpenPort::of(*p, o, PortScope::Own))
                .collect(),
        )
    }

    fn from_sorted(items: Vec<OpenPort>) -> Self {
        OpenPorts {
            items: items.into(),
        }
    }

    /// How many pairs (`get_Count`).
    pub fn count(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the snapshot holds `pair`.
    pub fn contains(&self, pair: PortPair) -> bool {
        self.items
            .binary_search_by_key(&pair, OpenPort::pair)
            .is_ok()
    }

    /// The pairs, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, OpenPort> {
        self.items.iter()
    }

    /// The pairs as a slice, in order.
    pub fn as_slice(&self) -> &[OpenPort] {
        &self.items
    }

    /// An owning enumerator (`IEnumNetFwV6OpenPorts`) over this snapshot.
    pub fn enumerate(&self) -> OpenPortsIter {
        OpenPortsIter {
            items: Arc::clone(&self.items),
            next: 0,
        }
    }
}

impl<'a> IntoIterator for &'a OpenPorts {
    type Item = &'a OpenPort;
    type IntoIter = std::slice::Iter<'a, OpenPort>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for OpenPorts {
    type Item = OpenPort;
    type IntoIter = OpenPortsIter;

    fn into_iter(self) -> Self::IntoIter {
        self.enumerate()
    }
}

/// An owning enumerator over an [`OpenPorts`] snapshot
/// (`EnumerateOpenPorts`); it can be sent to another thread and held as long
/// as wanted.
#[derive(Debug, Clone)]
pub struct OpenPortsIter {
    items: Arc<[OpenPort]>,
    next: usize,
}

impl Iterator for OpenPortsIter {
    type Item = OpenPort;

    fn next(&mut self) -> Option<OpenPort> {
        let item = self.items.get(self.next)?.clone();
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.items.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for OpenPortsIter {}

/// What one connection looks like at one moment (for listings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// The id (interface name on Linux).
    pub id: String,
    /// The friendly name.
    pub name: String,
    /// The interface index (0: not known).
    pub if_index: u32,
    /// Whether the firewall is on.
    pub firewalled: bool,
    /// Own open pairs, `PORT/PROTO`, in order.
    pub open: Vec<String>,
    /// Ignored global pairs, `PORT/PROTO`, in order.
    pub ignored: Vec<String>,
}

impl ConnectionInfo {
    /// The details of `conn`.
    pub fn of(conn: &Connection) -> Self {
        ConnectionInfo {
            id: conn.id.clone(),
            name: conn.name.clone(),
            if_index: conn.if_index,
            firewalled: conn.enabled,
            open: conn.open.keys().map(ToString::to_string).collect(),
            ignored: conn.ignored.iter().map(ToString::to_string).collect(),
        }
    }
}
