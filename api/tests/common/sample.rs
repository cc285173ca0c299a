//! The bundled sample capture and README's policy for it.

use std::path::{Path, PathBuf};

/// `samples/sample.pcap` (see api/examples/gen_sample.rs).
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample.pcap")
}

/// README's policy for the sample.
pub const POLICY: [&str; 6] = [
    "--open",
    "22/tcp,53/udp",
    "--global",
    "443/tcp",
    "--local",
    "2001:db8:1::/48",
];
