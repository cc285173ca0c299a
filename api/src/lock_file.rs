//! Lock files: the policy store's writer lock (`policy.lock`) and the
//! daemon's one-per-namespace lock (`/run/v6fw/netns-INODE.lock`).
//!
//! Whoever can open a lock file can `flock` it, and a held lock keeps
//! `v6fw run` from starting (and root's offline changes from being made) for
//! as long as it is held. So a lock file is its owner's alone: created mode
//! 0600, never a symbolic link (`O_NOFOLLOW`), always a regular file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens (creating) a lock file. On Unix it is created mode 0600, opened
/// with `O_NOFOLLOW` (a symbolic link in its place is refused, never
/// followed) and must be a regular file; one left wider by an older v6fw
/// (0644: anyone could open it and `flock` it) is narrowed to 0600.
pub fn open(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
        let file = options.open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    e.kind(),
                    "it is a symbolic link, which v6fw never follows: remove it (v6fw makes the lock file itself)",
                )
            } else {
                e
            }
        })?;
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(io::Error::other(
                "it is not a regular file: remove it (v6fw makes the lock file itself)",
            ));
        }
        if meta.mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}
