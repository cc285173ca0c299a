//! [`FirewallConnection`]: `INetFwV6Connection` — one network interface, its
//! own open pairs, the global pairs it ignores, and its firewall switch.
//!
//! A connection is a handle: the manager and the id. Every read looks at the
//! current snapshot of the policy; every change goes through the manager
//! (validate → persist → publish).

use std::sync::Arc;

use v6fw_engine::{Connection, Policy, PortPair, PortRun, Protocol, Scope};

use super::collection::{ConnectionInfo, OpenPorts, OpenPortsIter};
use super::error::FwError;
use super::manager::{check_name, FirewallManager};

/// `INetFwV6Connection`: a handle to one connection of a [`FirewallManager`].
#[derive(Debug, Clone)]
pub struct FirewallConnection {
    mgr: Arc<FirewallManager>,
    id: String,
}

impl FirewallConnection {
    pub(crate) fn new(mgr: Arc<FirewallManager>, id: String) -> Self {
        FirewallConnection { mgr, id }
    }

    /// The manager this connection belongs to.
    pub fn manager(&self) -> &Arc<FirewallManager> {
        &self.mgr
    }

    /// The id (`get_Id`): the interface name on Linux.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `f` on this connection in the current snapshot.
    fn read<T>(&self, f: impl FnOnce(&Policy, &Connection) -> T) -> Result<T, FwError> {
        let policy = self.mgr.policy();
        let conn = policy.connection(&self.id)?;
        Ok(f(&policy, conn))
    }

    /// Applies a change to this connection through the manager.
    fn change(&self, f: impl FnOnce(&mut Connection) -> bool) -> Result<bool, FwError> {
        self.mgr.change(|p| Ok(f(p.connection_mut(&self.id)?)))
    }

    /// The friendly name (`get_Name`).
    pub fn name(&self) -> Result<String, FwError> {
        self.read(|_, c| c.name.clone())
    }

    /// The interface index the packet path sees (0: not present now).
    pub fn if_index(&self) -> Result<u32, FwError> {
        self.read(|_, c| c.if_index)
    }

    /// Whether the firewall is on for this connection (`get_IsFirewalled`).
    pub fn is_firewalled(&self) -> Result<bool, FwError> {
        self.read(|_, c| c.enabled)
    }

    /// Turns the firewall on (`EnableFirewall`). Returns whether anything changed.
    pub fn enable(&self) -> Result<bool, FwError> {
        self.set_firewalled(true)
    }

    /// Turns the firewall off (`DisableFirewall`): every inbound packet on
    /// this connection is then `accept firewall_disabled`.
    pub fn disable(&self) -> Result<bool, FwError> {
        self.set_firewalled(false)
    }

    /// Turns the firewall on or off. Returns whether anything changed.
    pub fn set_firewalled(&self, on: bool) -> Result<bool, FwError> {
        self.change(|c| std::mem::replace(&mut c.enabled, on) != on)
    }

    /// Opens one of this connection's own pairs (`OpenPort`). Opening an open
    /// pair changes nothing and the first name stays. Returns whether
    /// anything changed.
    pub fn open_port(&self, port: u16, protocol: Protocol, name: &str) -> Result<bool, FwError> {
        self.open_port_from(port, protocol, name, Scope::ANY)
    }

    /// Opens one of this connection's own pairs for the sources in `from`
    /// only (SPEC.md, "Scopes"; like `INetFwOpenPort::RemoteAddresses`).
    /// Opening it again with another scope replaces the scope and is a
    /// change; the first name stays.
    pub fn open_port_from(
        &self,
        port: u16,
        protocol: Protocol,
        name: &str,
        from: Scope,
    ) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        let name = check_name(name)?;
        self.change(|c| c.open_port_from(pair, name, from))
    }

    /// Opens every pair of `run` on this connection for `from`, in one
    /// change. Returns whether anything changed.
    pub fn open_run(&self, run: PortRun, name: &str, from: &Scope) -> Result<bool, FwError> {
        let name = check_name(name)?;
        self.change(|c| {
            run.pairs().fold(false, |ch, pair| {
                c.open_port_from(pair, name, from.clone()) | ch
            })
        })
    }

    /// Closes every own pair of `run`, in one change.
    pub fn close_run(&self, run: PortRun) -> Result<bool, FwError> {
        self.change(|c| run.pairs().fold(false, |ch, pair| c.close_port(pair) | ch))
    }

    /// Closes one of this connection's own pairs (`ClosePort`); closing a
    /// closed pair changes nothing. Global pairs are not touched: to stop a
    /// global pair here, use [`ignore_global`](Self::ignore_global).
    pub fn close_port(&self, port: u16, protocol: Protocol) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        self.change(|c| c.close_port(pair))
    }

    /// Whether the pair is one of this connection's *own* open pairs
    /// (`IsPortOpen`); global pairs do not count.
    pub fn is_port_open(&self, port: u16, protocol: Protocol) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        self.read(|_, c| c.is_port_open(pair))
    }

    /// The effective set at the time of the call (`get_OpenPorts`): own pairs
    /// ∪ (global pairs − ignored), sorted by protocol then port, each with its
    /// name and scope. The snapshot never changes afterwards.
    pub fn open_ports(&self) -> Result<OpenPorts, FwError> {
        self.read(OpenPorts::effective)
    }

    /// The effective set as an owning enumerator (`EnumerateOpenPorts`),
    /// taken at the time of the call.
    pub fn enumerate_open_ports(&self) -> Result<OpenPortsIter, FwError> {
        Ok(self.open_ports()?.enumerate())
    }

    /// This connection's own pairs only, as a snapshot.
    pub fn own_ports(&self) -> Result<OpenPorts, FwError> {
        self.read(|_, c| OpenPorts::own(c))
    }

    /// Ignores a global pair on this connection (`IgnoreGlobalPort`): it is
    /// no longer in the effective set here (unless it is also an own pair).
    /// The pair need not be open globally yet. Returns whether anything changed.
    pub fn ignore_global(&self, port: u16, protocol: Protocol) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        self.change(|c| c.ignore_global(pair))
    }

    /// Observes a global pair again (`ObserveGlobalPort`). Returns whether
    /// anything changed.
    pub fn observe_global(&self, port: u16, protocol: Protocol) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        self.change(|c| c.observe_global(pair))
    }

    /// Whether a global pair is ignored here (`IsGlobalPortIgnored`).
    pub fn is_ignored(&self, port: u16, protocol: Protocol) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        self.read(|_, c| c.is_ignored(pair))
    }

    /// The ignored global pairs, sorted (`get_IgnoredGlobalPorts`).
    pub fn ignored_ports(&self) -> Result<Vec<PortPair>, FwError> {
        self.read(|_, c| c.ignored.iter().copied().collect())
    }

    /// Everything about this connection, from one snapshot.
    pub fn info(&self) -> Result<ConnectionInfo, FwError> {
        self.read(|_, c| ConnectionInfo::of(c))
    }
}
