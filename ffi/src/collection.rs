//! `INetFwV6OpenPortsCollection`, its enumerator `IEnumNetFwV6OpenPorts`
//! and `INetFwV6ConnectionsCollection`: snapshots taken by one request at
//! the call, which never change afterwards (pairs opened later are not in
//! them, pairs closed later still are).

#![allow(non_snake_case, reason = "the names of Netfwv6.h")]

use std::ffi::{c_char, c_long};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use v6fw_api::fw::{Code, FwError};

use crate::call::{call, call_ok, call_quiet, error};
use crate::connection::INetFwV6Connection;
use crate::handle::{self, c_string, get, make_from, object, Counted, Out};
use crate::session::{PortItem, Session};
use crate::types::{HRESULT, PORT_PROTOCOL, S_FALSE, S_OK, USHORT};

/// A snapshot of open port/protocol pairs, sorted by protocol (TCP first)
/// then port. Made by `get_GloballyOpenPorts` or `get_OpenPorts`; freed by
/// `INetFwV6OpenPortsCollection_Release`.
pub struct INetFwV6OpenPortsCollection {
    refs: AtomicU32,
    items: Arc<[PortItem]>,
}

impl Counted for INetFwV6OpenPortsCollection {
    fn refs(&self) -> &AtomicU32 {
        &self.refs
    }
}

impl INetFwV6OpenPortsCollection {
    /// A collection of `items`.
    pub(crate) fn new(items: Vec<PortItem>) -> Self {
        INetFwV6OpenPortsCollection {
            refs: AtomicU32::new(0),
            items: items.into(),
        }
    }

    fn item(&self, index: c_long) -> Result<&PortItem, FwError> {
        let len = self.items.len();
        usize::try_from(index)
            .ok()
            .and_then(|i| self.items.get(i))
            .ok_or_else(|| out_of_range(index, len))
    }
}

/// `E_INVALIDARG` for an index outside `0..len`.
pub(crate) fn out_of_range(index: c_long, len: usize) -> FwError {
    error(
        Code::InvalidArg,
        format!("index {index} is outside the collection: valid indexes are 0 to Count - 1 (Count is {len})"),
    )
}

/// A count as C's `long`.
fn count(len: usize) -> Result<c_long, FwError> {
    c_long::try_from(len).map_err(|_| {
        error(
            Code::Unexpected,
            format!("{len} items do not fit in a long"),
        )
    })
}

/// The number of pairs in the collection.
///
/// # Safety
/// `coll` is NULL or a live collection; `pCount` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6OpenPortsCollection_get_Count(
    coll: *mut INetFwV6OpenPortsCollection,
    pCount: *mut c_long,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe { get(coll, "coll", pCount, "pCount", |c| count(c.items.len())) }
}

/// The pair at `index` (0 to Count - 1, else `E_INVALIDARG`): its port in
/// host order and its protocol. Both out-pointers are required.
///
/// # Safety
/// `coll` is NULL or a live collection; `pPort` and `pProtocol` are NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6OpenPortsCollection_Item(
    coll: *mut INetFwV6OpenPortsCollection,
    index: c_long,
    pPort: *mut USHORT,
    pProtocol: *mut PORT_PROTOCOL,
) -> HRESULT {
    call_ok(|| {
        // SAFETY: by this function's contract.
        let coll = unsafe { object(coll, "coll") }?;
        let (port, protocol) = (Out::new(pPort, "pPort")?, Out::new(pProtocol, "pProtocol")?);
        let item = coll.item(index)?;
        // SAFETY: by this function's contract.
        unsafe {
            port.write(item.port);
            protocol.write(PORT_PROTOCOL::from(item.protocol.number()));
        }
        Ok(())
    })
}

/// The name the pair at `index` was first opened with, as a new string the
/// caller frees with `v6fw_string_free`.
///
/// # Safety
/// `coll` is NULL or a live collection; `ppName` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6OpenPortsCollection_get_ItemName(
    coll: *mut INetFwV6OpenPortsCollection,
    index: c_long,
    ppName: *mut *mut c_char,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        get(coll, "coll", ppName, "ppName", |c| {
            Ok(c_string(&c.item(index)?.name))
        })
    }
}

/// An enumerator over the collection's pairs, from the first.
///
/// # Safety
/// `coll` is NULL or a live collection; `ppEnum` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6OpenPortsCollection_get__NewEnum(
    coll: *mut INetFwV6OpenPortsCollection,
    ppEnum: *mut *mut IEnumNetFwV6OpenPorts,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        make_from(coll, "coll", ppEnum, "ppEnum", |c| {
            Ok(IEnumNetFwV6OpenPorts::new(Arc::clone(&c.items), 0))
        })
    }
}

