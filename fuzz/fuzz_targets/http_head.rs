//! Fuzz target `http_head`: arbitrary bytes as what a client sent the
//! `--metrics` endpoint, through its request-head parser: never panics, a
//! decision on a prefix is the decision on the whole, 4 KiB is never
//! `Partial`, no request announcing a body is accepted (see
//! `v6fw_testkit::fuzz_checks::http_head`).
//!
//! The target only hands bytes to the check: the check lives in
//! v6fw-testkit so that a stable test (`testkit/tests/fuzz_corpus.rs`)
//! re-runs every corpus file under `cargo test --workspace`, without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_testkit::fuzz_checks::http_head(data) {
        panic!(
            "http_head: {violation}\ninput hex: {}",
            v6fw_testkit::fuzz_checks::hex(data)
        );
    }
});
