//! WinDivert.dll, loaded when `v6fw run` first opens a handle rather than
//! by the Windows loader when v6fw.exe starts.
//!
//! Linked at load time, a missing WinDivert.dll stops v6fw.exe before `main`
//! with the loader's own error (STATUS_DLL_NOT_FOUND, a dialog on a desktop,
//! nothing useful over SSH) — and every command would need the DLL, even
//! `v6fw replay` or `v6fw check`, which never touch the driver. Loaded here,
//! only `run` needs it, and when it is absent or is not WinDivert 2.x the
//! error says which file was looked for and what to put there.
//!
//! The DLL is looked for in v6fw.exe's own directory, then in System32, and
//! never in the current directory or on `PATH`: a privileged process must
//! not load a DLL a user could plant there.

use std::ffi::c_char;
use std::sync::OnceLock;

use windivert_sys::address::WINDIVERT_ADDRESS;
use windivert_sys::{WinDivertFlags, WinDivertLayer, WinDivertParam, WinDivertShutdownMode};
use windows::core::{w, PCSTR};
use windows::Win32::Foundation::{BOOL, HANDLE};
use windows::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_APPLICATION_DIR,
    LOAD_LIBRARY_SEARCH_SYSTEM32,
};
use windows::Win32::System::IO::OVERLAPPED;

use crate::backend::CaptureError;

/// `WinDivertOpen`.
pub type OpenFn =
    unsafe extern "C" fn(*const c_char, WinDivertLayer, i16, WinDivertFlags) -> HANDLE;
/// `WinDivertRecvEx`.
pub type RecvExFn = unsafe extern "C" fn(
    HANDLE,
    *mut std::ffi::c_void,
    u32,
    *mut u32,
    u64,
    *mut WINDIVERT_ADDRESS,
    *mut u32,
    *mut OVERLAPPED,
) -> BOOL;
/// `WinDivertSendEx`.
pub type SendExFn = unsafe extern "C" fn(
    HANDLE,
    *const std::ffi::c_void,
    u32,
    *mut u32,
    u64,
    *const WINDIVERT_ADDRESS,
    u32,
    *mut OVERLAPPED,
) -> BOOL;
/// `WinDivertShutdown`.
pub type ShutdownFn = unsafe extern "C" fn(HANDLE, WinDivertShutdownMode) -> BOOL;
/// `WinDivertClose`.
pub type CloseFn = unsafe extern "C" fn(HANDLE) -> BOOL;
/// `WinDivertSetParam`.
pub type SetParamFn = unsafe extern "C" fn(HANDLE, WinDivertParam, u64) -> BOOL;

/// What `GetProcAddress` returns for a found symbol.
type RawProc = unsafe extern "system" fn() -> isize;

/// The six WinDivert entry points v6fw calls.
pub struct Api {
    /// `WinDivertOpen`.
    pub open: OpenFn,
    /// `WinDivertRecvEx`.
    pub recv_ex: RecvExFn,
    /// `WinDivertSendEx`.
    pub send_ex: SendExFn,
    /// `WinDivertShutdown`.
    pub shutdown: ShutdownFn,
    /// `WinDivertClose`.
    pub close: CloseFn,
    /// `WinDivertSetParam`.
    pub set_param: SetParamFn,
}

/// The file name looked for.
const DLL: &str = "WinDivert.dll";

/// WinDivert.dll's entry points, loaded on the first call (the DLL then stays
/// loaded for the life of the process); the same error on every call if it
/// could not be.
pub fn api() -> Result<&'static Api, CaptureError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    match API.get_or_init(load) {
        Ok(api) => Ok(api),
        Err(message) => Err(CaptureError::Protocol(message.clone())),
    }
}

/// Where the DLL must be: v6fw.exe's directory, for the messages.
fn exe_dir() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
        .unwrap_or_else(|| "the directory of v6fw.exe".to_owned())
}

fn load() -> Result<Api, String> {
    let dir = exe_dir();
    // SAFETY: the name is a NUL-terminated wide string literal; loading a DLL
    // runs its DllMain, which for WinDivert.dll only sets up its own state.
    let module = unsafe {
        LoadLibraryExW(
            w!("WinDivert.dll"),
            None,
            LOAD_LIBRARY_SEARCH_APPLICATION_DIR | LOAD_LIBRARY_SEARCH_SYSTEM32,
        )
    }
    .map_err(|e| {
        let code = e.code().0 as u32 & 0xFFFF;
        match code {
            126 => format!(
                "cannot load {DLL}: it is not in {dir} (nor in System32): put WinDivert.dll \
                 and WinDivert64.sys from the WinDivert 2.2 x64 release next to v6fw.exe \
                 (README: Windows)"
            ),
            193 => format!(
                "cannot load {DLL} from {dir}: it is not a 64-bit DLL: use the x64 files of \
                 the WinDivert 2.2 release"
            ),
            _ => format!("cannot load {DLL} from {dir}: {e} (Windows error {code})"),
        }
    })?;
    let find = |name: PCSTR, shown: &str| {
        // SAFETY: `module` is loaded and never unloaded; `name` is a
        // NUL-terminated ASCII literal.
        unsafe { GetProcAddress(module, name) }.ok_or_else(|| {
            format!(
                "{DLL} in {dir} does not export {shown}: it is not WinDivert 2.x; use the \
                 WinDivert 2.2 x64 release"
            )
        })
    };
    // One entry point by its name, as the field's function pointer type.
    macro_rules! entry {
        ($name:literal, $ty:ty) => {
            // SAFETY: the symbol is WinDivert 2.x's function of that name,
            // whose C signature the field's type spells (as windivert-sys
            // declares it); both are plain function pointers.
            unsafe { std::mem::transmute::<RawProc, $ty>(find(windows::core::s!($name), $name)?) }
        };
    }
    Ok(Api {
        open: entry!("WinDivertOpen", OpenFn),
        recv_ex: entry!("WinDivertRecvEx", RecvExFn),
        send_ex: entry!("WinDivertSendEx", SendExFn),
        shutdown: entry!("WinDivertShutdown", ShutdownFn),
        close: entry!("WinDivertClose", CloseFn),
        set_param: entry!("WinDivertSetParam", SetParamFn),
    })
}
