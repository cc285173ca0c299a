//! Handles as C sees them: a pointer to a heap object with a COM-style
//! reference count. The object is made with a count of 1, `AddRef` adds one,
//! `Release` takes one and frees the object at 0; a NULL handle is harmless
//! to both (0 is returned). And the argument checks every function makes:
//! a NULL handle or out-pointer is `E_POINTER`, and nothing is written.

use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{fence, AtomicU32, Ordering};

use v6fw_api::fw::{Code, FwError};

use crate::call::{call_ok, error};
use crate::types::HRESULT;

/// An object behind a handle: it holds its own reference count.
pub(crate) trait Counted: Sized {
    /// The count of references C holds.
    fn refs(&self) -> &AtomicU32;
}

/// A new handle for `object`, its count 1; the caller's `Release` frees it.
pub(crate) fn into_handle<T: Counted>(object: T) -> *mut T {
    object.refs().store(1, Ordering::Relaxed);
    Box::into_raw(Box::new(object))
}

/// Adds a reference; returns the new count (0 for NULL).
///
/// # Safety
/// `handle` is NULL or a live handle made by [`into_handle`].
pub(crate) unsafe fn add_ref<T: Counted>(handle: *mut T) -> u32 {
    // SAFETY: by the contract, a non-null handle points at a live object.
    let Some(object) = (unsafe { handle.as_ref() }) else {
        return 0;
    };
    object
        .refs()
        .fetch_add(1, Ordering::Relaxed)
        .saturating_add(1)
}

/// Takes a reference; frees the object when it was the last. Returns the
/// count left (0 for NULL, or when the object was freed).
///
/// # Safety
/// `handle` is NULL or a live handle made by [`into_handle`], and the
/// caller holds the reference it gives back (it must not use the handle
/// afterwards unless it holds another one).
pub(crate) unsafe fn release<T: Counted>(handle: *mut T) -> u32 {
    // SAFETY: by the contract, a non-null handle points at a live object.
    let Some(object) = (unsafe { handle.as_ref() }) else {
        return 0;
    };
    let before = object.refs().fetch_sub(1, Ordering::Release);
    if before != 1 {
        return before.saturating_sub(1);
    }
    // Every other reference's last use happens before this free (the
    // Release decrements above, this Acquire), as in `Arc`'s drop.
    fence(Ordering::Acquire);
    // SAFETY: the count reached 0, so this was the last reference; the
    // pointer came from `Box::into_raw` in `into_handle`.
    drop(unsafe { Box::from_raw(handle) });
    0
}

/// The object behind a handle; NULL is `E_POINTER`.
///
/// # Safety
/// `handle` is NULL or a live handle made by [`into_handle`], alive for `'a`.
pub(crate) unsafe fn object<'a, T>(handle: *mut T, what: &str) -> Result<&'a T, FwError> {
    // SAFETY: by the contract, a non-null handle points at a live object.
    unsafe { handle.cast_const().as_ref() }.ok_or_else(|| null(what))
}

/// The `E_POINTER` error for the NULL argument `what`.
pub(crate) fn null(what: &str) -> FwError {
    error(
        Code::Pointer,
        format!("{what} is NULL: pass a valid pointer"),
    )
}

/// An out-pointer checked to be non-null, written only on success.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// `ptr` if it is not NULL; NULL is `E_POINTER` (naming `what`).
    pub(crate) fn new(ptr: *mut T, what: &str) -> Result<Self, FwError> {
        if ptr.is_null() {
            Err(null(what))
        } else {
            Ok(Out(ptr))
        }
    }

    /// Writes `value`.
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] is valid for a write of `T` (and
    /// suitably aligned), as its function's documentation requires.
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-null (checked in `new`) and valid by the contract.
        unsafe { self.0.write(value) }
    }
}

/// Runs `make` to fill the handle out-pointer `out`: the new handle on
/// success, NULL on failure (COM's rule: a failed call leaves no dangling
/// value behind). A NULL `out` is `E_POINTER` before `make` runs.
///
/// # Safety
/// `out` is NULL or valid for a write of a pointer.
pub(crate) unsafe fn fill_handle<T: Counted>(
    out: *mut *mut T,
    what: &str,
    make: impl FnOnce() -> Result<T, FwError>,
) -> Result<(), FwError> {
    let out = Out::new(out, what)?;
    match make() {
        Ok(object) => {
            // SAFETY: `out` is valid for a write by this function's contract.
            unsafe { out.write(into_handle(object)) };
            Ok(())
        }
        Err(e) => {
            // SAFETY: as above.
            unsafe { out.write(std::ptr::null_mut()) };
            Err(e)
        }
    }
}

/// The body of a function that makes a handle from another one: `make` on
/// the object behind `handle` fills `out` (see [`fill_handle`]); a NULL
/// `handle` is `E_POINTER`, and NULL is written.
///
/// # Safety
/// `handle` is NULL or a live handle; `out` is NULL or valid for a write.
pub(crate) unsafe fn make_from<S, T: Counted>(
    handle: *mut S,
    handle_name: &str,
    out: *mut *mut T,
    out_name: &str,
    make: impl FnOnce(&S) -> Result<T, FwError>,
) -> HRESULT {
    call_ok(|| {
        // SAFETY: by the caller's contract.
        let object = unsafe { object(handle, handle_name) };
        // SAFETY: by the caller's contract.
        unsafe { fill_handle(out, out_name, || make(object?)) }
    })
}

