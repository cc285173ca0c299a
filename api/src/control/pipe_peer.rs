//! Who is at the other end of the control pipe (Windows).
//!
//! - [`token_is_admin`]: whether a token is a member of
//!   BUILTIN\Administrators (deny-only membership, a non-elevated
//!   administrator under UAC, does not count). SYSTEM's token has that group.
//! - [`check_server`]: the client's check, before it sends anything, that
//!   the process serving the pipe runs as SYSTEM or an elevated
//!   Administrator, so a program that took the pipe's name before the daemon
//!   started (any user can create a pipe of a free name) is refused instead
//!   of being told the admin's requests. The server's process comes from
//!   `GetNamedPipeServerProcessId`; its token is opened
//!   (`OpenProcessToken`), duplicated as an identification token and checked
//!   with [`token_is_admin`]. A client that may not open the server's token
//!   (a standard user asking a SYSTEM service for `stats`) checks the pipe's
//!   owner instead: the owner of a kernel object is set from its creator's
//!   token and only SYSTEM or an elevated administrator can make it SYSTEM
//!   or BUILTIN\Administrators.
//! - [`client_identity`]: the server's question, as soon as a client has
//!   connected, of which user it is and whether it is an administrator (the
//!   process token of `GetNamedPipeClientProcessId`), for the per-user cap
//!   and the places kept for administrators. Whether it may change the policy
//!   is asked separately, by impersonating it (`pipe.rs`).

use std::io;

use ::windows::Win32::Foundation::{
    CloseHandle, BOOL, ERROR_ACCESS_DENIED, HANDLE, HLOCAL, PSID, WIN32_ERROR,
};
use ::windows::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
use ::windows::Win32::Security::{
    CheckTokenMembership, CreateWellKnownSid, DuplicateToken, IsWellKnownSid,
    SecurityIdentification, WinBuiltinAdministratorsSid, WinLocalSystemSid,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, TOKEN_DUPLICATE, TOKEN_QUERY,
};
use ::windows::Win32::System::Memory::LocalFree;
use ::windows::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};
use ::windows::Win32::System::Threading::{
    OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// `SECURITY_MAX_SID_SIZE` in `u32`s (68 bytes), so the buffer is aligned.
const MAX_SID_WORDS: usize = 17;

/// Closes a handle on drop.
struct Closing(HANDLE);

impl Drop for Closing {
    fn drop(&mut self) {
        // SAFETY: the handle was returned to us by Windows and is closed once, here.
        let _ = unsafe { CloseHandle(self.0) };
    }
}

/// Whether `token` (null: this thread's or process's own; else an
/// impersonation or identification token opened with `TOKEN_QUERY`) is a
/// member of BUILTIN\Administrators.
pub(crate) fn token_is_admin(token: HANDLE) -> bool {
    let mut sid = [0u32; MAX_SID_WORDS];
    let mut size = u32::try_from(std::mem::size_of_val(&sid)).unwrap_or(0);
    let psid = PSID(sid.as_mut_ptr().cast());
    // SAFETY: `psid` points to `size` writable bytes, 4-byte aligned, enough
    // for any SID; no domain SID is needed for a builtin group.
    let built = unsafe {
        CreateWellKnownSid(
            WinBuiltinAdministratorsSid,
            PSID::default(),
            psid,
            &mut size,
        )
    };
    if !built.as_bool() {
        return false;
    }
    let mut member = BOOL(0);
    // SAFETY: `token` is null or a token opened with TOKEN_QUERY (the
    // caller's contract); `psid` is the SID built above (alive: `sid` is in
    // scope); `member` is a valid out-pointer.
    let ok = unsafe { CheckTokenMembership(token, psid, &mut member) };
    ok.as_bool() && member.as_bool()
}

/// Whether this process runs elevated (its token is a member of
/// BUILTIN\Administrators): what the command line's direct path requires
/// for changes, as root is on Unix.
pub(crate) fn current_process_is_admin() -> bool {
    token_is_admin(HANDLE::default())
}

/// Who serves the pipe, as far as this client could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// Its process token is SYSTEM's or an elevated administrator's.
    Admin,
    /// Its token could not be read, but the pipe is owned by SYSTEM or
    /// BUILTIN\Administrators.
    AdminOwnedPipe,
    /// Neither: an impostor (or a daemon started without rights).
    Untrusted,
}

