//! The checks the fuzz targets run, shared with the stable corpus replay test
//! (`benches/tests/fuzz_corpus.rs`), so every corpus file is re-checked by
//! `cargo test --workspace` on stable without cargo-fuzz.
//!
//! Each check takes the raw fuzz input and returns `Err` with a description
//! of the first broken invariant; the fuzz targets turn that into a panic.
//!
//! - [`decide()`]: SPEC.md's column and verdict invariants through
//!   [`v6fw_engine::Engine`] / [`v6fw_engine::Worker`], inbound and outbound,
//!   truncated or not.
//! - [`parse_vs_etherparse`]: differential against etherparse 0.21's
//!   `SlicedPacket::from_ip`, with every deliberate difference named.
//! - [`policy_ops()`]: a sequence of policy changes and held snapshots against
//!   a `BTreeSet` model.
//! - [`control_request`]: bytes as control-protocol lines through the
//!   daemon's parser and handler.
//! - [`capture_file()`]: bytes as a pcap/pcapng file through the replay reader.
//! - [`http_head()`]: bytes as what a client sent the `--metrics` endpoint,
//!   through its request-head parser.

mod capture_file;
mod control;
mod decide;
mod http_head;
mod parse;
mod policy_ops;

pub use capture_file::capture_file;
pub use control::control_request;
pub use decide::decide;
pub use http_head::http_head;
pub use parse::parse_vs_etherparse;
pub use policy_ops::policy_ops;

/// A broken invariant: what was checked and what was seen.
pub type Violation = String;

/// Runs the check of the target named `target` (the directory name under
/// `fuzz/corpus/`) on one input; `None` for an unknown target.
pub fn check_target(target: &str, data: &[u8]) -> Option<Result<(), Violation>> {
    match target {
        "decide" => Some(decide(data)),
        "parse_vs_etherparse" => Some(parse_vs_etherparse(data)),
        "policy_ops" => Some(policy_ops(data)),
        "control_request" => Some(control_request(data)),
        "capture_file" => Some(capture_file(data)),
        "http_head" => Some(http_head(data)),
        _ => None,
    }
}

/// Lower-case hex of `data`, for reproducers in messages.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lower-case or upper-case hex (whitespace ignored); `None` if
/// the text is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let data = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&data), "0001abff");
        assert_eq!(from_hex("00 01 AB ff").as_deref(), Some(&data[..]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
