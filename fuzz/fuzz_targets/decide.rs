//! Fuzz target `decide`: Arbitrary bytes as inbound and outbound packets, truncated or not, through
//! `Engine`/`Worker` with a fixed policy: never panics, every decision keeps
//! SPEC.md's verdict and column invariants, and equals an etherparse-based
//! reference decision wherever that one decides (see
//! `v6fw_testkit::fuzz_checks::decide`).
//!
//! The target only hands bytes to the check: the check lives in
//! v6fw-testkit so that a stable test (`testkit/tests/fuzz_corpus.rs`)
//! re-runs every corpus file under `cargo test --workspace`, without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_testkit::fuzz_checks::decide(data) {
        panic!("decide: {violation}\ninput hex: {}", v6fw_testkit::fuzz_checks::hex(data));
    }
});
