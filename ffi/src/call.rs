//! The boundary: every exported function runs its body through `call`,
//! which turns an [`FwError`] into its HRESULT and the thread's last error
//! message, and a panic into `E_UNEXPECTED` (no unwinding crosses into C).

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use v6fw_api::fw::{Code, FwError};

use crate::types::{hresult_of, HRESULT, S_OK};

thread_local! {
    /// The message of this thread's last failed call; `None` after a call
    /// that succeeded.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Runs `body`; its `Ok` HRESULT (`S_OK`, or `S_FALSE` where a function
/// says so), or the failure's HRESULT with its message kept for
/// [`v6fw_last_error_message`]. A panic is `E_UNEXPECTED`.
pub(crate) fn call(body: impl FnOnce() -> Result<HRESULT, FwError>) -> HRESULT {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(FwError::Unexpected(format!(
            "libv6fw panicked ({what}): this is a bug in libv6fw, please report it"
        )))
    });
    match outcome {
        Ok(hr) => {
            set_last_error(None);
            hr
        }
        Err(e) => {
            set_last_error(Some(&e));
            hresult_of(e.code())
        }
    }
}

/// [`call`] for a body that only succeeds with `S_OK`.
pub(crate) fn call_ok(body: impl FnOnce() -> Result<(), FwError>) -> HRESULT {
    call(|| body().map(|()| S_OK))
}

/// Runs a body that returns no HRESULT (`AddRef`, `Release`, freeing a
/// string): its value, or `default` if it panicked, with the panic kept as
/// the last error. A body that returns leaves the last error as it was, so
/// releasing handles after a failure does not lose its message.
pub(crate) fn call_quiet<T>(default: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        set_last_error(Some(&FwError::Unexpected(
            "libv6fw panicked while counting or freeing: this is a bug in libv6fw, please report it"
                .into(),
        )));
        default
    })
}

fn set_last_error(e: Option<&FwError>) {
    let text = e.map(|e| {
        // A message never holds NUL in practice; if it did, the C string
        // would end there, so it is replaced.
        let s = e.to_string().replace('\0', " ");
        CString::new(s).unwrap_or_default()
    });
    // A thread being torn down has no last error to keep.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = text);
}

/// The message of this thread's last failed libv6fw call: what happened and
/// what to do, then the code's name and value, e.g. `port 0 is not valid:
/// ports are 1-65535 (E_INVALIDARG 0x80070057)`. NULL if the last call on
/// this thread succeeded (or none was made).
///
/// The string belongs to libv6fw: do not free it. It stays valid until the
/// next libv6fw call on the same thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn v6fw_last_error_message() -> *const c_char {
    LAST_ERROR
        .try_with(|last| {
            last.borrow()
                .as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr())
        })
        .unwrap_or(std::ptr::null())
}

/// An API error of `code` (the HRESULT table's row) with `message`.
pub(crate) fn error(code: Code, message: impl Into<String>) -> FwError {
    FwError::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{E_INVALIDARG, E_UNEXPECTED};
    use std::ffi::CStr;

    fn last() -> Option<String> {
        let p = v6fw_last_error_message();
        // SAFETY: a non-null result is a NUL-terminated string owned by this
        // thread's LAST_ERROR, unchanged until the next call.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    #[test]
    fn failures_set_the_message_and_success_clears_it() {
        assert_eq!(call_ok(|| Ok(())), S_OK);
        assert_eq!(last(), None);
        let hr = call_ok(|| Err(error(Code::InvalidArg, "port 0 is not valid")));
        assert_eq!(hr, E_INVALIDARG);
        assert_eq!(
            last().as_deref(),
            Some("port 0 is not valid (E_INVALIDARG 0x80070057)")
        );
        assert_eq!(call_ok(|| Ok(())), S_OK);
        assert_eq!(last(), None);
    }

    #[test]
    fn a_panic_is_e_unexpected_and_does_not_unwind() {
        let hr = call_ok(|| panic!("boom"));
        assert_eq!(hr, E_UNEXPECTED);
        let msg = last().unwrap_or_default();
        assert!(
            msg.contains("boom") && msg.contains("E_UNEXPECTED"),
            "{msg}"
        );
        assert_eq!(call_quiet(7, || panic!("in a release")), 7);
        assert!(last().unwrap_or_default().contains("E_UNEXPECTED"));
    }

    #[test]
    fn a_quiet_body_keeps_the_last_error() {
        let _ = call_ok(|| Err(error(Code::Fail, "kept")));
        assert_eq!(call_quiet(0, || 3), 3);
        assert!(last().unwrap_or_default().starts_with("kept"));
    }

    #[test]
    fn the_message_is_per_thread() {
        let _ = call_ok(|| Err(error(Code::Fail, "here")));
        let other = std::thread::spawn(last).join().ok().flatten();
        assert_eq!(other, None);
        assert!(last().is_some());
    }
}
