//! The policy model of the IPv6 Internet Connection Firewall (Netfwv6.h).
//!
//! `INetFwV6Mgr` holds global port/protocol pairs and one `INetFwV6Connection`
//! per network interface; a connection has its own open pairs (each with the
//! name it was first opened with), a set of global pairs it ignores, and a
//! firewall on/off switch. [`Policy`] is that model as plain data: the writer
//! side of [`crate::PortTable`] edits it, and every published
//! [`crate::Snapshot`] carries the [`Policy`] it was built from.
//!
//! Semantics (SPEC.md, "Port/protocol pairs"): opening an open pair or closing a
//! closed one succeeds and changes nothing; the first name stays. The effective
//! set of a connection is its own pairs ∪ (global pairs − ignored global pairs).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU16;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::settings::StateSettings;
pub use connections::Connections;
pub use names::{
    check_id, check_name, escape_controls, escaped, has_control, NameError, MAX_NAME_CHARS,
};
pub use scope::{Opening, Prefix, PrefixError, Scope, ScopedPair};
pub use spec::{PortRun, Services};

/// Why a policy argument or change was refused. Every variant is an invalid
/// argument in Netfwv6.h terms (`E_INVALIDARG`), except [`UnknownConnection`]
/// (no such object) and [`DuplicateConnection`].
///
/// [`UnknownConnection`]: PolicyError::UnknownConnection
/// [`DuplicateConnection`]: PolicyError::DuplicateConnection
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Port 0 (or a number outside 1-65535) was given.
    #[error("port {0} is not valid: ports are 1-65535")]
    InvalidPort(u32),
    /// A protocol other than TCP (6) or UDP (17) was given.
    #[error("protocol {0} is not valid: use tcp (6) or udp (17)")]
    InvalidProtocol(String),
    /// A `PORT/PROTO` text could not be read.
    #[error("{0:?} is not a port/protocol pair: write PORT/PROTO, e.g. 22/tcp or 53/udp")]
    InvalidPair(String),
    /// No connection has this id.
    #[error("no connection {0:?}")]
    UnknownConnection(String),
    /// A connection with this id exists already.
    #[error("connection {0:?} exists already")]
    DuplicateConnection(String),
    /// A source scope entry is not an IPv6 prefix.
    #[error(transparent)]
    InvalidPrefix(#[from] PrefixError),
    /// A port range whose first port is above its last (`8:7/tcp`).
    #[error("{0:?} is backwards: write a range as LOW:HIGH/PROTO, e.g. 6000:6007/tcp")]
    InvalidRange(String),
    /// A service name the service table does not have.
    #[error("no service {0:?} in /etc/services: write PORT/PROTO, e.g. 22/tcp")]
    UnknownService(String),
    /// A name or connection id with control characters, or too long.
    #[error(transparent)]
    InvalidName(#[from] NameError),
}

/// The two protocols a port/protocol pair may name.
///
/// Ordered as their protocol numbers, so pairs sort by protocol then port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP, protocol number 6.
    Tcp,
    /// UDP, protocol number 17.
    Udp,
}

impl Protocol {
    /// Both protocols, in order.
    pub const ALL: [Protocol; 2] = [Protocol::Tcp, Protocol::Udp];

    /// The IP protocol number (6 or 17).
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// The protocol for an IP protocol number, if it is TCP or UDP.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// Lower-case name: `tcp` or `udp`.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcp" | "6" => Ok(Protocol::Tcp),
            "udp" | "17" => Ok(Protocol::Udp),
            other => Err(PolicyError::InvalidProtocol(other.to_string())),
        }
    }
}

/// A validated port/protocol pair: port 1-65535 in host order, TCP or UDP.
///
/// Sorts by protocol, then port. Written and read as `PORT/PROTO` (`22/tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortPair {
    protocol: Protocol,
    port: NonZeroU16,
}

impl PortPair {
    /// A pair, or [`PolicyError::InvalidPort`] for port 0.
    pub fn new(port: u16, protocol: Protocol) -> Result<Self, PolicyError> {
        NonZeroU16::new(port)
            .map(|port| PortPair { protocol, port })
            .ok_or(PolicyError::InvalidPort(u32::from(port)))
    }

    /// A pair from raw numbers as Netfwv6.h passes them (`LONG port`,
    /// `NET_FW_IP_PROTOCOL`): port must be 1-65535, protocol 6 or 17.
    pub fn from_raw(port: i64, protocol: i64) -> Result<Self, PolicyError> {
        let proto = u8::try_from(protocol)
            .ok()
            .and_then(Protocol::from_number)
            .ok_or_else(|| PolicyError::InvalidProtocol(protocol.to_string()))?;
        let port16 = u16::try_from(port)
            .map_err(|_| PolicyError::InvalidPort(u32::try_from(port).unwrap_or(u32::MAX)))?;
        Self::new(port16, proto)
    }

