//! `INetFwV6Connection`: one network interface's own pairs, the global
//! pairs it ignores, and its firewall switch. A handle names the connection
//! by id; each call asks the daemon about it then.

#![allow(non_snake_case, reason = "the names of Netfwv6.h")]

use std::ffi::c_char;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use v6fw_api::control::protocol::Request;
use v6fw_api::fw::FwError;

use crate::call::call_quiet;
use crate::collection::{IEnumNetFwV6OpenPorts, INetFwV6OpenPortsCollection};
use crate::handle::{self, c_string, get, make_from, opt_str_arg, Counted};
use crate::session::{PortItem, Session};
use crate::types::{variant_bool, HRESULT, PORT_PROTOCOL, USHORT, VARIANT_BOOL};

/// A connection (a network interface) of the daemon's policy. Made by
/// `INetFwV6Mgr_GetConnection` or `INetFwV6ConnectionsCollection_Item`;
/// freed by `INetFwV6Connection_Release`.
pub struct INetFwV6Connection {
    refs: AtomicU32,
    session: Arc<Session>,
    id: String,
}

impl Counted for INetFwV6Connection {
    fn refs(&self) -> &AtomicU32 {
        &self.refs
    }
}

impl INetFwV6Connection {
    /// A handle to connection `id` of `session`.
    pub(crate) fn new(session: Arc<Session>, id: String) -> Self {
        INetFwV6Connection {
            refs: AtomicU32::new(0),
            session,
            id,
        }
    }

    /// The connection's effective set now: its own pairs and the global
    /// pairs it does not ignore.
    fn open_ports(&self) -> Result<Vec<PortItem>, FwError> {
        self.session.ports(&Request::OpenPorts {
            connection: self.id.clone(),
        })
    }

    /// Sends the change `make` builds from this connection's id.
    fn change(&self, make: impl FnOnce(String) -> Request) -> Result<(), FwError> {
        self.session.change(&make(self.id.clone()))
    }

    /// Checks the pair, then sends the change `make` builds from the id and
    /// the pair's fields.
    fn change_pair(
        &self,
        port: USHORT,
        protocol: PORT_PROTOCOL,
        make: impl FnOnce(String, i64, v6fw_api::control::protocol::ProtoArg) -> Request,
    ) -> Result<(), FwError> {
        let id = self.id.clone();
        self.session
            .change_pair(port, protocol, |port, protocol| make(id, port, protocol))
    }
}

/// Runs `f` on the connection behind `conn` (NULL: `E_POINTER`).
///
/// # Safety
/// `conn` is NULL or a live connection handle.
unsafe fn with(
    conn: *mut INetFwV6Connection,
    f: impl FnOnce(&INetFwV6Connection) -> Result<(), FwError>,
) -> HRESULT {
    // SAFETY: by the caller's contract.
    unsafe { handle::with(conn, "conn", f) }
}

/// Opens a pair on this connection (`INetFwV6Connection::OpenPort`): port
/// 1-65535 in host order, `PORT_PROTOCOL_TCP` or `PORT_PROTOCOL_UDP` (else
/// `E_INVALIDARG`). `name` (UTF-8; NULL: none) is kept with the pair; opening
/// an open pair succeeds and keeps the first name. Needs root or the
/// daemon's `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `conn` is NULL or a live connection handle; `name` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_OpenPort(
    conn: *mut INetFwV6Connection,
    port: USHORT,
    protocol: PORT_PROTOCOL,
    name: *const c_char,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(conn, |c| {
            let name = opt_str_arg(name, "name")?.unwrap_or_default().to_string();
            c.change_pair(port, protocol, |id, port, protocol| Request::OpenPort {
                connection: Some(id),
                port,
                protocol,
                name,
                from: Vec::new(),
                last_port: None,
            })
        })
    }
}

/// Closes a pair of this connection's own; closing a closed pair succeeds.
/// Needs root or the `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `conn` is NULL or a live connection handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_ClosePort(
    conn: *mut INetFwV6Connection,
    port: USHORT,
    protocol: PORT_PROTOCOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(conn, |c| {
            c.change_pair(port, protocol, |id, port, protocol| Request::ClosePort {
                connection: Some(id),
                port,
                protocol,
                last_port: None,
            })
        })
    }
}

/// Whether the pair is one of this connection's own open pairs (as
/// `INetFwV6Connection::IsPortOpen`: global pairs do not count).
/// `*pvbOpen` is `VARIANT_TRUE` or `VARIANT_FALSE`.
///
/// # Safety
/// `conn` is NULL or a live connection handle; `pvbOpen` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_IsPortOpen(
    conn: *mut INetFwV6Connection,
    port: USHORT,
    protocol: PORT_PROTOCOL,
    pvbOpen: *mut VARIANT_BOOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        get(conn, "conn", pvbOpen, "pvbOpen", |c| {
            c.session.is_open(Some(&c.id), port, protocol)
        })
    }
}

