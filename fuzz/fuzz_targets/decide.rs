//! Fuzz target `decide`: Arbitrary bytes as inbound and outbound packets, truncated or not, through
//! `Engine`/`Worker` with a fixed policy: never panics, every decision keeps
//! SPEC.md's verdict and column invariants, and equals an etherparse-based
//! reference decision wherever that one decides (see `v6fw_benches::fuzz_checks::decide`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = v6fw_benches::fuzz_checks::decide(data) {
        panic!("decide: {violation}\ninput hex: {}", v6fw_benches::fuzz_checks::hex(data));
    }
});
