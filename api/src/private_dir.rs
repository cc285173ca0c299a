//! A directory only root may change: the check behind the log file's and the
//! control socket's directories (Unix).
//!
//! A root daemon that creates or opens a file by name in a directory someone
//! else can write may be tricked by a planted symbolic link. Such a
//! directory is refused: it must be owned by root (or by the user running
//! v6fw, for unprivileged use such as `replay --log`) and carry no group or
//! other write bit, sticky or not.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{fstat, open, FileType, Mode, OFlags};

/// Opens `dir` (a `what`, e.g. "log directory") and checks it as the module
/// says; `fix` ends the error message (what the user can do instead).
pub(crate) fn open_private_dir(dir: &Path, what: &str, fix: &str) -> io::Result<OwnedFd> {
    let shown = dir.display();
    // O_PATH (Linux): the directory need not be readable by whoever checks
    // it (an unprivileged `v6fw ports list` loading the policy), and the fd
    // still serves `openat`/`renameat`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let access = OFlags::PATH;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let access = OFlags::RDONLY;
    let fd = open(
        dir,
        access | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(e.kind(), format!("{shown}: cannot open the {what}: {e}"))
    })?;
    check_private_dir(&fd, dir, what, fix)?;
    Ok(fd)
}

/// Checks an open directory `fd` (at `dir`, for messages) as
/// [`open_private_dir`] does: again before each new file is made in it, in
/// case its rights changed since it was opened.
pub(crate) fn check_private_dir(fd: &OwnedFd, dir: &Path, what: &str, fix: &str) -> io::Result<()> {
    let shown = dir.display();
    let st = fstat(fd).map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(e.kind(), format!("{shown}: cannot stat the {what}: {e}"))
    })?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(io::Error::other(format!(
            "{shown}: the {what} is not a directory"
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != 0 && st.st_uid != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{shown}: the {what} is owned by uid {}, not root: its owner could swap a file there for a link; {fix}",
                st.st_uid
            ),
        ));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 {
            "everyone"
        } else {
            "its group"
        };
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{shown}: the {what} is writable by {who} (mode {mode:04o}): anyone who can write there could plant a link; `chmod go-w` it or {fix}"
            ),
        ));
    }
    Ok(())
}
