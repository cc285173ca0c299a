//! `INetFwV6Mgr`: the daemon as a whole — global pairs, the connections
//! and the firewall log's settings.

#![allow(non_snake_case, reason = "the names of Netfwv6.h")]

use std::ffi::c_char;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use v6fw_api::control::protocol::Request;
use v6fw_api::fw::FwError;

use crate::call::{call_ok, call_quiet};
use crate::collection::{INetFwV6ConnectionsCollection, INetFwV6OpenPortsCollection};
use crate::connection::INetFwV6Connection;
use crate::handle::{self, fill_handle, get, make_from, opt_str_arg, str_arg, Counted};
use crate::session::Session;
use crate::types::{HRESULT, PORT_PROTOCOL, USHORT, VARIANT_BOOL};

/// A manager of one running daemon. Made by `NetFwV6Mgr_Create`; freed by
/// `INetFwV6Mgr_Release`. Connection handles made from it keep what they
/// need: they stay valid after the manager is released.
pub struct INetFwV6Mgr {
    refs: AtomicU32,
    pub(crate) session: Arc<Session>,
}

impl Counted for INetFwV6Mgr {
    fn refs(&self) -> &AtomicU32 {
        &self.refs
    }
}

impl INetFwV6Mgr {
    /// A manager over `session`.
    pub(crate) fn new(session: Session) -> Self {
        INetFwV6Mgr {
            refs: AtomicU32::new(0),
            session: Arc::new(session),
        }
    }
}

/// Runs `f` on the manager behind `mgr` (NULL: `E_POINTER`).
///
/// # Safety
/// `mgr` is NULL or a live manager handle.
pub(crate) unsafe fn with(
    mgr: *mut INetFwV6Mgr,
    f: impl FnOnce(&INetFwV6Mgr) -> Result<(), FwError>,
) -> HRESULT {
    // SAFETY: by the caller's contract.
    unsafe { handle::with(mgr, "mgr", f) }
}

/// Connects to the daemon serving the control socket `control` (Windows:
/// the named pipe, `\\.\pipe\NAME`); NULL: the default one
/// (`/run/v6fw/control.sock`, Windows `\\.\pipe\v6fw-control`). Fails (and
/// writes NULL) when no daemon answers there: `E_FAIL`, and
/// `v6fw_last_error_message()` says where it looked and what to do. The
/// caller releases the manager with `INetFwV6Mgr_Release`.
///
/// # Safety
/// `control` is NULL or a NUL-terminated string; `ppMgr` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn NetFwV6Mgr_Create(
    control: *const c_char,
    ppMgr: *mut *mut INetFwV6Mgr,
) -> HRESULT {
    call_ok(|| {
        // SAFETY: by this function's contract.
        let control = unsafe { opt_str_arg(control, "control") };
        // SAFETY: by this function's contract.
        unsafe {
            fill_handle(ppMgr, "ppMgr", || {
                Ok(INetFwV6Mgr::new(Session::connect(control?)?))
            })
        }
    })
}

/// Adds a reference to the manager; returns the new count.
///
/// # Safety
/// `mgr` is NULL or a live manager handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_AddRef(mgr: *mut INetFwV6Mgr) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::add_ref(mgr) })
}

/// Releases a reference; the manager is freed at 0. Returns the count
/// left. NULL is harmless (0).
///
/// # Safety
/// `mgr` is NULL or a live manager handle, not used after its last release.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_Release(mgr: *mut INetFwV6Mgr) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::release(mgr) })
}

/// Opens a global pair, on every connection that does not ignore it: port
/// 1-65535 in host order, `PORT_PROTOCOL_TCP` or `PORT_PROTOCOL_UDP` (else
/// `E_INVALIDARG`). `name` (UTF-8; NULL: none) is kept with the pair;
/// opening an open pair succeeds and keeps the first name. Needs root or
/// the daemon's `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `name` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_OpenGlobalPort(
    mgr: *mut INetFwV6Mgr,
    port: USHORT,
    protocol: PORT_PROTOCOL,
    name: *const c_char,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(mgr, |m| {
            let name = opt_str_arg(name, "name")?.unwrap_or_default().to_string();
            m.session
                .change_pair(port, protocol, |port, protocol| Request::OpenPort {
                    connection: None,
                    port,
                    protocol,
                    name,
                    from: Vec::new(),
                    last_port: None,
                })
        })
    }
}

/// Closes a global pair; closing a closed pair succeeds. Needs root or the
/// `--admin-group`, else `E_ACCESSDENIED`.
///
/// # Safety
/// `mgr` is NULL or a live manager handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_CloseGlobalPort(
    mgr: *mut INetFwV6Mgr,
    port: USHORT,
    protocol: PORT_PROTOCOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(mgr, |m| {
            m.session
                .change_pair(port, protocol, |port, protocol| Request::ClosePort {
                    connection: None,
                    port,
                    protocol,
                    last_port: None,
                })
        })
    }
}

/// Whether a global pair is open now (`VARIANT_TRUE` / `VARIANT_FALSE`).
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `pvbOpen` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_IsGlobalPortOpen(
    mgr: *mut INetFwV6Mgr,
    port: USHORT,
    protocol: PORT_PROTOCOL,
    pvbOpen: *mut VARIANT_BOOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        get(mgr, "mgr", pvbOpen, "pvbOpen", |m| {
            m.session.is_open(None, port, protocol)
        })
    }
}

/// The global pairs now, as a snapshot collection the caller releases:
/// pairs opened later are not in it, pairs closed later still are.
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `ppCollection` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_get_GloballyOpenPorts(
    mgr: *mut INetFwV6Mgr,
    ppCollection: *mut *mut INetFwV6OpenPortsCollection,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        make_from(mgr, "mgr", ppCollection, "ppCollection", |m| {
            let items = m.session.ports(&Request::GlobalPorts)?;
            Ok(INetFwV6OpenPortsCollection::new(items))
        })
    }
}

/// The connection `connectionId` (e.g. `eth0`), as a new handle the caller
/// releases. An unknown id is `E_INVALIDARG`, and NULL is written.
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `connectionId` is NULL or a
/// NUL-terminated string; `ppConnection` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_GetConnection(
    mgr: *mut INetFwV6Mgr,
    connectionId: *const c_char,
    ppConnection: *mut *mut INetFwV6Connection,
) -> HRESULT {
    // SAFETY: by this function's contract.
    let id = unsafe { str_arg(connectionId, "connectionId") };
    // SAFETY: by this function's contract.
    unsafe {
        make_from(mgr, "mgr", ppConnection, "ppConnection", |m| {
            let info = m.session.connection(id?)?;
            Ok(INetFwV6Connection::new(Arc::clone(&m.session), info.id))
        })
    }
}

/// Every connection now, sorted by id, as a snapshot collection the caller
/// releases (`EnumerateConnections`).
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `ppCollection` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_get_Connections(
    mgr: *mut INetFwV6Mgr,
    ppCollection: *mut *mut INetFwV6ConnectionsCollection,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        make_from(mgr, "mgr", ppCollection, "ppCollection", |m| {
            let ids = m.session.connections()?.into_iter().map(|c| c.id);
            Ok(INetFwV6ConnectionsCollection::new(
                Arc::clone(&m.session),
                ids.collect(),
            ))
        })
    }
}
