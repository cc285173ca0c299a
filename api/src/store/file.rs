//! The policy file on disk: read only when it is safe to trust and
//! complete, written atomically and durably.
//!
//! On Windows `policy.toml` is opened with `FILE_FLAG_OPEN_REPARSE_POINT` and
//! refused when it is a junction, symbolic link or mount point.
//! On Unix `policy.toml` is opened with `O_NOFOLLOW` and refused when it is
//! a symbolic link, not a regular file, owned by anyone but root (or the
//! user running v6fw), or writable by its group or others: whoever could
//! change it could open every port. A file that was modified in the last
//! [`SETTLE`] (an editor writing it in place, not through a rename) is read
//! again once it has been left alone that long, so a reload never publishes
//! half a file.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::fw::FwError;

/// How long the file must have been left unmodified before it is read as
/// complete.
pub const SETTLE: Duration = Duration::from_millis(100);

/// How long a read waits at most for the file to settle.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(3);

/// The file's bytes once nobody has written it for [`SETTLE`] (`None`: no
/// file). A file still changing after [`SETTLE_LIMIT`] is an error.
pub(super) fn read_settled(path: &Path) -> Result<Option<Vec<u8>>, FwError> {
    let start = std::time::Instant::now();
    let mut last: Option<(Vec<u8>, SystemTime)> = None;
    loop {
        let Some((bytes, modified)) = read_checked(path)? else {
            return Ok(None);
        };
        match modified.elapsed() {
            Ok(age) if age >= SETTLE => return Ok(Some(bytes)),
            // A time stamp in the future (a clock set back, a restored
            // file): two reads a moment apart must agree instead.
            Err(_)
                if last
                    .as_ref()
                    .is_some_and(|(b, m)| *b == bytes && *m == modified) =>
            {
                return Ok(Some(bytes))
            }
            _ => {}
        }
        if start.elapsed() >= SETTLE_LIMIT {
            return Err(FwError::Fail(format!(
                "{} is still being written (it changed within the last {} ms for {} s): \
                 nothing was read; try again once the editor has saved it",
                path.display(),
                SETTLE.as_millis(),
                SETTLE_LIMIT.as_secs()
            )));
        }
        last = Some((bytes, modified));
        std::thread::sleep(SETTLE / 2);
    }
}

/// The file's bytes as they are now, checked as [`read_settled`] checks
/// them, without waiting (`None`: no file).
pub(super) fn read_now(path: &Path) -> Result<Option<Vec<u8>>, FwError> {
    Ok(read_checked(path)?.map(|(bytes, _)| bytes))
}

/// One read of the file with its modification time, refused unless it is
/// safe to trust (see the module's docs); `None`: no file.
fn read_checked(path: &Path) -> Result<Option<(Vec<u8>, SystemTime)>, FwError> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    // Windows: a junction, symbolic link or mount point in the file's place
    // is opened as itself, never followed, and refused below.
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        opts.custom_flags(crate::winacl::OPEN_REPARSE_POINT);
    }
    let mut f = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(FwError::Fail(format!(
                "the policy file {} is a symbolic link: v6fw reads only a regular file there, \
                 owned by root and writable by no one else; replace the link with the file \
                 (`cp --remove-destination \"$(readlink -f {p})\" {p}`) after checking what it holds",
                path.display(),
                p = path.display()
            )))
        }
        Err(e) => return Err(unreadable(path, &e).because(e)),
    };
    #[cfg(windows)]
    crate::winacl::audit::refuse_reparse_point(&f, path).map_err(|e| {
        FwError::Fail(format!(
            "the policy file {}: {e} (v6fw reads only a regular file there)",
            path.display()
        ))
    })?;
    let meta = f.metadata().map_err(|e| unreadable(path, &e).because(e))?;
    trusted(path, &meta)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| unreadable(path, &e).because(e))?;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(Some((bytes, modified)))
}

fn unreadable(path: &Path, e: &std::io::Error) -> FwError {
    FwError::Fail(format!(
        "cannot read the policy file {}: {e}; it must be a regular file root can read: fix its rights or restore it from a backup (v6fw does not start with a policy it cannot read)",
        path.display()
    ))
}

/// Refuses a policy file that is not a regular file, not root's (or this
/// user's), or writable by group or others.
#[cfg(unix)]
fn trusted(path: &Path, meta: &fs::Metadata) -> Result<(), FwError> {
    use std::os::unix::fs::MetadataExt;
    let p = path.display();
    if !meta.is_file() {
        return Err(not_a_file(path));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(FwError::Fail(format!(
            "the policy file {p} is owned by uid {}, not root: whoever owns it could open any port; \
             check what it holds, then `chown root:root {p}`",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(FwError::Fail(format!(
            "the policy file {p} is writable by its group or by everyone (mode {:04o}): anyone who \
             can write it could open any port; check what it holds, then `chmod go-w {p}`",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Other systems: the state directory's ACL guards the file.
#[cfg(not(unix))]
fn trusted(path: &Path, meta: &fs::Metadata) -> Result<(), FwError> {
    if meta.is_file() {
        return Ok(());
    }
    Err(not_a_file(path))
}

fn not_a_file(path: &Path) -> FwError {
    FwError::Fail(format!(
        "cannot read the policy file {}: it is not a regular file; put the policy there as a plain file, or restore it from a backup",
        path.display()
    ))
}

/// The mode a rewrite of `path` keeps: the file's own, without group or
/// other write; 0644 for a new file.
#[cfg(unix)]
pub(super) fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).map_or(0o644, |m| m.mode() & 0o755)
}

/// Creates `path` (which must not exist) with `bytes`, mode `mode` on
/// Unix, and fsyncs it.
pub(super) fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FwError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts
        .open(path)
        .map_err(|e| FwError::io("create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| FwError::io("write", path, e))?;
    f.sync_all().map_err(|e| FwError::io("fsync", path, e))
}

#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> Result<(), FwError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FwError::io("fsync the directory", dir, e))
}

#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> Result<(), FwError> {
    // Windows: a rename is made durable by the file system's journal; a
    // directory handle cannot be fsynced.
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn links_and_writable_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real.toml");
        fs::write(&real, "[globals]\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_checked(&real).unwrap().is_some());
        let link = t.path().join("policy.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = read_checked(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_checked(&real).unwrap_err().to_string();
        assert!(
            e.contains("writable by its group or by everyone (mode 0666)"),
            "{e}"
        );
        fs::set_permissions(&real, fs::Permissions::from_mode(0o620)).unwrap();
        assert!(read_checked(&real).is_err());
        assert!(read_checked(&t.path().join("none")).unwrap().is_none());
    }
}
