//! The control channel on Windows: a named pipe (default
//! `\\.\pipe\v6fw-control`) speaking the same line protocol as the Unix
//! socket, through the shared per-client loop of [`super::server::session`].
//!
//! - Who may connect: the pipe's DACL lets Everyone read and write data
//!   (but not create pipe instances, so nobody else can serve on the name),
//!   denies network logons, and gives Administrators, SYSTEM and the daemon's
//!   own account full control. Every instance is created with
//!   `PIPE_REJECT_REMOTE_CLIENTS`; the first one with
//!   `FILE_FLAG_FIRST_PIPE_INSTANCE`, so the daemon never joins a pipe of
//!   that name that already exists (a live daemon, or a program squatting
//!   the name). It then logs an error and tries again every 2 s; filtering
//!   never waits for the pipe.
//! - How many: as on Unix, [`MAX_CLIENTS`] in all, at most
//!   [`MAX_CLIENTS_PER_USER`] per user and [`ROOT_SLOTS`] kept for
//!   administrators (`super::admission`). Who a client is comes from its
//!   process token as soon as it connects (`pipe_peer::client_identity`);
//!   an administrator who finds every place taken gets the place of the
//!   oldest non-administrator's connection, which is closed.
//! - Who may change the policy: after the first request line has been read
//!   (a pipe can only impersonate its client once data came from it), the
//!   client thread impersonates the client (`ImpersonateNamedPipeClient`),
//!   opens its token (`OpenThreadToken`), reverts (`RevertToSelf`) and asks
//!   `CheckTokenMembership` whether the token is a member of
//!   BUILTIN\Administrators (`CreateWellKnownSid(WinBuiltinAdministratorsSid)`).
//!   A non-elevated administrator's token has that group deny-only, so only
//!   an elevated (or SYSTEM) client passes. Everyone else may read only
//!   (`E_ACCESSDENIED` for changes, as on Linux). If reverting fails, the
//!   connection is closed and its thread ends.
//! - Timeouts and shutdown: every handle is overlapped; a read, a write and
//!   the wait for a client wait on an event with a timeout, and cancel
//!   (`CancelIoEx`) and wait for the cancellation before returning, so no
//!   buffer is in use once a call returns. The accept loop looks at the
//!   shutdown flag every [`ACCEPT_POLL`].
//! - The client opens the pipe with `CreateFileW` asking only for
//!   `SecurityIdentification` (the server can check who it is, not act as
//!   it); no pipe of that name (`ERROR_FILE_NOT_FOUND`) means no daemon.
//!   Before it sends anything, it checks that the server runs as SYSTEM or
//!   an elevated Administrator ([`super::pipe_peer::check_server`]), and
//!   refuses an impostor that took the name first.

use std::io::{self, ErrorKind, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::windows::core::PCWSTR;
use ::windows::Win32::Foundation::{
    BOOL, ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, ERROR_FILE_NOT_FOUND, ERROR_IO_PENDING,
    ERROR_NO_DATA, ERROR_OPERATION_ABORTED, ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED,
    ERROR_PIPE_NOT_CONNECTED, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT, WIN32_ERROR,
};
use ::windows::Win32::Security::{RevertToSelf, TOKEN_QUERY};
use ::windows::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED,
    FILE_GENERIC_READ, FILE_SHARE_MODE, FILE_WRITE_DATA, OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
    SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
};
use ::windows::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, ImpersonateNamedPipeClient, WaitNamedPipeW,
    PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES,
    PIPE_WAIT,
};
use ::windows::Win32::System::Threading::{
    CreateEventW, GetCurrentThread, OpenThreadToken, WaitForSingleObject, INFINITE,
};
use ::windows::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use parking_lot::Mutex;

use super::admission::{Admission, Limits};
use super::pipe_peer::{check_server, client_identity, token_is_admin, Server};
use super::protocol::MAX_REQUEST_BYTES;
use super::server::session::{serve_admitted, Conn};
use super::server::{ACCEPT_POLL, MAX_CLIENTS, MAX_CLIENTS_PER_USER, REQUEST_TIMEOUT, ROOT_SLOTS};
use crate::fw::{FirewallManager, FwError};
use crate::winacl::SecurityDescriptor;

