//! The firewall log's properties of `INetFwV6Mgr`: whether dropped packets
//! and accepted connections are logged, the file, and its size cap. A
//! `put_` needs root or the daemon's `--admin-group`, else `E_ACCESSDENIED`.

#![allow(non_snake_case, reason = "the names of Netfwv6.h")]

use std::ffi::c_char;

use v6fw_api::control::protocol::{LogSettingsResult, Request};
use v6fw_api::fw::FwError;

use crate::handle::{c_string, get, opt_str_arg};
use crate::mgr::{with, INetFwV6Mgr};
use crate::session::Session;
use crate::types::{variant_bool, HRESULT, VARIANT_BOOL, VARIANT_FALSE};

fn settings(s: &Session) -> Result<LogSettingsResult, FwError> {
    s.request(&Request::LogSettings)
}

/// One field of the log settings to change; the others stay.
#[derive(Default)]
struct SetLog {
    dropped: Option<bool>,
    connections: Option<bool>,
    path: Option<String>,
    default_path: bool,
    max_size: Option<u64>,
}

impl SetLog {
    fn send(self, s: &Session) -> Result<(), FwError> {
        s.change(&Request::SetLog {
            dropped: self.dropped,
            connections: self.connections,
            path: self.path,
            default_path: self.default_path,
            max_size: self.max_size,
        })
    }
}

/// Reads one field of the log settings into `out`.
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `out` is NULL or valid for a
/// write.
unsafe fn get_setting<V>(
    mgr: *mut INetFwV6Mgr,
    out: *mut V,
    out_name: &str,
    field: impl FnOnce(LogSettingsResult) -> V,
) -> HRESULT {
    // SAFETY: by the caller's contract.
    unsafe {
        get(mgr, "mgr", out, out_name, |m| {
            Ok(field(settings(&m.session)?))
        })
    }
}

/// Sends the change `set` of the log settings.
///
/// # Safety
/// `mgr` is NULL or a live manager handle.
unsafe fn put_setting(mgr: *mut INetFwV6Mgr, set: SetLog) -> HRESULT {
    // SAFETY: by the caller's contract.
    unsafe { with(mgr, |m| set.send(&m.session)) }
}

/// Whether dropped packets are logged (`VARIANT_TRUE` / `VARIANT_FALSE`).
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `pvb` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_get_LogDroppedPackets(
    mgr: *mut INetFwV6Mgr,
    pvb: *mut VARIANT_BOOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe { get_setting(mgr, pvb, "pvb", |s| variant_bool(s.dropped)) }
}

/// Logs dropped packets (any value but `VARIANT_FALSE`) or stops.
///
/// # Safety
/// `mgr` is NULL or a live manager handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_put_LogDroppedPackets(
    mgr: *mut INetFwV6Mgr,
    vb: VARIANT_BOOL,
) -> HRESULT {
    let set = SetLog {
        dropped: Some(vb != VARIANT_FALSE),
        ..SetLog::default()
    };
    // SAFETY: by this function's contract.
    unsafe { put_setting(mgr, set) }
}

/// Whether accepted connections are logged.
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `pvb` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_get_LogConnections(
    mgr: *mut INetFwV6Mgr,
    pvb: *mut VARIANT_BOOL,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe { get_setting(mgr, pvb, "pvb", |s| variant_bool(s.connections)) }
}

/// Logs accepted connections (any value but `VARIANT_FALSE`) or stops.
///
/// # Safety
/// `mgr` is NULL or a live manager handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_put_LogConnections(
    mgr: *mut INetFwV6Mgr,
    vb: VARIANT_BOOL,
) -> HRESULT {
    let set = SetLog {
        connections: Some(vb != VARIANT_FALSE),
        ..SetLog::default()
    };
    // SAFETY: by this function's contract.
    unsafe { put_setting(mgr, set) }
}

/// The log file the daemon writes (the path set, or `pfirewall.log` in its
/// state directory; empty if it has neither), as a new string the caller
/// frees with `v6fw_string_free`.
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `ppPath` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_get_LogFilePath(
    mgr: *mut INetFwV6Mgr,
    ppPath: *mut *mut c_char,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        get_setting(mgr, ppPath, "ppPath", |s| {
            c_string(s.file.or(s.path).as_deref().unwrap_or(""))
        })
    }
}

/// Sets the log file, an absolute path (else `E_INVALIDARG`); NULL goes
/// back to the default, `pfirewall.log` in the daemon's state directory.
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `path` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_put_LogFilePath(
    mgr: *mut INetFwV6Mgr,
    path: *const c_char,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        with(mgr, |m| {
            let path = opt_str_arg(path, "path")?;
            SetLog {
                default_path: path.is_none(),
                path: path.map(str::to_string),
                ..SetLog::default()
            }
            .send(&m.session)
        })
    }
}

/// The log file's size cap in bytes (at the cap it is rotated to
/// `FILE.old`).
///
/// # Safety
/// `mgr` is NULL or a live manager handle; `pBytes` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_get_LogFileMaxSize(
    mgr: *mut INetFwV6Mgr,
    pBytes: *mut u64,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe { get_setting(mgr, pBytes, "pBytes", |s| s.max_size) }
}

/// Sets the log file's size cap in bytes (at least 1024, else
/// `E_INVALIDARG`).
///
/// # Safety
/// `mgr` is NULL or a live manager handle.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_put_LogFileMaxSize(
    mgr: *mut INetFwV6Mgr,
    bytes: u64,
) -> HRESULT {
    let set = SetLog {
        max_size: Some(bytes),
        ..SetLog::default()
    };
    // SAFETY: by this function's contract.
    unsafe { put_setting(mgr, set) }
}