/// Adds a reference to the collection; returns the new count.
///
/// # Safety
/// `coll` is NULL or a live collection.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6OpenPortsCollection_AddRef(
    coll: *mut INetFwV6OpenPortsCollection,
) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::add_ref(coll) })
}

/// Releases a reference; the collection is freed at 0. Returns the count
/// left. NULL is harmless (0).
///
/// # Safety
/// `coll` is NULL or a live collection, not used again after its last
/// reference is released.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6OpenPortsCollection_Release(
    coll: *mut INetFwV6OpenPortsCollection,
) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::release(coll) })
}

/// An enumerator over a snapshot of pairs (`EnumerateOpenPorts`,
/// `get__NewEnum`); freed by `IEnumNetFwV6OpenPorts_Release`.
pub struct IEnumNetFwV6OpenPorts {
    refs: AtomicU32,
    items: Arc<[PortItem]>,
    next: Mutex<usize>,
}

impl Counted for IEnumNetFwV6OpenPorts {
    fn refs(&self) -> &AtomicU32 {
        &self.refs
    }
}

impl IEnumNetFwV6OpenPorts {
    /// An enumerator over `items`, at `next`.
    pub(crate) fn new(items: Arc<[PortItem]>, next: usize) -> Self {
        IEnumNetFwV6OpenPorts {
            refs: AtomicU32::new(0),
            items,
            next: Mutex::new(next),
        }
    }

    /// Runs `f` on the position (a poisoned lock only means a panic was
    /// caught while it was held; the position is a plain number).
    fn at<T>(&self, f: impl FnOnce(&mut usize, &[PortItem]) -> T) -> T {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut next, &self.items)
    }
}

/// Copies up to `celt` pairs from the current position into `ports` and
/// `protocols` (arrays of at least `celt` elements) and moves on. Returns
/// `S_OK` when `celt` were copied, `S_FALSE` when fewer were left;
/// `*pceltFetched` (which may be NULL only when `celt` is 1) says how many.
///
/// # Safety
/// `e` is NULL or a live enumerator; `ports` and `protocols` are NULL or
/// valid for `celt` writes; `pceltFetched` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn IEnumNetFwV6OpenPorts_Next(
    e: *mut IEnumNetFwV6OpenPorts,
    celt: u32,
    ports: *mut USHORT,
    protocols: *mut PORT_PROTOCOL,
    pceltFetched: *mut u32,
) -> HRESULT {
    call(|| {
        // SAFETY: by this function's contract.
        let e = unsafe { object(e, "e") }?;
        if celt > 0 && (ports.is_null() || protocols.is_null()) {
            return Err(handle::null(if ports.is_null() {
                "ports"
            } else {
                "protocols"
            }));
        }
        if pceltFetched.is_null() && celt != 1 {
            return Err(handle::null("pceltFetched (required unless celt is 1)"));
        }
        let fetched = e.at(|next, items| {
            let left = items.get(*next..).unwrap_or_default();
            let take = left.len().min(usize::try_from(celt).unwrap_or(usize::MAX));
            for (i, item) in left.iter().take(take).enumerate() {
                // SAFETY: `i < take <= celt`, and both arrays hold `celt`
                // elements by this function's contract.
                unsafe {
                    ports.add(i).write(item.port);
                    protocols
                        .add(i)
                        .write(PORT_PROTOCOL::from(item.protocol.number()));
                }
            }
            *next += take;
            take
        });
        let fetched = u32::try_from(fetched).unwrap_or(u32::MAX);
        if !pceltFetched.is_null() {
            // SAFETY: non-null, valid for a write by the contract.
            unsafe { pceltFetched.write(fetched) };
        }
        Ok(if fetched == celt { S_OK } else { S_FALSE })
    })
}

/// Skips `celt` pairs: `S_OK`, or `S_FALSE` if fewer were left.
///
/// # Safety
/// `e` is NULL or a live enumerator.
#[no_mangle]
pub unsafe extern "C" fn IEnumNetFwV6OpenPorts_Skip(
    e: *mut IEnumNetFwV6OpenPorts,
    celt: u32,
) -> HRESULT {
    call(|| {
        // SAFETY: by this function's contract.
        let e = unsafe { object(e, "e") }?;
        let want = usize::try_from(celt).unwrap_or(usize::MAX);
        let skipped = e.at(|next, items| {
            let n = items.len().saturating_sub(*next).min(want);
            *next += n;
            n
        });
        Ok(if skipped == want { S_OK } else { S_FALSE })
    })
}

