//! Fuzz target `decide`: Arbitrary bytes as inbound and outbound packets, truncated or not, through
//! `Engine`/`Worker` with a fixed policy: never panics, and every decision keeps
//! SPEC.md's verdict and column invariants (see `v6fw_testkit::fuzz_checks::decide`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_testkit::fuzz_checks::decide(data) {
        panic!("decide: {violation}\ninput hex: {}", v6fw_testkit::fuzz_checks::hex(data));
    }
});
