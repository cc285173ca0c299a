//! Fuzz target `policy_ops`: Arbitrary sequences of policy changes and held snapshots against a
//! `BTreeSet` model (see `v6fw_testkit::fuzz_checks::policy_ops`).
//!
//! The target only hands bytes to the check: the check lives in
//! v6fw-testkit so that a stable test (`testkit/tests/fuzz_corpus.rs`)
//! re-runs every corpus file under `cargo test --workspace`, without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_testkit::fuzz_checks::policy_ops(data) {
        panic!("policy_ops: {violation}\ninput hex: {}", v6fw_testkit::fuzz_checks::hex(data));
    }
});
