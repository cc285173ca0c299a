//! The C API, as `windivert.h` declares it, over [`crate::sim::Sim`].
//!
//! A handle is a boxed [`Sim`]; the live ones are kept in [`LIVE`] so a
//! handle that is not one (or is closed) fails with `ERROR_INVALID_HANDLE`
//! instead of being dereferenced.

#![allow(non_snake_case)]

use std::ffi::{c_char, c_void, CStr};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::address::{Address, LAYER_NETWORK};
use crate::sim::{Sim, ERROR_INVALID_PARAMETER};

/// `ERROR_FILE_NOT_FOUND`.
const ERROR_FILE_NOT_FOUND: u32 = 2;
/// `ERROR_INVALID_HANDLE`.
const ERROR_INVALID_HANDLE: u32 = 6;
/// `INVALID_HANDLE_VALUE`.
const INVALID_HANDLE: isize = -1;

#[link(name = "kernel32")]
extern "system" {
    fn SetLastError(code: u32);
    fn QueryPerformanceCounter(count: *mut i64) -> i32;
    fn GetModuleHandleExW(flags: u32, name: *const u16, module: *mut isize) -> i32;
    fn GetModuleFileNameW(module: isize, name: *mut u16, size: u32) -> u32;
}

/// `GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT`.
const MODULE_FROM_ADDRESS: u32 = 0x4 | 0x2;

/// The directory named in `WinDivert.sim` beside this DLL (its first line),
/// for processes that do not inherit the environment (a service).
fn dir_from_file() -> Option<PathBuf> {
    let mut module = 0isize;
    let here = dir_from_file as *const () as *const u16;
    // SAFETY: with FROM_ADDRESS the name is an address inside this module;
    // `module` is a valid out-pointer; the reference count is not changed.
    if unsafe { GetModuleHandleExW(MODULE_FROM_ADDRESS, here, &mut module) } == 0 {
        return None;
    }
    let mut buf = vec![0u16; 32_768];
    let cap = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: `buf` has room for `cap` UTF-16 units; `module` is this DLL.
    let n = unsafe { GetModuleFileNameW(module, buf.as_mut_ptr(), cap) } as usize;
    let dll = PathBuf::from(String::from_utf16_lossy(buf.get(..n)?));
    let text = std::fs::read_to_string(dll.with_file_name("WinDivert.sim")).ok()?;
    text.lines().next().map(|l| PathBuf::from(l.trim()))
}

/// The handles handed out and not closed yet (their addresses).
static LIVE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<usize>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the thread's last error and returns FALSE.
fn fail(code: u32) -> i32 {
    // SAFETY: SetLastError only writes the calling thread's error slot.
    unsafe { SetLastError(code) };
    0
}

fn now() -> i64 {
    let mut t = 0i64;
    // SAFETY: `t` is a valid out-pointer; the call cannot fail on XP or later.
    unsafe { QueryPerformanceCounter(&mut t) };
    t
}

/// The simulator behind `handle`, if it is a live one.
///
/// # Safety
///
/// The caller does not close `handle` while the returned reference is used
/// (as with the real API, closing a handle that is in use is the caller's bug).
unsafe fn sim<'a>(handle: isize) -> Option<&'a Sim> {
    let key = usize::try_from(handle).ok()?;
    if !live().contains(&key) {
        return None;
    }
    // SAFETY: `key` is in LIVE, so it is a `Box<Sim>` leaked by WinDivertOpen
    // and not yet freed by WinDivertClose; the caller's contract keeps it so.
    Some(unsafe { &*(key as *const Sim) })
}

/// `HANDLE WinDivertOpen(const char *filter, WINDIVERT_LAYER layer, INT16 priority, UINT64 flags)`.
///
/// # Safety
///
/// `filter` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn WinDivertOpen(
    filter: *const c_char,
    layer: u32,
    priority: i16,
    flags: u64,
) -> isize {
    if let Some(code) = std::env::var("V6FW_WINDIVERT_SIM_FAIL")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        fail(code);
        return INVALID_HANDLE;
    }
    let Some(dir) = std::env::var_os("V6FW_WINDIVERT_SIM")
        .map(PathBuf::from)
        .or_else(dir_from_file)
    else {
        fail(ERROR_FILE_NOT_FOUND);
        return INVALID_HANDLE;
    };
    if filter.is_null() || layer != LAYER_NETWORK {
        fail(ERROR_INVALID_PARAMETER);
        return INVALID_HANDLE;
    }
    // SAFETY: not null, NUL-terminated by the caller's contract.
    let filter = unsafe { CStr::from_ptr(filter) }.to_string_lossy();
    let line = format!("open filter={filter:?} layer={layer} priority={priority} flags={flags}");
    match Sim::open(&dir, &line) {
        Ok(s) => {
            let key = Box::into_raw(Box::new(s)) as usize;
            live().push(key);
            isize::try_from(key).unwrap_or(INVALID_HANDLE)
        }
        Err(e) => {
            fail(
                e.raw_os_error()
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(ERROR_FILE_NOT_FOUND),
            );
            INVALID_HANDLE
        }
    }
}

/// `BOOL WinDivertSetParam(HANDLE handle, WINDIVERT_PARAM param, UINT64 value)`: logged.
#[no_mangle]
pub extern "system" fn WinDivertSetParam(handle: isize, param: u32, value: u64) -> i32 {
    // SAFETY: the reference is used only within this call.
    let Some(s) = (unsafe { sim(handle) }) else {
        return fail(ERROR_INVALID_HANDLE);
    };
    if param > 2 {
        s.log(&format!("error param {param}: not a WINDIVERT_PARAM"));
        return fail(ERROR_INVALID_PARAMETER);
    }
    s.log(&format!("param {param} {value}"));
    1
}