/// What a pipe name without a leading `\\` is put under.
const PIPE_PREFIX: &str = r"\\.\pipe\";

/// The pipe's security descriptor: deny network logons; Everyone may read
/// and write data (`FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES`
/// = 0x12018B, deliberately without `FILE_CREATE_PIPE_INSTANCE`, which `GW`
/// would include); Administrators, SYSTEM and the owner (the daemon's
/// account) have full control.
const PIPE_SDDL: &str = "D:(D;;GA;;;NU)(A;;0x12018B;;;WD)(A;;GA;;;BA)(A;;GA;;;SY)(A;;GA;;;OW)";

/// How long a client waits for a free pipe instance in all.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The raw error code of a Win32 error, as `io::Error::raw_os_error` has it.
fn code(e: WIN32_ERROR) -> Option<i32> {
    i32::try_from(e.0).ok()
}

/// Whether `e` is the Win32 error `w`.
fn is(e: &io::Error, w: WIN32_ERROR) -> bool {
    e.raw_os_error().is_some() && e.raw_os_error() == code(w)
}

/// A `windows` crate error as an `io::Error` carrying the Win32 code.
fn io_error(e: &::windows::core::Error) -> io::Error {
    // HRESULT_FROM_WIN32: 0x8007xxxx carries the Win32 code in its low word.
    let hr = e.code().0 as u32;
    if hr & 0xFFFF_0000 == 0x8007_0000 {
        io::Error::from_raw_os_error(i32::try_from(hr & 0xFFFF).unwrap_or(i32::MAX))
    } else {
        io::Error::other(e.message().to_string_lossy())
    }
}

/// Milliseconds for a wait, at least 1 and never `INFINITE`.
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis())
        .unwrap_or(INFINITE - 1)
        .clamp(1, INFINITE - 1)
}

/// The pipe name `socket` stands for, NUL-terminated: itself if it starts
/// with `\\`, else under `\\.\pipe\`.
fn pipe_name(socket: &Path) -> io::Result<Vec<u16>> {
    let raw = socket.as_os_str();
    let mut name: Vec<u16> = if raw.to_string_lossy().starts_with(r"\\") {
        raw.encode_wide().collect()
    } else {
        PIPE_PREFIX
            .encode_utf16()
            .chain(raw.encode_wide())
            .collect()
    };
    if name.contains(&0) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a pipe name cannot contain NUL",
        ));
    }
    name.push(0);
    Ok(name)
}

/// The pipe name for messages.
fn shown(name: &[u16]) -> String {
    String::from_utf16_lossy(name.strip_suffix(&[0]).unwrap_or(name))
}

/// The raw handle of an owned one, as the `windows` crate types it.
fn raw(h: &OwnedHandle) -> HANDLE {
    HANDLE(h.as_raw_handle() as isize)
}

/// Takes ownership of a handle a Windows call just returned.
///
/// # Safety
///
/// `h` is a valid handle that nothing else owns or closes.
unsafe fn own(h: HANDLE) -> OwnedHandle {
    // SAFETY: the caller's contract.
    unsafe { OwnedHandle::from_raw_handle(h.0 as RawHandle) }
}

/// One end of a pipe, opened for overlapped I/O, with the event its
/// operations signal and the timeout of `Read`/`Write`.
#[derive(Debug)]
pub(crate) struct Pipe {
    handle: OwnedHandle,
    event: OwnedHandle,
    timeout: Duration,
}

impl Pipe {
    fn new(handle: OwnedHandle, timeout: Duration) -> io::Result<Self> {
        // SAFETY: no security attributes and no name: a private, unnamed,
        // manual-reset event, initially not signalled. The result is checked.
        let event =
            unsafe { CreateEventW(None, true, false, PCWSTR::null()) }.map_err(|e| io_error(&e))?;
        Ok(Self {
            handle,
            // SAFETY: CreateEventW succeeded: a fresh handle nothing else owns.
            event: unsafe { own(event) },
            timeout,
        })
    }

