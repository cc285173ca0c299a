//! Fuzz target `parse_vs_etherparse`: Differential: v6fw's `walk` against etherparse 0.21's `SlicedPacket::from_ip`,
//! every deliberate difference named (see `v6fw_testkit::fuzz_checks::parse_vs_etherparse`).
//!
//! The target only hands bytes to the check: the check lives in
//! v6fw-testkit so that a stable test (`testkit/tests/fuzz_corpus.rs`)
//! re-runs every corpus file under `cargo test --workspace`, without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_testkit::fuzz_checks::parse_vs_etherparse(data) {
        panic!("parse_vs_etherparse: {violation}\ninput hex: {}", v6fw_testkit::fuzz_checks::hex(data));
    }
});