/// Goes back to the first pair.
///
/// # Safety
/// `e` is NULL or a live enumerator.
#[no_mangle]
pub unsafe extern "C" fn IEnumNetFwV6OpenPorts_Reset(e: *mut IEnumNetFwV6OpenPorts) -> HRESULT {
    call_ok(|| {
        // SAFETY: by this function's contract.
        let e = unsafe { object(e, "e") }?;
        e.at(|next, _| *next = 0);
        Ok(())
    })
}

/// A new enumerator over the same pairs, at the same position.
///
/// # Safety
/// `e` is NULL or a live enumerator; `ppEnum` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn IEnumNetFwV6OpenPorts_Clone(
    e: *mut IEnumNetFwV6OpenPorts,
    ppEnum: *mut *mut IEnumNetFwV6OpenPorts,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        make_from(e, "e", ppEnum, "ppEnum", |e| {
            let at = e.at(|next, _| *next);
            Ok(IEnumNetFwV6OpenPorts::new(Arc::clone(&e.items), at))
        })
    }
}

/// Adds a reference to the enumerator; returns the new count.
///
/// # Safety
/// `e` is NULL or a live enumerator.
#[no_mangle]
pub unsafe extern "C" fn IEnumNetFwV6OpenPorts_AddRef(e: *mut IEnumNetFwV6OpenPorts) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::add_ref(e) })
}

/// Releases a reference; the enumerator is freed at 0. NULL is harmless.
///
/// # Safety
/// `e` is NULL or a live enumerator, not used after its last release.
#[no_mangle]
pub unsafe extern "C" fn IEnumNetFwV6OpenPorts_Release(e: *mut IEnumNetFwV6OpenPorts) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::release(e) })
}

/// A snapshot of the daemon's connections (`get_Connections`), sorted by
/// id; freed by `INetFwV6ConnectionsCollection_Release`.
pub struct INetFwV6ConnectionsCollection {
    refs: AtomicU32,
    session: Arc<Session>,
    ids: Vec<String>,
}

impl Counted for INetFwV6ConnectionsCollection {
    fn refs(&self) -> &AtomicU32 {
        &self.refs
    }
}

impl INetFwV6ConnectionsCollection {
    /// The connections `ids` of `session`.
    pub(crate) fn new(session: Arc<Session>, ids: Vec<String>) -> Self {
        INetFwV6ConnectionsCollection {
            refs: AtomicU32::new(0),
            session,
            ids,
        }
    }
}

/// The number of connections in the collection.
///
/// # Safety
/// `coll` is NULL or a live collection; `pCount` is NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6ConnectionsCollection_get_Count(
    coll: *mut INetFwV6ConnectionsCollection,
    pCount: *mut c_long,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe { get(coll, "coll", pCount, "pCount", |c| count(c.ids.len())) }
}

/// The connection at `index` (0 to Count - 1, else `E_INVALIDARG`, and
/// NULL is written), as a new handle the caller releases.
///
/// # Safety
/// `coll` is NULL or a live collection; `ppConnection` is NULL or valid for
/// a write.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6ConnectionsCollection_Item(
    coll: *mut INetFwV6ConnectionsCollection,
    index: c_long,
    ppConnection: *mut *mut INetFwV6Connection,
) -> HRESULT {
    // SAFETY: by this function's contract.
    unsafe {
        make_from(coll, "coll", ppConnection, "ppConnection", |c| {
            let id = usize::try_from(index)
                .ok()
                .and_then(|i| c.ids.get(i))
                .ok_or_else(|| out_of_range(index, c.ids.len()))?;
            Ok(INetFwV6Connection::new(Arc::clone(&c.session), id.clone()))
        })
    }
}

/// Adds a reference to the collection; returns the new count.
///
/// # Safety
/// `coll` is NULL or a live collection.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6ConnectionsCollection_AddRef(
    coll: *mut INetFwV6ConnectionsCollection,
) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::add_ref(coll) })
}

/// Releases a reference; the collection is freed at 0 (the connection
/// handles taken from it stay valid). NULL is harmless.
///
/// # Safety
/// `coll` is NULL or a live collection, not used after its last release.
#[no_mangle]
pub unsafe extern "C" fn INetFwV6ConnectionsCollection_Release(
    coll: *mut INetFwV6ConnectionsCollection,
) -> u32 {
    // SAFETY: by this function's contract.
    call_quiet(0, || unsafe { handle::release(coll) })
}