    /// The port, 1-65535.
    pub const fn port(self) -> u16 {
        self.port.get()
    }

    /// The protocol.
    pub const fn protocol(self) -> Protocol {
        self.protocol
    }
}

impl fmt::Display for PortPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

impl FromStr for PortPair {
    type Err = PolicyError;

    /// Reads `PORT/PROTO`, e.g. `22/tcp`, `53/udp`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (port, proto) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| PolicyError::InvalidPair(s.to_string()))?;
        let port: u32 = port
            .trim()
            .parse()
            .map_err(|_| PolicyError::InvalidPair(s.to_string()))?;
        let proto: Protocol = proto.parse()?;
        let port = u16::try_from(port).map_err(|_| PolicyError::InvalidPort(port))?;
        PortPair::new(port, proto)
    }
}

impl Serialize for PortPair {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortPair {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod connections;
mod icmp;
mod names;
mod scope;
pub mod spec;
mod unique;

pub use icmp::{IcmpPolicy, IcmpRule};

fn default_true() -> bool {
    true
}

/// How inbound ICMPv6 errors (types 1-4) are judged (`icmp_errors` in the
/// policy file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IcmpErrors {
    /// By type alone, as RFC 4890 §4.3.1 asks (the default).
    #[default]
    Any,
    /// Only when the packet they quote is one the host sent (a tracked TCP or
    /// UDP flow, or any other packet from the error's destination); otherwise
    /// `drop icmp_unrelated`.
    Related,
}

impl IcmpErrors {
    fn is_any(&self) -> bool {
        *self == IcmpErrors::Any
    }
}

/// One `INetFwV6Connection`: a network interface and its own rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Stable id (Linux: the interface name; Windows: the adapter GUID string).
    #[serde(deserialize_with = "names::id")]
    pub id: String,
    /// Friendly name.
    #[serde(default, deserialize_with = "names::name")]
    pub name: String,
    /// Interface index the packet path sees (0: none known).
    #[serde(default)]
    pub if_index: u32,
    /// Whether the firewall is on for this connection.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The connection's own open pairs with their names and scopes.
    #[serde(default, deserialize_with = "unique::pair_map")]
    pub open: BTreeMap<PortPair, Opening>,
    /// Global pairs this connection ignores.
    #[serde(default, deserialize_with = "unique::pair_set")]
    pub ignored: BTreeSet<PortPair>,
}

impl Connection {
    /// A firewalled connection with no open pairs.
    pub fn new(id: impl Into<String>, name: impl Into<String>, if_index: u32) -> Self {
        Connection {
            id: id.into(),
            name: name.into(),
            if_index,
            enabled: true,
            open: BTreeMap::new(),
            ignored: BTreeSet::new(),
        }
    }

    /// Opens a pair for any source; returns whether anything changed. The
    /// first name stays; a scope the pair had is replaced by "any source".
    pub fn open_port(&mut self, pair: PortPair, name: &str) -> bool {
        open_pair(&mut self.open, pair, name, Scope::ANY)
    }

    /// Opens a pair for the sources in `from` (SPEC.md, "Scopes"); returns
    /// whether anything changed. The first name stays; another scope
    /// replaces the pair's scope (a change).
    pub fn open_port_from(&mut self, pair: PortPair, name: &str, from: Scope) -> bool {
        open_pair(&mut self.open, pair, name, from)
    }

    /// The scope of one of the connection's own pairs, if it is open.
    pub fn scope(&self, pair: PortPair) -> Option<&Scope> {
        self.open.get(&pair).map(|o| &o.from)
    }

    /// Closes a pair; returns whether anything changed.
    pub fn close_port(&mut self, pair: PortPair) -> bool {
        self.open.remove(&pair).is_some()
    }

    /// Whether the pair is one of the connection's *own* open pairs
    /// (`INetFwV6Connection::IsPortOpen`).
    pub fn is_port_open(&self, pair: PortPair) -> bool {
        self.open.contains_key(&pair)
    }

    /// Ignores a global pair on this connection; returns whether anything changed.
    pub fn ignore_global(&mut self, pair: PortPair) -> bool {
        self.ignored.insert(pair)
    }

    /// Stops ignoring a global pair; returns whether anything changed.
    pub fn observe_global(&mut self, pair: PortPair) -> bool {
        self.ignored.remove(&pair)
    }

    /// Whether a global pair is ignored here.
    pub fn is_ignored(&self, pair: PortPair) -> bool {
        self.ignored.contains(&pair)
    }

