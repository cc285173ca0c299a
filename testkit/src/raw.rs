//! The OpenPorts calls from raw numbers, as Netfwv6.h passes them (`LONG`
//! port and protocol): the number is checked by [`PortPair::from_raw`]
//! (port 1-65535, protocol 6 or 17, else `E_INVALIDARG`), then the typed call
//! of the API runs. Only tests make these calls, so they live here as
//! extension traits and not on the API types.

use v6fw_api::fw::{FirewallConnection, FirewallManager, FwError};
use v6fw_engine::PortPair;

/// A pair from raw numbers, or the API's `E_INVALIDARG`.
fn pair(port: i64, protocol: i64) -> Result<PortPair, FwError> {
    Ok(PortPair::from_raw(port, protocol)?)
}

/// The global calls of [`FirewallManager`] from raw numbers.
pub trait RawManager {
    /// [`FirewallManager::open_global_port`] from raw numbers.
    fn open_global_port_raw(&self, port: i64, protocol: i64, name: &str) -> Result<bool, FwError>;
    /// [`FirewallManager::close_global_port`] from raw numbers.
    fn close_global_port_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError>;
    /// [`FirewallManager::is_global_port_open`] from raw numbers.
    fn is_global_port_open_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError>;
}

impl RawManager for FirewallManager {
    fn open_global_port_raw(&self, port: i64, protocol: i64, name: &str) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.open_global_port(p.port(), p.protocol(), name)
    }

    fn close_global_port_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.close_global_port(p.port(), p.protocol())
    }

    fn is_global_port_open_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.is_global_port_open(p.port(), p.protocol())
    }
}

/// The per-connection calls of [`FirewallConnection`] from raw numbers.
pub trait RawConnection {
    /// [`FirewallConnection::open_port`] from raw numbers.
    fn open_port_raw(&self, port: i64, protocol: i64, name: &str) -> Result<bool, FwError>;
    /// [`FirewallConnection::close_port`] from raw numbers.
    fn close_port_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError>;
    /// [`FirewallConnection::is_port_open`] from raw numbers.
    fn is_port_open_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError>;
    /// [`FirewallConnection::ignore_global`] from raw numbers.
    fn ignore_global_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError>;
    /// [`FirewallConnection::observe_global`] from raw numbers.
    fn observe_global_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError>;
}

impl RawConnection for FirewallConnection {
    fn open_port_raw(&self, port: i64, protocol: i64, name: &str) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.open_port(p.port(), p.protocol(), name)
    }

    fn close_port_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.close_port(p.port(), p.protocol())
    }

    fn is_port_open_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.is_port_open(p.port(), p.protocol())
    }

    fn ignore_global_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.ignore_global(p.port(), p.protocol())
    }

    fn observe_global_raw(&self, port: i64, protocol: i64) -> Result<bool, FwError> {
        let p = pair(port, protocol)?;
        self.observe_global(p.port(), p.protocol())
    }
}