/// `BOOL WinDivertRecvEx(HANDLE, VOID *pPacket, UINT packetLen, UINT *pRecvLen,
/// UINT64 flags, WINDIVERT_ADDRESS *pAddr, UINT *pAddrLen, LPOVERLAPPED)`.
///
/// # Safety
///
/// `packet` is valid for `packet_len` bytes; `addr` for `*addr_len` bytes;
/// `recv_len` and `addr_len` are null or valid.
#[no_mangle]
pub unsafe extern "system" fn WinDivertRecvEx(
    handle: isize,
    packet: *mut c_void,
    packet_len: u32,
    recv_len: *mut u32,
    _flags: u64,
    addr: *mut Address,
    addr_len: *mut u32,
    overlapped: *mut c_void,
) -> i32 {
    // SAFETY: the reference is used only within this call.
    let Some(s) = (unsafe { sim(handle) }) else {
        return fail(ERROR_INVALID_HANDLE);
    };
    if packet.is_null() || addr.is_null() || addr_len.is_null() || !overlapped.is_null() {
        s.log("error recv: null buffer or address, or OVERLAPPED (not simulated)");
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: `addr_len` is not null and valid by the caller's contract.
    let slots = unsafe { *addr_len } as usize / size_of::<Address>();
    // SAFETY: `packet` is valid for `packet_len` writable bytes.
    let buf = unsafe { std::slice::from_raw_parts_mut(packet.cast::<u8>(), packet_len as usize) };
    // SAFETY: `addr` is valid for `*addr_len` bytes, so for `slots` addresses
    // (Address is plain data; any bytes are a valid value).
    let addrs = unsafe { std::slice::from_raw_parts_mut(addr, slots) };
    match s.recv(buf, addrs, now()) {
        Ok(got) => {
            if !recv_len.is_null() {
                // SAFETY: not null, valid by the caller's contract.
                unsafe { *recv_len = u32::try_from(got.bytes).unwrap_or(u32::MAX) };
            }
            let used = got.packets * size_of::<Address>();
            // SAFETY: as above.
            unsafe { *addr_len = u32::try_from(used).unwrap_or(u32::MAX) };
            1
        }
        Err(code) => fail(code),
    }
}

/// `BOOL WinDivertSendEx(HANDLE, const VOID *pPacket, UINT packetLen, UINT *pSendLen,
/// UINT64 flags, const WINDIVERT_ADDRESS *pAddr, UINT addrLen, LPOVERLAPPED)`.
///
/// # Safety
///
/// `packet` is valid for `packet_len` bytes; `addr` for `addr_len` bytes;
/// `send_len` is null or valid.
#[no_mangle]
pub unsafe extern "system" fn WinDivertSendEx(
    handle: isize,
    packet: *const c_void,
    packet_len: u32,
    send_len: *mut u32,
    _flags: u64,
    addr: *const Address,
    addr_len: u32,
    overlapped: *mut c_void,
) -> i32 {
    // SAFETY: the reference is used only within this call.
    let Some(s) = (unsafe { sim(handle) }) else {
        return fail(ERROR_INVALID_HANDLE);
    };
    let count = addr_len as usize / size_of::<Address>();
    if packet.is_null() || addr.is_null() || count == 0 || !overlapped.is_null() {
        s.log("error send: null buffer or address, no address, or OVERLAPPED (not simulated)");
        return fail(ERROR_INVALID_PARAMETER);
    }
    // SAFETY: `packet` is valid for `packet_len` bytes by the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(packet.cast::<u8>(), packet_len as usize) };
    // SAFETY: `addr` is valid for `addr_len` bytes, so for `count` addresses.
    let addrs = unsafe { std::slice::from_raw_parts(addr, count) };
    match s.send(bytes, addrs) {
        Ok(n) => {
            if !send_len.is_null() {
                // SAFETY: not null, valid by the caller's contract.
                unsafe { *send_len = u32::try_from(n).unwrap_or(u32::MAX) };
            }
            1
        }
        Err(code) => fail(code),
    }
}

/// `BOOL WinDivertShutdown(HANDLE handle, WINDIVERT_SHUTDOWN how)`.
#[no_mangle]
pub extern "system" fn WinDivertShutdown(handle: isize, how: u32) -> i32 {
    // SAFETY: the reference is used only within this call.
    let Some(s) = (unsafe { sim(handle) }) else {
        return fail(ERROR_INVALID_HANDLE);
    };
    match s.shutdown(how) {
        Ok(()) => 1,
        Err(code) => fail(code),
    }
}

/// `BOOL WinDivertClose(HANDLE handle)`: settles and frees the handle.
#[no_mangle]
pub extern "system" fn WinDivertClose(handle: isize) -> i32 {
    let Ok(key) = usize::try_from(handle) else {
        return fail(ERROR_INVALID_HANDLE);
    };
    {
        let mut l = live();
        let Some(at) = l.iter().position(|&k| k == key) else {
            return fail(ERROR_INVALID_HANDLE);
        };
        l.swap_remove(at);
    }
    // SAFETY: `key` was in LIVE (now removed, so this runs once per handle):
    // a `Box<Sim>` leaked by WinDivertOpen.
    let s = unsafe { Box::from_raw(key as *mut Sim) };
    s.close();
    1
}