/// Checks who serves the connected client end `pipe` of a named pipe: the
/// server's process id and what it is. `Err`: the question could not even
/// be asked (no server process id).
pub(crate) fn check_server(pipe: HANDLE) -> io::Result<(u32, Server)> {
    let mut pid = 0u32;
    // SAFETY: `pipe` is a connected client end of a named pipe; `pid` is a
    // valid out-pointer.
    if !unsafe { GetNamedPipeServerProcessId(pipe, &mut pid) }.as_bool() {
        return Err(io::Error::last_os_error());
    }
    let server = match server_token_is_admin(pid) {
        Ok(true) => Server::Admin,
        Ok(false) => Server::Untrusted,
        Err(e) if e.raw_os_error() == code(ERROR_ACCESS_DENIED) => {
            if pipe_owner_is_admin(pipe) {
                Server::AdminOwnedPipe
            } else {
                Server::Untrusted
            }
        }
        Err(e) => return Err(e),
    };
    Ok((pid, server))
}

/// The raw error code of a Win32 error, as `io::Error::raw_os_error` has it.
fn code(e: WIN32_ERROR) -> Option<i32> {
    i32::try_from(e.0).ok()
}

/// Whether process `pid`'s token is a member of BUILTIN\Administrators.
fn server_token_is_admin(pid: u32) -> io::Result<bool> {
    process_identity(pid).map(|(_, admin)| admin)
}

/// Who the client of the connected server end `pipe` is: its user's SID
/// (`S-1-5-...`) and whether its token is a member of
/// BUILTIN\Administrators. A client whose process or token cannot be read
/// is `None`: the caller counts all such clients as one unprivileged user.
pub(crate) fn client_identity(pipe: HANDLE) -> Option<(String, bool)> {
    let mut pid = 0u32;
    // SAFETY: `pipe` is a connected server end of a named pipe; `pid` is a
    // valid out-pointer.
    if !unsafe { GetNamedPipeClientProcessId(pipe, &mut pid) }.as_bool() {
        return None;
    }
    process_identity(pid).ok()
}

/// The user SID of process `pid` and whether its token is a member of
/// BUILTIN\Administrators.
fn process_identity(pid: u32) -> io::Result<(String, bool)> {
    // SAFETY: plain call; the result is checked.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, pid) }
        .map_err(|e| io::Error::from_raw_os_error(e.code().0 & 0xFFFF))?;
    let process = Closing(process);
    let mut token = HANDLE::default();
    // SAFETY: `process` is open with PROCESS_QUERY_LIMITED_INFORMATION;
    // `token` is a valid out-pointer.
    if !unsafe { OpenProcessToken(process.0, TOKEN_QUERY | TOKEN_DUPLICATE, &mut token) }.as_bool()
    {
        return Err(io::Error::last_os_error());
    }
    let token = Closing(token);
    let mut ident = HANDLE::default();
    // SAFETY: `token` is a primary token opened with TOKEN_DUPLICATE;
    // `ident` is a valid out-pointer. CheckTokenMembership needs an
    // impersonation-type token; identification level is the least.
    if !unsafe { DuplicateToken(token.0, SecurityIdentification, &mut ident) }.as_bool() {
        return Err(io::Error::last_os_error());
    }
    let ident = Closing(ident);
    let sid = crate::winacl::audit::token_user_sid(token.0)?;
    Ok((sid, token_is_admin(ident.0)))
}

/// Whether the pipe object is owned by SYSTEM or BUILTIN\Administrators.
fn pipe_owner_is_admin(pipe: HANDLE) -> bool {
    let mut owner = PSID::default();
    let mut sd = PSECURITY_DESCRIPTOR::default();
    // SAFETY: `pipe` is open with READ_CONTROL (FILE_GENERIC_READ has it);
    // the out-pointers are valid; `sd` is LocalFree'd below.
    let rc = unsafe {
        GetSecurityInfo(
            pipe,
            SE_KERNEL_OBJECT,
            OWNER_SECURITY_INFORMATION.0,
            Some(&mut owner),
            None,
            None,
            None,
            Some(&mut sd),
        )
    };
    let ok = rc.is_ok()
        && !owner.is_invalid()
        // SAFETY: `owner` points into `sd`, which is still allocated.
        && unsafe {
            IsWellKnownSid(owner, WinLocalSystemSid).as_bool()
                || IsWellKnownSid(owner, WinBuiltinAdministratorsSid).as_bool()
        };
    if !sd.0.is_null() {
        // SAFETY: GetSecurityInfo allocated `sd` with LocalAlloc; freed once.
        let _ = unsafe { LocalFree(HLOCAL(sd.0 as isize)) };
    }
    ok
}