    /// Starts an overlapped operation with `start` and waits for it, `wait`
    /// at a time, for as long as `again` says so. `Ok(None)`: it was
    /// cancelled because the waiting ended. When this returns, the
    /// operation is over (completed or cancelled), so whatever buffer
    /// `start` handed to Windows is no longer in use.
    fn run(
        &self,
        start: impl FnOnce(HANDLE, *mut OVERLAPPED) -> BOOL,
        wait: Duration,
        mut again: impl FnMut() -> bool,
    ) -> io::Result<Option<u32>> {
        let handle = raw(&self.handle);
        let event = raw(&self.event);
        let mut ov = OVERLAPPED {
            hEvent: event,
            ..Default::default()
        };
        let ovp: *mut OVERLAPPED = &mut ov;
        if !start(handle, ovp).as_bool() {
            let err = io::Error::last_os_error();
            if !is(&err, ERROR_IO_PENDING) {
                return Err(err);
            }
            let ms = millis(wait);
            loop {
                // SAFETY: `event` is our event handle, alive while `self` is.
                let w = unsafe { WaitForSingleObject(event, ms) };
                if w == WAIT_OBJECT_0 {
                    break;
                }
                let wait_error = (w != WAIT_TIMEOUT).then(io::Error::last_os_error);
                if wait_error.is_none() && again() {
                    continue;
                }
                // SAFETY: `ovp` is the OVERLAPPED of the operation started on
                // `handle` above; cancelling a finished operation is harmless.
                let _ = unsafe { CancelIoEx(handle, Some(ovp.cast_const())) };
                let mut n = 0u32;
                // SAFETY: bWait = TRUE returns once the operation has
                // completed or been cancelled; `ov` is still alive.
                let done = unsafe { GetOverlappedResult(handle, ovp.cast_const(), &mut n, true) };
                if done.as_bool() {
                    return Ok(Some(n)); // it completed before the cancel took
                }
                let err = io::Error::last_os_error();
                return match wait_error {
                    Some(e) => Err(e),
                    None if is(&err, ERROR_OPERATION_ABORTED) => Ok(None),
                    None => Err(err),
                };
            }
        }
        let mut n = 0u32;
        // SAFETY: the operation has completed (synchronously, or its event
        // is signalled); `ov` is its OVERLAPPED and still alive.
        let done = unsafe { GetOverlappedResult(handle, ovp.cast_const(), &mut n, false) };
        if done.as_bool() {
            Ok(Some(n))
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Reads what is there, waiting at most `timeout`. `Ok(0)` once the
    /// other end has closed; a `TimedOut` error if nothing came.
    fn read_for(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let ptr = buf.as_mut_ptr();
        let started = self.run(
            // SAFETY: `ptr` points to `len` writable bytes of `buf`, which
            // outlives the operation (`run` waits for it to end);
            // `ov` is valid until then too.
            |h, ov| unsafe { ReadFile(h, Some(ptr.cast()), len, None, Some(ov)) },
            timeout,
            || false,
        );
        match started {
            Ok(Some(n)) => Ok(usize::try_from(n).unwrap_or(0)),
            Ok(None) => Err(io::Error::new(ErrorKind::TimedOut, "nothing came in time")),
            Err(e) if is(&e, ERROR_BROKEN_PIPE) || is(&e, ERROR_PIPE_NOT_CONNECTED) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Writes some of `buf`, giving up after `timeout` (`TimedOut`).
    fn write_for(&self, buf: &[u8], timeout: Duration) -> io::Result<usize> {
        let chunk = buf.get(..buf.len().min(1 << 20)).unwrap_or(buf);
        if chunk.is_empty() {
            return Ok(0);
        }
        let started = self.run(
            // SAFETY: `chunk` (at most 1 MiB, so its length fits the u32 the
            // binding passes) outlives the operation (`run` waits for it to
            // end); `ov` is valid until then too.
            |h, ov| unsafe { WriteFile(h, Some(chunk), None, Some(ov)) },
            timeout,
            || false,
        );
        match started {
            Ok(Some(0)) => Err(io::Error::new(
                ErrorKind::WriteZero,
                "the pipe took nothing",
            )),
            Ok(Some(n)) => Ok(usize::try_from(n).unwrap_or(0)),
            Ok(None) => Err(io::Error::new(
                ErrorKind::TimedOut,
                "the other end did not read in time",
            )),
            Err(e) => Err(e),
        }
    }

    /// Waits for a client on this (server) instance. `Ok(false)`: shutdown
    /// was asked for meanwhile.
    fn wait_for_client(&self, shutdown: &AtomicBool) -> io::Result<bool> {
        let connected = self.run(
            // SAFETY: `h` is a server pipe instance opened for overlapped
            // I/O; `ov` stays valid until `run` has seen the end of the wait.
            |h, ov| unsafe { ConnectNamedPipe(h, Some(ov)) },
            ACCEPT_POLL,
            || !shutdown.load(Ordering::Acquire),
        );
        match connected {
            Ok(Some(_)) => Ok(true),
            Ok(None) => Ok(false),
            // A client came between CreateNamedPipeW and ConnectNamedPipe.
            Err(e) if is(&e, ERROR_PIPE_CONNECTED) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Whether the client of this (server) instance may change the policy:
    /// its token is a member of BUILTIN\Administrators. `Err` only if this
    /// thread could not stop impersonating: the caller must then end it.
    fn client_is_admin(&self) -> io::Result<bool> {
        // SAFETY: our handle is the server end of a connected instance.
        if !unsafe { ImpersonateNamedPipeClient(raw(&self.handle)) }.as_bool() {
            // Not impersonating (e.g. an anonymous client): not an admin.
            return Ok(false);
        }
        let mut token = HANDLE::default();
        // SAFETY: GetCurrentThread is a pseudo-handle that needs no closing;
        // `token` is a valid out-pointer. OpenAsSelf: the access check uses
        // the daemon's own context, which works for identification-level
        // clients too.
        let opened =
            unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, true, &mut token) }.as_bool();
        // SAFETY: OpenThreadToken succeeded, so `token` is ours to close.
        let token = (opened && !token.is_invalid()).then(|| unsafe { own(token) });
        // SAFETY: this thread is impersonating (above); this ends it.
        if !unsafe { RevertToSelf() }.as_bool() {
            return Err(io::Error::last_os_error());
        }
        Ok(token.is_some_and(|t| token_is_admin(raw(&t))))
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_for(buf, self.timeout)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_for(buf, self.timeout)
    }

    /// Nothing is buffered on this side. (`FlushFileBuffers` would wait
    /// until the other end has read everything, without a timeout.)
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Conn for Pipe {
    fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.read_for(buf, timeout)
    }

    fn peer_caller(&mut self) -> io::Result<super::protocol::Caller> {
        self.client_is_admin().map(super::protocol::Caller::root_if)
    }
}

/// Returns the client end `pipe` of the pipe `name` if its server runs as
/// SYSTEM or an elevated Administrator ([`check_server`]); else an error
/// that says so, before anything was sent.
fn trusted(pipe: OwnedHandle, name: &[u16]) -> io::Result<OwnedHandle> {
    match check_server(raw(&pipe))? {
        (_, Server::Admin | Server::AdminOwnedPipe) => Ok(pipe),
        (pid, Server::Untrusted) => Err(io::Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the pipe {} is served by process {pid}, which runs neither as SYSTEM nor as an \
                 elevated Administrator, so it is not the v6fw daemon (another program took the \
                 pipe's name?): nothing was sent to it. Stop that process and restart the v6fw \
                 daemon, or pass the daemon's --socket",
                shown(name)
            ),
        )),
    }
}

/// Opens the daemon's pipe `socket` as a client, and checks who serves it
/// ([`trusted`]); `timeout` bounds each read and write. `Ok(None)`: no such
/// pipe, so no daemon.
pub(crate) fn connect(socket: &Path, timeout: Duration) -> io::Result<Option<Pipe>> {
    let name = pipe_name(socket)?;
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        // SAFETY: `name` is NUL-terminated and outlives the call; no
        // security attributes or template. The result is checked.
        let opened = unsafe {
            CreateFileW(
                PCWSTR(name.as_ptr()),
                (FILE_GENERIC_READ | FILE_WRITE_DATA).0,
                FILE_SHARE_MODE(0),
                None,
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                HANDLE::default(),
            )
        };
        let err = match opened {
            Ok(h) => {
                // SAFETY: CreateFileW succeeded: a fresh handle nothing else owns.
                let pipe = unsafe { own(h) };
                return trusted(pipe, &name).and_then(|h| Pipe::new(h, timeout).map(Some));
            }
            Err(e) => io_error(&e),
        };
        if is(&err, ERROR_FILE_NOT_FOUND) {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !is(&err, ERROR_PIPE_BUSY) || left.is_zero() {
            return Err(err);
        }
        // Every instance is taken: wait for one (the result does not matter,
        // the next CreateFileW tells).
        // SAFETY: `name` is NUL-terminated and outlives the call.
        let _ = unsafe { WaitNamedPipeW(PCWSTR(name.as_ptr()), millis(left)) };
    }
}

/// Creates a server instance of the pipe `name` (NUL-terminated).
fn create_instance(name: &[u16], sd: &SecurityDescriptor, first: bool) -> io::Result<Pipe> {
    let open_mode = if first {
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE
    } else {
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED
    };
    let buffer = u32::try_from(MAX_REQUEST_BYTES).unwrap_or(u32::MAX);
    let sa = sd.attributes();
    // SAFETY: `name` is NUL-terminated; `sa` and the descriptor it points to
    // are alive during the call (the pipe keeps its own copy). The result
    // is checked.
    let h = unsafe {
        CreateNamedPipeW(
            PCWSTR(name.as_ptr()),
            open_mode,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            PIPE_UNLIMITED_INSTANCES,
            buffer,
            buffer,
            0,
            Some(&sa),
        )
    };
    if h.is_invalid() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CreateNamedPipeW succeeded: a fresh handle nothing else owns.
    Pipe::new(unsafe { own(h) }, REQUEST_TIMEOUT)
}

/// How often a daemon that could not create its pipe tries again.
const CLAIM_RETRY: Duration = Duration::from_secs(2);

/// How often a daemon still without its pipe says so again.
const CLAIM_NAG: Duration = Duration::from_secs(60);

/// The caps on the pipe's clients: those of the Unix socket, with the
/// places kept for administrators (elevated, or SYSTEM).
const LIMITS: Limits = Limits {
    total: MAX_CLIENTS,
    per_user: MAX_CLIENTS_PER_USER,
    admin_places: ROOT_SLOTS,
};

/// The clients being served, each with the flag that closes it.
type Places = Arc<Mutex<Admission<String, Arc<AtomicBool>>>>;

/// A place taken by a client thread; given back when the thread ends.
struct Place {
    places: Places,
    id: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.places.lock().release(self.id);
    }
}

/// Why the first instance of `name` could not be created, and what to do.
fn not_created(name: &[u16], e: &io::Error) -> String {
    if is(e, ERROR_ACCESS_DENIED) || is(e, ERROR_PIPE_BUSY) {
        format!(
            "the control pipe {} exists already: another v6fw daemon, or another program, serves \
             it; filtering goes on without it and v6fw tries again every {} s (stop that process, \
             or choose another --socket)",
            shown(name),
            CLAIM_RETRY.as_secs()
        )
    } else {
        format!(
            "cannot create the control pipe {}: {e}; filtering goes on without it and v6fw tries \
             again every {} s",
            shown(name),
            CLAIM_RETRY.as_secs()
        )
    }
}

/// Creates the pipe `socket` names and serves `manager` on it from a new
/// thread until `shutdown` is set. If the pipe cannot be created (its name
/// is taken: a program that created it first), that is logged and the
/// thread tries again every [`CLAIM_RETRY`]: the daemon filters whatever
/// happens to its pipe. Only a name that is no pipe name, or a thread that
/// cannot start, is an error.
pub(super) fn serve(
    manager: Arc<FirewallManager>,
    socket: &Path,
    shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, FwError> {
    let name = pipe_name(socket).map_err(|e| {
        FwError::InvalidArg(format!(
            "{} is not a pipe name ({e}): pass --socket \\\\.\\pipe\\NAME",
            socket.display()
        ))
        .because(e)
    })?;
    let sd = SecurityDescriptor::from_sddl(PIPE_SDDL).map_err(|e| {
        FwError::Fail(format!(
            "cannot build the security descriptor of the control pipe: {e}"
        ))
        .because(e)
    })?;
    let first = create_instance(&name, &sd, true)
        .inspect_err(|e| tracing::error!("{}", not_created(&name, e)))
        .ok();
    std::thread::Builder::new()
        .name("v6fw-control".into())
        .spawn(move || {
            let first = first.or_else(|| claim(&name, &sd, &shutdown));
            if let Some(first) = first {
                accept_loop(first, &name, &sd, &manager, &shutdown);
            }
        })
        .map_err(|e| {
            FwError::OutOfMemory(format!("cannot start the control thread: {e}")).because(e)
        })
}

/// Tries to create the first instance of `name` every [`CLAIM_RETRY`]
/// until it works (`Some`) or shutdown is asked for (`None`), saying so
/// again every [`CLAIM_NAG`].
fn claim(name: &[u16], sd: &SecurityDescriptor, shutdown: &AtomicBool) -> Option<Pipe> {
    let mut nagged = Instant::now();
    loop {
        let next = Instant::now() + CLAIM_RETRY;
        while Instant::now() < next {
            if shutdown.load(Ordering::Acquire) {
                return None;
            }
            std::thread::sleep(ACCEPT_POLL);
        }
        match create_instance(name, sd, true) {
            Ok(p) => {
                tracing::warn!("the control pipe {} is served now", shown(name));
                return Some(p);
            }
            Err(e) if nagged.elapsed() >= CLAIM_NAG => {
                nagged = Instant::now();
                tracing::error!("{}", not_created(name, &e));
            }
            Err(_) => {}
        }
    }
}

/// Gives the client on `pipe` a place ([`Admission`]: who it is, from its
/// process token), closing the oldest non-administrator's connection when
/// an administrator finds every place taken, and serves it, or tells it
/// why not.
fn admit_client(pipe: Pipe, places: &Places, manager: &Arc<FirewallManager>) {
    let (who, admin) = match client_identity(raw(&pipe.handle)) {
        Some((sid, admin)) => (format!("the user {sid}"), admin),
        // All unidentified clients share one user's cap.
        None => ("an unidentified user".to_string(), false),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let admitted = places.lock().admit(who, admin, Arc::clone(&stop));
    let slot = admitted.map(|a| {
        if let Some(evicted) = a.evicted {
            evicted.store(true, Ordering::Release);
            tracing::info!(
                "control pipe: every place taken; closing the oldest non-administrator's \
                 connection for an administrator"
            );
        }
        Place {
            places: Arc::clone(places),
            id: a.id,
        }
    });
    serve_admitted(pipe, slot, manager, &stop);
}

/// Waits for clients and hands each to [`admit_client`]. A new instance is
/// created before a connected one is handed off or dropped, so the pipe's
/// name never disappears while the daemon runs (nobody else can take it
/// over). At shutdown every client still served is told to stop.
fn accept_loop(
    first: Pipe,
    name: &[u16],
    sd: &SecurityDescriptor,
    manager: &Arc<FirewallManager>,
    shutdown: &Arc<AtomicBool>,
) {
    let places: Places = Arc::new(Mutex::new(Admission::new(LIMITS)));
    let next = |what: &str| match create_instance(name, sd, false) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(
                "cannot create a new instance of the control pipe {} {what}: {e}",
                shown(name)
            );
            None
        }
    };
    let mut listening = Some(first);
    while !shutdown.load(Ordering::Acquire) {
        let Some(pipe) = listening.take().or_else(|| next("to wait on")) else {
            std::thread::sleep(ACCEPT_POLL);
            continue;
        };
        match pipe.wait_for_client(shutdown) {
            Ok(true) => {
                listening = next("for the next client");
                admit_client(pipe, &places, manager);
            }
            Ok(false) => break,
            Err(e) => {
                // ERROR_NO_DATA: the client came and went before we saw it.
                if !is(&e, ERROR_NO_DATA) {
                    tracing::warn!("control pipe: waiting for a client failed: {e}");
                }
                listening = next("after a failed wait");
                drop(pipe);
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    for stop in places.lock().drain() {
        stop.store(true, Ordering::Release);
    }
}
