//! The host's network adapters on Windows, from `GetAdaptersAddresses`.
//!
//! A connection is an adapter with IPv6 enabled (the list is asked for
//! `AF_INET6`): its id is the adapter GUID string (`AdapterName`, e.g.
//! `{4D36E972-E325-11CE-BFC1-08002BE10318}`), its name the friendly name
//! ("Ethernet", "Wi-Fi"), its index the IPv6 interface index (the IPv4 one if
//! Windows reports none), which is what WinDivert's packets carry.

use std::ffi::CStr;

use ::windows::Win32::Foundation::{ERROR_BUFFER_OVERFLOW, ERROR_NO_DATA, NO_ERROR};
use ::windows::Win32::NetworkManagement::IpHelper::{
    GetAdaptersAddresses, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_DNS_SERVER, GAA_FLAG_SKIP_MULTICAST,
    GAA_FLAG_SKIP_UNICAST, IP_ADAPTER_ADDRESSES_LH,
};
use ::windows::Win32::Networking::WinSock::AF_INET6;

use super::Interface;
use crate::fw::FwError;

/// The buffer size Microsoft recommends for the first call (15 KB).
const FIRST_SIZE: u32 = 15 * 1024;

/// How many times a buffer too small (adapters appearing meanwhile) is retried.
const TRIES: usize = 4;

/// A guard against a corrupt list: no host has this many adapters.
const MAX_ADAPTERS: usize = 65_536;

/// The adapters of this host with IPv6 enabled, sorted by id.
pub(super) fn list() -> Result<Vec<Interface>, FwError> {
    let flags = GAA_FLAG_SKIP_UNICAST
        | GAA_FLAG_SKIP_ANYCAST
        | GAA_FLAG_SKIP_MULTICAST
        | GAA_FLAG_SKIP_DNS_SERVER;
    let family = u32::from(AF_INET6.0);
    let mut size = FIRST_SIZE;
    for _ in 0..TRIES {
        // u64 elements: the list's structures need 8-byte alignment.
        let words = usize::try_from(size).unwrap_or(usize::MAX).div_ceil(8);
        let mut buf: Vec<u64> = vec![0; words.max(1)];
        let mut len = u32::try_from(buf.len().saturating_mul(8)).unwrap_or(u32::MAX);
        let head = buf.as_mut_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
        // SAFETY: `head` points to `len` writable bytes (the Vec's whole
        // allocation, 8-byte aligned); `len` is a valid in/out pointer. Windows
        // writes at most `len` bytes, or sets `len` to the size it needs and
        // returns ERROR_BUFFER_OVERFLOW.
        let rc = unsafe { GetAdaptersAddresses(family, flags, None, Some(head), &mut len) };
        match rc {
            r if r == NO_ERROR.0 => {
                // SAFETY: on success the buffer holds a list of adapters whose
                // first element is at `head`; `buf` stays alive (and
                // unmoved) while `walk` reads it.
                let mut out = unsafe { walk(head) };
                drop(buf);
                out.sort_by(|a, b| a.id.cmp(&b.id));
                return Ok(out);
            }
            r if r == ERROR_NO_DATA.0 => return Ok(Vec::new()),
            r if r == ERROR_BUFFER_OVERFLOW.0 => {
                // Adapters may appear between the calls: ask for a bit more.
                size = len.max(size).saturating_add(4096);
            }
            r => {
                return Err(FwError::Fail(format!(
                    "cannot list the network adapters: GetAdaptersAddresses failed: {}",
                    std::io::Error::from_raw_os_error(i32::try_from(r).unwrap_or(i32::MAX))
                )))
            }
        }
    }
    Err(FwError::Fail(format!(
        "cannot list the network adapters: the list kept growing ({size} bytes after {TRIES} tries); try again"
    )))
}

/// Reads the adapters of the list starting at `head`.
///
/// # Safety
///
/// `head` is null or the first element of a list GetAdaptersAddresses
/// returned, whose buffer outlives this call.
unsafe fn walk(head: *const IP_ADAPTER_ADDRESSES_LH) -> Vec<Interface> {
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() && out.len() < MAX_ADAPTERS {
        // SAFETY: `p` is non-null and is `head` or a `Next` link of the list
        // (the caller's contract), so it points to a valid, aligned element.
        let a = unsafe { &*p };
        p = a.Next;
        let id = if a.AdapterName.is_null() {
            continue;
        } else {
            // SAFETY: a non-null AdapterName is a NUL-terminated ANSI string
            // inside the list's buffer.
            unsafe { CStr::from_ptr(a.AdapterName.0.cast_const().cast()) }
                .to_string_lossy()
                .into_owned()
        };
        let friendly = if a.FriendlyName.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null FriendlyName is a NUL-terminated UTF-16
            // string inside the list's buffer; as_wide stops at the NUL.
            String::from_utf16_lossy(unsafe { a.FriendlyName.as_wide() })
        };
        // SAFETY: both members of the union are plain integers laid over
        // the same 8 bytes; any bit pattern is a valid u32.
        let if_index = unsafe { a.Anonymous1.Anonymous.IfIndex };
        let index = if a.Ipv6IfIndex != 0 {
            a.Ipv6IfIndex
        } else {
            if_index
        };
        if id.is_empty() || index == 0 {
            continue;
        }
        let name = if friendly.trim().is_empty() {
            id.clone()
        } else {
            friendly
        };
        out.push(Interface { id, name, index });
    }
    out
}
