//! Whether the tests that need root run.

/// Whether this process runs as root (Windows: an elevated Administrator,
/// who may change the policy as root may).
pub fn is_root() -> bool {
    v6fw_api::control::client::is_admin()
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

#[cfg(unix)]
/// Copies the executable `from` into `dir` as `name`, mode 0755, so that an
/// unprivileged user (uid 65534 through `setpriv`) can run it; returns the copy.
pub fn runnable_by_everyone(
    from: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
) -> std::path::PathBuf {
    let bin = dir.join(name);
    // The copy is written by another process (`install`), not by this one:
    // a file this test process held open for writing could be inherited by
    // a child that another test thread forks at that moment, and exec of the
    // copy would then fail with "Text file busy" (ETXTBSY).
    let status = std::process::Command::new("install")
        .args(["-m", "0755"])
        .arg(from)
        .arg(&bin)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "install {} {}: {status}",
        from.display(),
        bin.display()
    );
    bin
}