/// The body of a property getter: checks `handle` and `out` (NULL:
/// `E_POINTER`), then writes what `read` returns; on a failure nothing is
/// written.
///
/// # Safety
/// `handle` is NULL or a live handle; `out` is NULL or valid for a write.
pub(crate) unsafe fn get<S, V>(
    handle: *mut S,
    handle_name: &str,
    out: *mut V,
    out_name: &str,
    read: impl FnOnce(&S) -> Result<V, FwError>,
) -> HRESULT {
    call_ok(|| {
        // SAFETY: by the caller's contract.
        let object = unsafe { object(handle, handle_name) }?;
        let out = Out::new(out, out_name)?;
        let value = read(object)?;
        // SAFETY: by the caller's contract.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// The body of a method that returns only an HRESULT: `f` on the object
/// behind `handle` (NULL: `E_POINTER`).
///
/// # Safety
/// `handle` is NULL or a live handle.
pub(crate) unsafe fn with<S>(
    handle: *mut S,
    handle_name: &str,
    f: impl FnOnce(&S) -> Result<(), FwError>,
) -> HRESULT {
    // SAFETY: by the caller's contract.
    call_ok(|| f(unsafe { object(handle, handle_name) }?))
}

/// A required UTF-8 string argument; NULL is `E_POINTER`, bytes that are
/// not UTF-8 `E_INVALIDARG`.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn str_arg<'a>(s: *const c_char, what: &str) -> Result<&'a str, FwError> {
    if s.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-null and NUL-terminated by the contract.
    let bytes = unsafe { CStr::from_ptr(s) };
    bytes.to_str().map_err(|e| {
        error(
            Code::InvalidArg,
            format!("{what} is not UTF-8 ({e}): pass UTF-8 text"),
        )
    })
}

/// An optional UTF-8 string argument (NULL: `None`).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    s: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, FwError> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: the same contract.
    unsafe { str_arg(s, what) }.map(Some)
}

/// `s` as a C string the caller frees with `v6fw_string_free`.
pub(crate) fn c_string(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

/// Frees a string that libv6fw returned (`get_Name`, `get_Id`,
/// `get_LogFilePath`, ...). NULL is harmless. Free each string once, and
/// only strings libv6fw returned.
///
/// # Safety
/// `s` is NULL or a string returned by libv6fw and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn v6fw_string_free(s: *mut c_char) {
    crate::call::call_quiet((), || {
        if !s.is_null() {
            // SAFETY: by the contract, `s` came from `CString::into_raw` in
            // `c_string` and is freed once.
            drop(unsafe { CString::from_raw(s) });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Probe {
        refs: AtomicU32,
        dropped: std::sync::Arc<AtomicU32>,
    }

    impl Counted for Probe {
        fn refs(&self) -> &AtomicU32 {
            &self.refs
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_last_release_frees_once() {
        let dropped = std::sync::Arc::new(AtomicU32::new(0));
        let h = into_handle(Probe {
            refs: AtomicU32::new(0),
            dropped: std::sync::Arc::clone(&dropped),
        });
        // SAFETY: `h` is live until the count reaches 0 below.
        unsafe {
            assert_eq!(add_ref(h), 2);
            assert_eq!(add_ref(h), 3);
            assert_eq!(release(h), 2);
            assert_eq!(release(h), 1);
            assert_eq!(dropped.load(Ordering::SeqCst), 0);
            assert_eq!(release(h), 0);
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn null_handles_are_harmless_or_e_pointer() {
        let null_probe: *mut Probe = std::ptr::null_mut();
        // SAFETY: NULL is allowed by each contract.
        unsafe {
            assert_eq!(add_ref(null_probe), 0);
            assert_eq!(release(null_probe), 0);
            let e = object(null_probe, "mgr").err().map(|e| e.code());
            assert_eq!(e, Some(Code::Pointer));
            v6fw_string_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn a_failed_fill_writes_null_and_a_null_out_is_e_pointer() {
        let dropped = std::sync::Arc::new(AtomicU32::new(0));
        let probe = || Probe {
            refs: AtomicU32::new(0),
            dropped: std::sync::Arc::clone(&dropped),
        };
        let mut out: *mut Probe = std::ptr::NonNull::dangling().as_ptr();
        // SAFETY: `out` is a local valid for writes; NULL is allowed.
        unsafe {
            let r = fill_handle(&mut out, "ppProbe", || Err(error(Code::InvalidArg, "no")));
            assert_eq!(r.err().map(|e| e.code()), Some(Code::InvalidArg));
            assert!(out.is_null());
            let mut ran = false;
            let r = fill_handle::<Probe>(std::ptr::null_mut(), "ppProbe", || {
                ran = true;
                Ok(probe())
            });
            assert_eq!(r.err().map(|e| e.code()), Some(Code::Pointer));
            assert!(!ran, "nothing is made for a NULL out-pointer");
            assert!(fill_handle(&mut out, "ppProbe", || Ok(probe())).is_ok());
            assert!(!out.is_null());
            assert_eq!(release(out), 0);
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn strings_round_trip_and_are_checked() {
        let s = c_string("Local Area Connection");
        // SAFETY: `s` is a live string from `c_string`, freed once below.
        unsafe {
            assert_eq!(str_arg(s, "name").ok(), Some("Local Area Connection"));
            v6fw_string_free(s);
        }
        let bad = [0xff_u8, 0];
        // SAFETY: NUL-terminated locals, NULL allowed.
        unsafe {
            let e = str_arg(bad.as_ptr().cast(), "name").err().map(|e| e.code());
            assert_eq!(e, Some(Code::InvalidArg));
            let e = str_arg(std::ptr::null(), "name").err().map(|e| e.code());
            assert_eq!(e, Some(Code::Pointer));
            assert_eq!(opt_str_arg(std::ptr::null(), "name").ok(), Some(None));
        }
    }
}
