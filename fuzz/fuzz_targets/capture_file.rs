//! Fuzz target `capture_file`: arbitrary bytes as a pcap/pcapng file through
//! the replay reader and the decision: never panics, errors name the file,
//! frames are numbered without gaps and each is decided once (see
//! `v6fw_testkit::fuzz_checks::capture_file`).
//!
//! The target only hands bytes to the check: the check lives in
//! v6fw-testkit so that a stable test (`testkit/tests/fuzz_corpus.rs`)
//! re-runs every corpus file under `cargo test --workspace`, without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_testkit::fuzz_checks::capture_file(data) {
        panic!(
            "capture_file: {violation}\ninput hex: {}",
            v6fw_testkit::fuzz_checks::hex(data)
        );
    }
});
