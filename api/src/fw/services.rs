//! Service names for `ssh`, `ssh/tcp`: the host's `/etc/services` where it
//! exists, else the engine's bundled table (Windows, minimal containers).

#[cfg(not(windows))]
use v6fw_engine::Services;

/// The host's service file.
#[cfg(not(windows))]
const SERVICES_FILE: &str = "/etc/services";

/// Installs the host's service table for name lookups, once per process
/// (later calls do nothing). Without a readable `/etc/services`, or on
/// Windows, the bundled table answers.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(not(windows))]
        if let Ok(text) = std::fs::read_to_string(SERVICES_FILE) {
            let table = Services::parse(&text);
            if table != Services::default() {
                table.install();
            }
        }
    });
}
