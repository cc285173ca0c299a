//! Where the team's shared contract and captures are: `../shared` beside the
//! checkout (`V6FW_SHARED` overrides it). A clone alone has none: the tests
//! that need them pass with a note, unless `V6FW_REQUIRE_LIVE` or `CI` is set
//! (CI has `shared/` beside the clone), when their absence is a failure.

use std::path::PathBuf;

/// Whether `V6FW_REQUIRE_LIVE` asks for the live tests and harnesses to run
/// (set, and neither empty nor `0`): every reason not to is then a failure.
pub fn require_live() -> bool {
    set("V6FW_REQUIRE_LIVE")
}

/// Whether the environment variable `name` is set, and neither empty nor `0`.
fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v != "0" && !v.is_empty())
}

/// The shared directory: `V6FW_SHARED`, or `shared/` beside the checkout.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("V6FW_SHARED").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")),
        PathBuf::from,
    )
}

/// Whether the shared data must be there (`V6FW_REQUIRE_LIVE`, or `CI` set
/// and neither empty nor `0`).
pub fn required() -> bool {
    require_live() || set("CI")
}

/// The shared captures (`shared/captures`, holding its `INDEX.md`), or
/// `None` with a note naming `test` when they are absent; absent when
/// [`required`] is a panic that says where they were looked for.
pub fn captures(test: &str) -> Option<PathBuf> {
    let dir = shared_dir().join("captures");
    if dir.join("INDEX.md").is_file() {
        return Some(dir);
    }
    assert!(
        !required(),
        "{test} needs the shared captures at {} (V6FW_REQUIRE_LIVE or CI is set); \
         put the team's shared/ beside the checkout or point V6FW_SHARED at it",
        dir.display()
    );
    eprintln!(
        "note: {test}: the shared captures are not at {} (a clone alone); \
         only the repository's own inputs are checked",
        dir.display()
    );
    None
}
