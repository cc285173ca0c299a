//! The synchronization primitives of the port table, from one place.
//!
//! Normal builds use crossbeam's epoch, parking_lot's mutex and std's atomics
//! and `Arc`. Under `--cfg loom` (with `--cfg crossbeam_loom`, which makes
//! crossbeam-epoch use loom inside its collector) the mutex, the atomics and
//! the `Arc` are loom's, so `tests/loom_publish.rs` model-checks the real
//! [`crate::PortTable`], not a copy of its protocol. [`Witness`] lets loom
//! prove every snapshot access happens before that snapshot is freed.

pub(crate) use crossbeam_epoch as epoch;

#[cfg(not(loom))]
pub(crate) use parking_lot::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

/// loom's mutex with parking_lot's `lock()` (no poisoning: a panic under
/// loom fails the model anyway).
#[cfg(loom)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Nothing in normal builds; under loom a cell written when its snapshot is
/// dropped and read on every access, so loom reports any access that is not
/// ordered before the free.
#[cfg(not(loom))]
pub(crate) struct Witness;

#[cfg(not(loom))]
impl Witness {
    pub(crate) fn new() -> Self {
        Witness
    }

    #[inline(always)]
    pub(crate) fn check(&self) {}
}

/// See the non-loom `Witness`.
#[cfg(loom)]
pub(crate) struct Witness(loom::cell::UnsafeCell<bool>);

#[cfg(loom)]
impl Witness {
    pub(crate) fn new() -> Self {
        Witness(loom::cell::UnsafeCell::new(true))
    }

    pub(crate) fn check(&self) {
        // SAFETY: the only write is in `drop`; loom checks this read is
        // ordered before it and panics otherwise.
        let alive = self.0.with(|p| unsafe { *p });
        assert!(alive, "a snapshot was read after it was freed");
    }
}

// SAFETY: the cell is only read through `&self` and written through
// `&mut self` at drop, the pattern `Sync` allows; loom checks every such
// access against the others and reports any race, which is the point.
#[cfg(loom)]
unsafe impl Sync for Witness {}

#[cfg(loom)]
impl Drop for Witness {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: the only access at drop; loom checks it against
        // every read.
        self.0.with_mut(|p| unsafe { *p = false });
    }
}
