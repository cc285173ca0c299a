//! The C types of Netfwv6.h and the HRESULT macros, as the header declares
//! them.
//!
//! The HRESULT values are those of the API crate's one table
//! ([`v6fw_api::fw::Code`]): the functions return `FwError::hresult()`, and
//! the constants here exist only so that cbindgen can write them into the
//! header as macros; a test checks each against the table.

#![allow(non_camel_case_types, reason = "the names of Netfwv6.h and winerror.h")]

use std::ffi::c_int;

/// A COM status code: `S_OK` (0) or another success is `>= 0`, a failure is
/// `< 0` (see `FAILED` and `SUCCEEDED`).
#[cfg(not(windows))]
pub type HRESULT = i32;

/// A COM status code, declared as `<windows.h>` declares it (`long`), so that
/// a program may include both headers.
#[cfg(windows)]
pub type HRESULT = std::ffi::c_long;

/// A COM boolean: `VARIANT_TRUE` (-1) or `VARIANT_FALSE` (0).
pub type VARIANT_BOOL = i16;

/// A port number in host order.
pub type USHORT = u16;

/// `PORT_PROTOCOL` as the functions receive it: a C `int`. A C enum may
/// hold any `int`, so it is taken as one and checked (6 or 17, else
/// `E_INVALIDARG`) instead of being read as a Rust enum.
///
/// cbindgen:ignore
pub type PORT_PROTOCOL = c_int;

/// The protocol of a port/protocol pair.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortProtocol {
    /// TCP, IP protocol 6.
    PORT_PROTOCOL_TCP = 6,
    /// UDP, IP protocol 17.
    PORT_PROTOCOL_UDP = 17,
}

/// `VARIANT_TRUE`.
pub const VARIANT_TRUE: VARIANT_BOOL = -1;
/// `VARIANT_FALSE`.
pub const VARIANT_FALSE: VARIANT_BOOL = 0;

/// Success.
pub const S_OK: HRESULT = 0;
/// Success, but less than asked (an enumerator's `Next` at the end).
pub const S_FALSE: HRESULT = 1;
/// The operation was aborted (the daemon did not reply in time).
pub const E_ABORT: HRESULT = 0x8000_4004_u32 as HRESULT;
/// The operation failed (no daemon running, an I/O error, ...).
pub const E_FAIL: HRESULT = 0x8000_4005_u32 as HRESULT;
/// An argument is not valid (port 0, another protocol, an index out of
/// range, an unknown connection, a name that is too long).
pub const E_INVALIDARG: HRESULT = 0x8007_0057_u32 as HRESULT;
/// The daemon does not speak this library's protocol (another version).
pub const E_NOINTERFACE: HRESULT = 0x8000_4002_u32 as HRESULT;
/// Not implemented on this platform.
pub const E_NOTIMPL: HRESULT = 0x8000_4001_u32 as HRESULT;
/// Out of memory or of another resource.
pub const E_OUTOFMEMORY: HRESULT = 0x8007_000E_u32 as HRESULT;
/// A required pointer (a handle or an out-pointer) is NULL.
pub const E_POINTER: HRESULT = 0x8000_4003_u32 as HRESULT;
/// An internal error (a bug in libv6fw, reported, not crashed on).
pub const E_UNEXPECTED: HRESULT = 0x8000_FFFF_u32 as HRESULT;
/// A change by a caller who is neither root nor in the daemon's
/// `--admin-group` (Windows: not an elevated Administrator).
pub const E_ACCESSDENIED: HRESULT = 0x8007_0005_u32 as HRESULT;

/// The HRESULT of an API code, from the API crate's table.
pub(crate) const fn hresult_of(code: v6fw_api::fw::Code) -> HRESULT {
    // The table holds HRESULTs as u32; the C type is the same 32 bits signed.
    code.hresult() as HRESULT
}

/// A Rust bool as a `VARIANT_BOOL`.
pub(crate) const fn variant_bool(b: bool) -> VARIANT_BOOL {
    if b {
        VARIANT_TRUE
    } else {
        VARIANT_FALSE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6fw_api::fw::Code;

    /// The header's macros are the API crate's table, code for code.
    #[test]
    fn the_header_constants_are_the_api_table() {
        let header = [
            ("E_INVALIDARG", E_INVALIDARG),
            ("E_ACCESSDENIED", E_ACCESSDENIED),
            ("E_OUTOFMEMORY", E_OUTOFMEMORY),
            ("E_FAIL", E_FAIL),
            ("E_ABORT", E_ABORT),
            ("E_NOTIMPL", E_NOTIMPL),
            ("E_POINTER", E_POINTER),
            ("E_NOINTERFACE", E_NOINTERFACE),
            ("E_UNEXPECTED", E_UNEXPECTED),
        ];
        assert_eq!(header.len(), Code::ALL.len());
        for code in Code::ALL {
            let found = header.iter().find(|(name, _)| *name == code.name());
            assert_eq!(
                found.map(|(_, v)| *v),
                Some(hresult_of(code)),
                "{}",
                code.name()
            );
        }
        assert!(header.iter().all(|(_, v)| *v < 0), "every E_ is FAILED");
    }

    #[test]
    fn protocols_are_their_ip_numbers() {
        assert_eq!(PortProtocol::PORT_PROTOCOL_TCP as PORT_PROTOCOL, 6);
        assert_eq!(PortProtocol::PORT_PROTOCOL_UDP as PORT_PROTOCOL, 17);
        assert_eq!(variant_bool(true), -1);
        assert_eq!(variant_bool(false), 0);
    }
}
