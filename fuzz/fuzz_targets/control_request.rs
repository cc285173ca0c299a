//! Fuzz target `control_request`: arbitrary bytes as control-protocol lines
//! (first byte: whether the peer is root) through the daemon's request parser
//! and handler on an in-memory manager: never panics, every reply is one line
//! of JSON with a known HRESULT, a non-root peer never changes the policy
//! (see `v6fw_testkit::fuzz_checks::control_request`).
//!
//! The target only hands bytes to the check: the check lives in
//! v6fw-testkit so that a stable test (`testkit/tests/fuzz_corpus.rs`)
//! re-runs every corpus file under `cargo test --workspace`, without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_testkit::fuzz_checks::control_request(data) {
        panic!(
            "control_request: {violation}\ninput hex: {}",
            v6fw_testkit::fuzz_checks::hex(data)
        );
    }
});
