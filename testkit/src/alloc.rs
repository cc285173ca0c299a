//! A counting global allocator, for the tests that show the packet path asks
//! the allocator for nothing (the developers' guide: "the hot path does not
//! allocate").
//!
//! A test binary installs it with
//! `#[global_allocator] static A: v6fw_testkit::alloc::Counting = v6fw_testkit::alloc::Counting;`
//! and measures with [`allocations_in`]. Allocations are counted per thread,
//! so the test harness's threads, other tests and helper threads (a log
//! writer) do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the calling thread's allocations
/// (`alloc`, `alloc_zeroed` and `realloc`; freeing is not counted).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no counter, and must still get memory.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so the caller gets `System`'s guarantees; counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` and `layout` come from this allocator, which is `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, which is `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// How many times `f` asked the allocator for memory on this thread. Only
/// meaningful in a binary whose global allocator is [`Counting`]; there the
/// caller should first check it counts at all (see
/// [`counts_an_allocation`]), or a counter that never counts would pass.
pub fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get).saturating_sub(before)
}

/// Whether [`Counting`] is this binary's allocator and counts: one `Vec`
/// allocation must show as exactly one.
pub fn counts_an_allocation() -> bool {
    allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))) == 1
}
