//! The way to the daemon: every call is one request on the control socket
//! (named pipe on Windows) through the API crate's [`Client`], and the
//! daemon decides who may change what (anyone reads; a change needs root or
//! the `--admin-group`, else `E_ACCESSDENIED`).
//!
//! [`Transport`] is the seam the unit tests use: they run the same requests
//! through [`v6fw_api::control::dispatch`] on an in-memory manager, with no
//! socket (so they also run under miri).

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde_json::Value;
use v6fw_api::control::client::{decode, Client};
use v6fw_api::control::protocol::{
    ConnectionsResult, IsOpenResult, PingResult, PortsResult, ProtoArg, Request, WirePort,
};
use v6fw_api::control::DEFAULT_SOCKET;
use v6fw_api::fw::{Code, ConnectionInfo, FwError};
use v6fw_engine::{PolicyError, PortPair, Protocol};

use crate::call::error;
use crate::types::{variant_bool, PORT_PROTOCOL, USHORT, VARIANT_BOOL};

/// Sends one request and returns the daemon's result.
pub(crate) trait Transport: Send + Sync {
    /// The result of `req`, or the daemon's error.
    fn call(&self, req: &Request) -> Result<Value, FwError>;
}

/// The daemon's control socket (pipe), reached afresh for every request, so
/// a restarted daemon is found again and no connection is held idle.
struct Socket(PathBuf);

impl Transport for Socket {
    fn call(&self, req: &Request) -> Result<Value, FwError> {
        let mut client = Client::connect(&self.0)?.ok_or_else(|| {
            error(
                Code::Fail,
                format!(
                    "no v6fw daemon is running at {}: start it with `v6fw run` (or pass the socket it serves, `v6fw run --socket PATH`, to NetFwV6Mgr_Create)",
                    self.0.display()
                ),
            )
        })?;
        client.call(req)
    }
}

/// What a manager and its connections share: the way to one daemon.
pub(crate) struct Session {
    transport: Box<dyn Transport>,
}

impl Session {
    /// The daemon at `control` (`None`: the default socket or pipe), checked
    /// to answer now.
    pub(crate) fn connect(control: Option<&str>) -> Result<Session, FwError> {
        let path = PathBuf::from(control.unwrap_or(DEFAULT_SOCKET));
        Self::over(Box::new(Socket(path)))
    }

    /// A session over `transport`, checked with a ping.
    pub(crate) fn over(transport: Box<dyn Transport>) -> Result<Session, FwError> {
        let s = Session { transport };
        s.request::<PingResult>(&Request::Ping)?;
        Ok(s)
    }

    /// Sends `req` and decodes its result as `T`.
    pub(crate) fn request<T: DeserializeOwned>(&self, req: &Request) -> Result<T, FwError> {
        decode(self.transport.call(req)?)
    }

    /// Sends the change `req`; its result (whether anything changed) is not
    /// needed: opening an open pair succeeds as Netfwv6 says.
    pub(crate) fn change(&self, req: &Request) -> Result<(), FwError> {
        self.transport.call(req).map(drop)
    }

    /// The details of connection `id` now; an unknown id is `E_INVALIDARG`.
    pub(crate) fn connection(&self, id: &str) -> Result<ConnectionInfo, FwError> {
        self.connections()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| PolicyError::UnknownConnection(id.to_string()).into())
    }

    /// The pairs of a `global_ports` or `open_ports` request, now.
    pub(crate) fn ports(&self, req: &Request) -> Result<Vec<PortItem>, FwError> {
        let r: PortsResult = self.request(req)?;
        r.ports.iter().map(PortItem::of).collect()
    }

    /// Whether a pair is open: the connection's own pairs, or the global
    /// pairs (`connection` `None`); a bad pair is `E_INVALIDARG`.
    pub(crate) fn is_open(
        &self,
        connection: Option<&str>,
        port: USHORT,
        protocol: PORT_PROTOCOL,
    ) -> Result<VARIANT_BOOL, FwError> {
        let (port, protocol) = wire(pair(port, protocol)?);
        let r: IsOpenResult = self.request(&Request::IsPortOpen {
            connection: connection.map(str::to_string),
            port,
            protocol,
        })?;
        Ok(variant_bool(r.open))
    }

    /// Checks the pair (`E_INVALIDARG`), then sends the change `make` builds
    /// from its port and protocol fields.
    pub(crate) fn change_pair(
        &self,
        port: USHORT,
        protocol: PORT_PROTOCOL,
        make: impl FnOnce(i64, ProtoArg) -> Request,
    ) -> Result<(), FwError> {
        let (port, protocol) = wire(pair(port, protocol)?);
        self.change(&make(port, protocol))
    }

    /// Every connection now, sorted by id.
    pub(crate) fn connections(&self) -> Result<Vec<ConnectionInfo>, FwError> {
        Ok(self
            .request::<ConnectionsResult>(&Request::Connections)?
            .connections)
    }
}

/// A pair from C's arguments: port 1-65535, protocol 6 or 17, else
/// `E_INVALIDARG`.
fn pair(port: USHORT, protocol: PORT_PROTOCOL) -> Result<PortPair, FwError> {
    Ok(PortPair::from_raw(i64::from(port), i64::from(protocol))?)
}

/// `pair` as the protocol's port and protocol fields.
fn wire(pair: PortPair) -> (i64, ProtoArg) {
    (
        i64::from(pair.port()),
        ProtoArg::Number(i64::from(pair.protocol().number())),
    )
}

/// One pair of a collection: what C reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortItem {
    /// Port, host order.
    pub(crate) port: u16,
    /// Protocol.
    pub(crate) protocol: Protocol,
    /// The name it was first opened with.
    pub(crate) name: String,
}

impl PortItem {
    /// A pair of a `ports` result; a protocol this library does not know is
    /// `E_NOINTERFACE` (a daemon of another version).
    pub(crate) fn of(w: &WirePort) -> Result<PortItem, FwError> {
        let protocol = w.protocol.parse::<Protocol>().map_err(|e| {
            error(
                Code::NoInterface,
                format!("the daemon reported a pair with protocol {e}: are libv6fw and the daemon the same version?"),
            )
        })?;
        Ok(PortItem {
            port: w.port,
            protocol,
            name: w.name.clone(),
        })
    }
}

#[cfg(test)]
pub(crate) mod local {
    //! A transport with no socket: requests are dispatched on an in-memory
    //! manager, as the daemon dispatches them.

    use std::sync::Arc;

    use v6fw_api::fw::FirewallManager;

    use super::*;

    /// Dispatches on `mgr`, as a caller who is (`admin`) or is not root.
    pub(crate) struct Local {
        pub(crate) mgr: Arc<FirewallManager>,
        pub(crate) admin: bool,
    }

    impl Transport for Local {
        fn call(&self, req: &Request) -> Result<Value, FwError> {
            v6fw_api::control::dispatch(
                &self.mgr,
                req.clone(),
                v6fw_api::control::Caller::root_if(self.admin),
            )
        }
    }
}
