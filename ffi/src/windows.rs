//! The `W` variants (Windows): the same functions taking UTF-16 strings
//! (`const wchar_t *`, NUL-terminated). Each converts its string to UTF-8
//! (a lone surrogate is `E_INVALIDARG`) and calls the UTF-8 function.

#![allow(non_snake_case, reason = "the names of Netfwv6.h")]

use std::ffi::{c_char, CString};

use v6fw_api::fw::{Code, FwError};

use crate::call::error;
use crate::connection::INetFwV6Connection;
use crate::handle::null;
use crate::mgr::INetFwV6Mgr;
use crate::types::{hresult_of, HRESULT, PORT_PROTOCOL, USHORT};

/// `s` (NULL or NUL-terminated UTF-16) as a UTF-8 C string.
///
/// # Safety
/// `s` is NULL or a NUL-terminated UTF-16 string.
unsafe fn utf8(s: *const u16, what: &str) -> Result<Option<CString>, FwError> {
    if s.is_null() {
        return Ok(None);
    }
    let mut len = 0;
    // SAFETY: the string is NUL-terminated by the contract, so every unit
    // up to and including the NUL is readable.
    while unsafe { s.add(len).read() } != 0 {
        len += 1;
    }
    // SAFETY: the `len` units before the NUL were just read.
    let units = unsafe { std::slice::from_raw_parts(s, len) };
    let text = String::from_utf16(units).map_err(|e| {
        error(
            Code::InvalidArg,
            format!("{what} is not valid UTF-16 ({e}): pass a proper string"),
        )
    })?;
    // No NUL inside: the loop stopped at the first one.
    Ok(Some(CString::new(text).unwrap_or_default()))
}

/// Converts, or returns the failure's HRESULT (with its message kept).
macro_rules! utf8_or_return {
    ($s:expr, $what:expr) => {
        // SAFETY: the calling function's contract makes `$s` NULL or a
        // NUL-terminated UTF-16 string.
        match unsafe { utf8($s, $what) } {
            Ok(v) => v,
            Err(e) => {
                let code = e.code();
                crate::call::call_ok(|| Err(e));
                return hresult_of(code);
            }
        }
    };
}

fn ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// `NetFwV6Mgr_Create` with a UTF-16 pipe name (NULL: the default pipe).
///
/// # Safety
/// `control` is NULL or a NUL-terminated UTF-16 string; `ppMgr` is NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn NetFwV6Mgr_CreateW(
    control: *const u16,
    ppMgr: *mut *mut INetFwV6Mgr,
) -> HRESULT {
    let control = utf8_or_return!(control, "control");
    // SAFETY: the same contract, the string converted.
    unsafe { crate::mgr::NetFwV6Mgr_Create(ptr(&control), ppMgr) }
}

/// `INetFwV6Mgr_OpenGlobalPort` with a UTF-16 name.
///
/// # Safety
/// As `INetFwV6Mgr_OpenGlobalPort`, `name` NULL or NUL-terminated UTF-16.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_OpenGlobalPortW(
    mgr: *mut INetFwV6Mgr,
    port: USHORT,
    protocol: PORT_PROTOCOL,
    name: *const u16,
) -> HRESULT {
    let name = utf8_or_return!(name, "name");
    // SAFETY: the same contract, the string converted.
    unsafe { crate::mgr::INetFwV6Mgr_OpenGlobalPort(mgr, port, protocol, ptr(&name)) }
}

/// `INetFwV6Mgr_GetConnection` with a UTF-16 id (the adapter's GUID).
///
/// # Safety
/// As `INetFwV6Mgr_GetConnection`, `connectionId` NULL or NUL-terminated
/// UTF-16.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_GetConnectionW(
    mgr: *mut INetFwV6Mgr,
    connectionId: *const u16,
    ppConnection: *mut *mut INetFwV6Connection,
) -> HRESULT {
    if connectionId.is_null() {
        let e = null("connectionId");
        let code = e.code();
        if !ppConnection.is_null() {
            // SAFETY: non-null, valid for a write by the contract.
            unsafe { ppConnection.write(std::ptr::null_mut()) };
        }
        crate::call::call_ok(|| Err(e));
        return hresult_of(code);
    }
    let id = utf8_or_return!(connectionId, "connectionId");
    // SAFETY: the same contract, the string converted.
    unsafe { crate::mgr::INetFwV6Mgr_GetConnection(mgr, ptr(&id), ppConnection) }
}

/// `INetFwV6Connection_OpenPort` with a UTF-16 name.
///
/// # Safety
/// As `INetFwV6Connection_OpenPort`, `name` NULL or NUL-terminated UTF-16.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Connection_OpenPortW(
    conn: *mut INetFwV6Connection,
    port: USHORT,
    protocol: PORT_PROTOCOL,
    name: *const u16,
) -> HRESULT {
    let name = utf8_or_return!(name, "name");
    // SAFETY: the same contract, the string converted.
    unsafe { crate::connection::INetFwV6Connection_OpenPort(conn, port, protocol, ptr(&name)) }
}

/// `INetFwV6Mgr_put_LogFilePath` with a UTF-16 path (NULL: the default).
///
/// # Safety
/// As `INetFwV6Mgr_put_LogFilePath`, `path` NULL or NUL-terminated UTF-16.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6Mgr_put_LogFilePathW(
    mgr: *mut INetFwV6Mgr,
    path: *const u16,
) -> HRESULT {
    let path = utf8_or_return!(path, "path");
    // SAFETY: the same contract, the string converted.
    unsafe { crate::logging::INetFwV6Mgr_put_LogFilePath(mgr, ptr(&path)) }
}
