//! Whether the tests that need root run.

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether a test that needs root runs: as root yes; otherwise it skips
/// with a note, unless V6FW_REQUIRE_LIVE is set (CI), where it fails.
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("V6FW_REQUIRE_LIVE").is_none(),
        "{test} needs root and V6FW_REQUIRE_LIVE is set"
    );
    eprintln!("{test}: skipped, needs root");
    false
}
