//! The OpenPorts API: Netfwv6.h in Rust's idiom.
//!
//! | Netfwv6.h                   | here                                    |
//! |-----------------------------|-----------------------------------------|
//! | `INetFwV6Mgr`               | [`FirewallManager`]                     |
//! | `INetFwV6Connection`        | [`FirewallConnection`]                  |
//! | `INetFwV6OpenPorts`         | [`OpenPorts`] (a snapshot collection)   |
//! | `IEnumNetFwV6OpenPorts`     | [`OpenPortsIter`]                       |
//! | `INetFwV6OpenPort`          | [`OpenPort`]                            |
//! | `HRESULT`                   | [`FwError::hresult`]                    |
//!
//! Reads never lock: they use the immutable `Arc<Policy>` of the engine's
//! current snapshot, so a collection is the set as it was at the call and never
//! shows half a change. Changes are serialized, persisted, then published.

mod collection;
mod connection;
mod error;
mod logging;
mod manager;
pub mod services;

pub use collection::{ConnectionInfo, OpenPort, OpenPorts, OpenPortsIter, PortScope};
pub use connection::FirewallConnection;
pub use error::{
    Code, FwError, E_ABORT, E_ACCESSDENIED, E_FAIL, E_INVALIDARG, E_NOINTERFACE, E_NOTIMPL,
    E_OUTOFMEMORY, E_POINTER, E_UNEXPECTED,
};
pub use logging::{check_delegated_log_path, check_log_settings, LogChange, MAX_LOG_SIZE};
pub use manager::{FirewallManager, MAX_NAME_CHARS};