/// The connection's effective set now (its own pairs and the global pairs
/// it does not ignore), as a snapshot collection the caller releases.
///
/// # Safety
/// `conn` is NULL or a live connection handle; `ppCollection` is NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_get_OpenPorts(
    conn: *mut INetFwV6Connection,
    ppCollection: *mut *mut INetFwV6OpenPortsCollection,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        make_from(conn, "conn", ppCollection, "ppCollection", |c| {
            Ok(INetFwV6OpenPortsCollection::new(c.open_ports()?))
        })
    }
}

/// The connection's effective set now, as an enumerator the caller
/// releases (`EnumerateOpenPorts`).
///
/// # Safety
/// `conn` is NULL or a live connection handle; `ppEnum` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_EnumerateOpenPorts(
    conn: *mut INetFwV6Connection,
    ppEnum: *mut *mut IEnumNetFwV6OpenPorts,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        make_from(conn, "conn", ppEnum, "ppEnum", |c| {
            Ok(IEnumNetFwV6OpenPorts::new(c.open_ports()?.into(), 0))
        })
    }
}

/// Makes this connection ignore a global pair (it stays open elsewhere).
/// Needs root or the `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `conn` is NULL or a live connection handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_IgnoreGlobalPort(
    conn: *mut INetFwV6Connection,
    port: USHORT,
    protocol: PORT_PROTOCOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(conn, |c| {
            c.change_pair(port, protocol, |connection, port, protocol| {
                Request::IgnoreGlobal {
                    connection,
                    port,
                    protocol,
                }
            })
        })
    }
}

/// Makes this connection observe a global pair it ignored. Needs root or
/// the `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `conn` is NULL or a live connection handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_ObserveGlobalPort(
    conn: *mut INetFwV6Connection,
    port: USHORT,
    protocol: PORT_PROTOCOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(conn, |c| {
            c.change_pair(port, protocol, |connection, port, protocol| {
                Request::ObserveGlobal {
                    connection,
                    port,
                    protocol,
                }
            })
        })
    }
}

/// Turns this connection's firewall on. Needs root or the
/// `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `conn` is NULL or a live connection handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_EnableFirewall(
    conn: *mut INetFwV6Connection,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(conn, |c| {
            c.change(|connection| Request::Enable { connection })
        })
    }
}

/// Turns this connection's firewall off (everything to it is let in).
/// Needs root or the `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `conn` is NULL or a live connection handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_DisableFirewall(
    conn: *mut INetFwV6Connection,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(conn, |c| {
            c.change(|connection| Request::Disable { connection })
        })
    }
}

/// Whether this connection's firewall is on now.
///
/// # Safety
/// `conn` is NULL or a live connection handle; `pvbFirewalled` is NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_get_IsFirewalled(
    conn: *mut INetFwV6Connection,
    pvbFirewalled: *mut VARIANT_BOOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        get(conn, "conn", pvbFirewalled, "pvbFirewalled", |c| {
            Ok(variant_bool(c.session.connection(&c.id)?.firewalled))
        })
    }
}

/// The connection's id (on Linux its interface name, on Windows the
/// adapter's GUID), as a new string the caller frees with
/// `v6fw_string_free`.
///
/// # Safety
/// `conn` is NULL or a live connection handle; `ppId` is NULL or valid for
/// a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_get_Id(
    conn: *mut INetFwV6Connection,
    ppId: *mut *mut c_char,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe { get(conn, "conn", ppId, "ppId", |c| Ok(c_string(&c.id))) }
}

/// The connection's friendly name now, as a new string the caller frees
/// with `v6fw_string_free`.
///
/// # Safety
/// `conn` is NULL or a live connection handle; `ppName` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_get_Name(
    conn: *mut INetFwV6Connection,
    ppName: *mut *mut c_char,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        get(conn, "conn", ppName, "ppName", |c| {
            Ok(c_string(&c.session.connection(&c.id)?.name))
        })
    }
}

/// Adds a reference to the connection handle; returns the new count.
///
/// # Safety
/// `conn` is NULL or a live connection handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_AddRef(conn: *mut INetFwV6Connection) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::add_ref(conn) })
}

/// Releases a reference; the handle is freed at 0. Returns the count left.
/// NULL is harmless (0).
///
/// # Safety
/// `conn` is NULL or a live connection handle, not used after its last
/// release.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_Release(conn: *mut INetFwV6Connection) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::release(conn) })
}
