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
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join(name);
    std::fs::copy(from, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}