    /// The global pairs in effect here: globals − ignored, in order.
    pub fn effective_globals<'a>(
        &'a self,
        globals: &'a BTreeMap<PortPair, Opening>,
    ) -> impl Iterator<Item = PortPair> + 'a {
        globals
            .keys()
            .copied()
            .filter(move |p| !self.ignored.contains(p))
    }
}

/// Opens `pair` in `map` for `from`: the first name stays, another scope
/// replaces the old one. Whether anything changed.
fn open_pair(
    map: &mut BTreeMap<PortPair, Opening>,
    pair: PortPair,
    name: &str,
    from: Scope,
) -> bool {
    match map.entry(pair) {
        std::collections::btree_map::Entry::Occupied(mut o) => {
            let entry = o.get_mut();
            if entry.from == from {
                false
            } else {
                entry.from = from;
                true
            }
        }
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(Opening {
                name: name.to_string(),
                from,
            });
            true
        }
    }
}

/// The whole policy: `INetFwV6Mgr`'s global pairs, the connections, the
/// ICMPv6 policy and the state switch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Global open pairs with their names and scopes.
    #[serde(default, deserialize_with = "unique::pair_map")]
    pub globals: BTreeMap<PortPair, Opening>,
    /// Connections by id, shared between policy versions ([`Connections`]).
    #[serde(default)]
    pub connections: Connections,
    /// Inbound ICMPv6 policy.
    #[serde(default)]
    pub icmp: IcmpPolicy,
    /// How inbound ICMPv6 errors are judged.
    #[serde(default, skip_serializing_if = "IcmpErrors::is_any")]
    pub icmp_errors: IcmpErrors,
    /// Flow state: whether outbound flows are tracked so their replies are
    /// `established`, and the state tables' sizes and timeouts (`state =
    /// BOOL` or a `[state]` table).
    #[serde(
        default,
        serialize_with = "crate::settings::serialize",
        deserialize_with = "crate::settings::deserialize"
    )]
    pub state: StateSettings,
    /// `[logging]`: a table of the same file that the daemon reads (the api
    /// crate's firewall log settings), not the engine. It is accepted here
    /// unread, so every other unknown key is still refused with its place,
    /// and it is never written: whoever stores the policy writes it.
    #[serde(default, rename = "logging", skip_serializing)]
    daemon_table: Unread,
}

/// A table the engine accepts without reading it (any TOML value at all;
/// the crate that owns the table checks it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Unread)
    }
}

impl Policy {
    /// Opens a global pair for any source; returns whether anything changed.
    /// The first name stays; a scope the pair had is replaced by "any source".
    pub fn open_global(&mut self, pair: PortPair, name: &str) -> bool {
        open_pair(&mut self.globals, pair, name, Scope::ANY)
    }

    /// Opens a global pair for the sources in `from`; returns whether
    /// anything changed. The first name stays; another scope replaces it.
    pub fn open_global_from(&mut self, pair: PortPair, name: &str, from: Scope) -> bool {
        open_pair(&mut self.globals, pair, name, from)
    }

    /// The scope of a global pair, if it is open.
    pub fn global_scope(&self, pair: PortPair) -> Option<&Scope> {
        self.globals.get(&pair).map(|o| &o.from)
    }

    /// Closes a global pair; returns whether anything changed.
    pub fn close_global(&mut self, pair: PortPair) -> bool {
        self.globals.remove(&pair).is_some()
    }

    /// Whether a global pair is open.
    pub fn is_global_open(&self, pair: PortPair) -> bool {
        self.globals.contains_key(&pair)
    }

    /// Adds a connection; refuses a duplicate id.
    pub fn add_connection(&mut self, conn: Connection) -> Result<(), PolicyError> {
        if self.connections.contains_key(&conn.id) {
            return Err(PolicyError::DuplicateConnection(conn.id));
        }
        self.connections.insert(conn.id.clone(), conn);
        Ok(())
    }

    /// A connection by id.
    pub fn connection(&self, id: &str) -> Result<&Connection, PolicyError> {
        self.connections
            .get(id)
            .ok_or_else(|| PolicyError::UnknownConnection(id.to_string()))
    }

    /// A connection by id, to change.
    pub fn connection_mut(&mut self, id: &str) -> Result<&mut Connection, PolicyError> {
        self.connections
            .get_mut(id)
            .ok_or_else(|| PolicyError::UnknownConnection(id.to_string()))
    }

    /// The effective pairs of a connection: own ∪ (globals − ignored), sorted.
    pub fn effective(&self, conn: &Connection) -> BTreeSet<PortPair> {
        conn.open
            .keys()
            .copied()
            .chain(conn.effective_globals(&self.globals))
            .collect()
    }
}

#[cfg(test)]
mod tests;
