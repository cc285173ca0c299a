//! libv6fw: Netfwv6.h as a C API, over a running v6fw daemon.
//!
//! A C (C++, Python ctypes, Go cgo, ...) program links `libv6fw.so`
//! (`libv6fw.a`, Windows `v6fw.dll`), includes `include/v6fw.h` (generated
//! from this crate by cbindgen) and calls the daemon the way programs called
//! `INetFwV6Mgr` and `INetFwV6Connection`: every function returns an
//! HRESULT of winerror.h's values, handles are opaque and reference counted
//! (`AddRef`, `Release`), collections are snapshots taken at the call.
//! docs/c-api.md says how to build, link and use it.
//!
//! - [`types`]: HRESULT, VARIANT_BOOL, USHORT, PORT_PROTOCOL and the macros.
//! - [`call`]: the boundary (error to HRESULT, the thread's last error
//!   message, panics caught).
//! - [`handle`]: reference counts, NULL checks, strings in and out.
//! - `session`: one request to the daemon through the API crate's
//!   control-socket client (the daemon decides who may change).
//! - [`mgr`], [`connection`], [`collection`], [`logging`]: the functions.
//! - `windows` (Windows only): the `W` variants taking UTF-16 strings.
//!
//! Every function checks its pointers: a NULL handle or out-pointer is
//! `E_POINTER` and nothing is written; a function that makes a handle
//! writes NULL to its out-pointer when it fails.

pub mod call;
pub mod collection;
pub mod connection;
pub mod handle;
pub mod logging;
pub mod mgr;
mod session;
pub mod types;
#[cfg(windows)]
pub mod windows;

#[cfg(test)]
mod tests;
