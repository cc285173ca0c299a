//! Where a log file lives, and how it is opened and rotated safely.
//!
//! The daemon writes its log as root, often into a directory an
//! administrator named. On Unix a [`LogDir`] holds the directory open (an fd)
//! and does everything relative to it, so that nobody can swap a path
//! component under it:
//!
//! - the directory must be owned by root (or by the user running v6fw) and
//!   writable by nobody else (no group or other write bit): in a directory
//!   others can write, anyone could plant `pfirewall.log -> /etc/shadow`;
//! - the file is opened with `O_NOFOLLOW` (a symlink is refused, never
//!   followed) and `O_NONBLOCK` (a FIFO without a reader cannot hang the
//!   open), must be a regular file with one link (or a FIFO to a log
//!   collector; no device, socket or directory), is created mode 0640 and
//!   narrowed to 0640 if it was wider (it holds traffic metadata);
//! - rotation is a `renameat` inside the directory fd, then a fresh `openat`.
//!
//! Elsewhere (Windows) a [`LogDir`] is the plain path; on Windows a new log
//! file gets an ACL for SYSTEM and Administrators only, a junction or link
//! where the file should be is refused (`winacl::open_append`), and the
//! rotation never renames over an open `FILE.old` (see `clear_old`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What the log directory is called in errors, and what to do about one.
#[cfg(unix)]
const DIR_WHAT: &str = "log directory";
#[cfg(unix)]
const DIR_FIX: &str =
    "log to a directory only root can write (e.g. `install -d -m 0755 -o root /var/log/v6fw`)";

/// The mode a new log file gets: read-write for root, read for its group.
pub const LOG_FILE_MODE: u32 = 0o640;

/// The directory of a log file, held open, and the file's name in it.
#[derive(Debug)]
pub(super) struct LogDir {
    /// The whole path, for messages.
    path: PathBuf,
    /// The directory as opened (for messages).
    #[cfg(unix)]
    dir_path: PathBuf,
    #[cfg(unix)]
    dir: std::os::fd::OwnedFd,
    #[cfg(unix)]
    name: std::ffi::OsString,
}

/// `e` with `what` and the path in front.
fn context(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display()))
}

impl LogDir {
    /// The name of the rotated file: `FILE.old`.
    fn old_name(name: &std::ffi::OsStr) -> std::ffi::OsString {
        let mut old = name.to_os_string();
        old.push(".old");
        old
    }
}

/// Checks, before any line is written, that `path` is a place the log may
/// go: when its directory exists, the directory passes the log writer's
/// checks and the file is not a symbolic link. A directory that does not
/// exist yet is not an error here (the writer reports it when it tries).
pub fn check_log_place(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = path.parent().unwrap_or(Path::new("/"));
        if !parent.is_dir() {
            return Ok(());
        }
        let dir = LogDir::open(path)?;
        match rustix::fs::statat(
            &dir.dir,
            dir.name.as_os_str(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Symlink =>
            {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}: the log file is a symbolic link, which v6fw never follows: remove the link or choose another file",
                        path.display()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Checks that `path` and its rotation `path.old` are each missing, empty,
/// or a file v6fw wrote: a regular file with one link, no symbolic link,
/// beginning with [`crate::log::HEADER_START`]. For a log path set by someone other than
/// root (`--admin-group`): the daemon appends to the file, narrows its mode
/// and renames it over `.old`, which must never happen to a file of root's.
/// The directory is checked as the writer checks it.
pub fn check_made_by_v6fw(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = LogDir::open(path)?;
        dir.check_made_by_v6fw(&dir.name)?;
        dir.check_made_by_v6fw(&LogDir::old_name(&dir.name))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(unix)]
impl LogDir {
    /// [`check_made_by_v6fw`] for the file `name` in this directory.
    fn check_made_by_v6fw(&self, name: &std::ffi::OsStr) -> io::Result<()> {
        use std::io::Read;

        use rustix::fs::{fstat, openat, FileType, Mode, OFlags};

        let shown = self.dir_path.join(name);
        let refuse = |why: &str| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: {why}", shown.display()),
            )
        };
        let fd = match openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(rustix::io::Errno::LOOP) => {
                return Err(refuse("is a symbolic link, which v6fw never follows"))
            }
            Err(e) => return Err(context(e.into(), &shown, "cannot open it to check it")),
        };
        let st = fstat(&fd).map_err(|e| context(e.into(), &shown, "cannot stat it"))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_nlink != 1 {
            return Err(refuse(
                "is not a regular file with one name, so not a log v6fw wrote",
            ));
        }
        if st.st_size == 0 {
            return Ok(());
        }
        let want = super::record::HEADER_START.as_bytes();
        let mut head = Vec::with_capacity(want.len());
        File::from(fd)
            .take(want.len() as u64)
            .read_to_end(&mut head)
            .map_err(|e| context(e, &shown, "cannot read it to check it"))?;
        if head != want {
            return Err(refuse(
                "is not a log v6fw wrote (it does not begin with v6fw's #Version/#Software header)",
            ));
        }
        Ok(())
    }

    /// Opens the directory of `path` and checks that only root (or the user
    /// running v6fw) can write it.
    pub(super) fn open(path: &Path) -> io::Result<LogDir> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: not a file path: give a full path such as /var/log/v6fw/pfirewall.log",
                    path.display()
                ),
            ));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let dir = crate::private_dir::open_private_dir(parent, DIR_WHAT, DIR_FIX)?;
        Ok(LogDir {
            path: path.to_path_buf(),
            dir_path: parent.to_path_buf(),
            dir,
            name: name.to_os_string(),
        })
    }

    /// Opens (creating, mode 0640) the log file for appending, without
    /// following a link; returns it and its size.
    pub(super) fn open_append(&self) -> io::Result<(File, u64)> {
        use rustix::fs::{fchmod, fcntl_setfl, fstat, openat, FileType, Mode, OFlags, RawMode};

        // `mode_t` is 32 bits on Linux and 16 on the BSDs and macOS.
        #[allow(clippy::unnecessary_cast)]
        let allowed = LOG_FILE_MODE as RawMode;

        let cannot = |e: rustix::io::Errno| {
            let e = io::Error::from(e);
            let hint = if e.raw_os_error() == Some(libc::ELOOP) {
                "cannot open the log file: it is a symbolic link, which v6fw never follows; remove the link"
            } else {
                "cannot open the log file"
            };
            context(e, &self.path, hint)
        };
        // The directory's rights may have changed since it was opened (a
        // rotation comes later): check again before a file is made in it.
        crate::private_dir::check_private_dir(&self.dir, &self.dir_path, DIR_WHAT, DIR_FIX)?;
        let fd = openat(
            &self.dir,
            self.name.as_os_str(),
            OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(allowed),
        )
        .map_err(cannot)?;
        let st = fstat(&fd).map_err(cannot)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if !matches!(kind, FileType::RegularFile | FileType::Fifo) {
            return Err(io::Error::other(format!(
                "{}: the log file is a {kind:?}, not a regular file: remove it or choose another file",
                self.path.display()
            )));
        }
        if kind == FileType::RegularFile && st.st_nlink > 1 {
            return Err(io::Error::other(format!(
                "{}: the log file has {} hard links: it may be another file's second name; remove it or choose another file",
                self.path.display(),
                st.st_nlink
            )));
        }
        let mode = st.st_mode & 0o7777;
        if mode & !allowed != 0 {
            fchmod(&fd, Mode::from_raw_mode(mode & allowed)).map_err(cannot)?;
        }
        // Back to blocking writes: a full FIFO holds the writer thread (never
        // the packet path, which only queues).
        fcntl_setfl(&fd, OFlags::APPEND).map_err(cannot)?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        Ok((File::from(fd), size))
    }

    /// Renames the log file to `FILE.old` (replacing an older one) inside
    /// the directory, without following links.
    pub(super) fn rename_to_old(&self) -> io::Result<()> {
        let old = Self::old_name(&self.name);
        rustix::fs::renameat(&self.dir, self.name.as_os_str(), &self.dir, old.as_os_str())
            .map_err(|e| context(e.into(), &self.path, "cannot rotate the log file to .old"))
    }
}

#[cfg(not(unix))]
impl LogDir {
    /// The log file at `path`.
    pub(super) fn open(path: &Path) -> io::Result<LogDir> {
        Ok(LogDir {
            path: path.to_path_buf(),
        })
    }

    /// Opens (creating) the log file for appending; returns it and its size.
    /// On Windows a file it creates is for SYSTEM and Administrators only,
    /// and a junction or link at its path is refused, never followed.
    pub(super) fn open_append(&self) -> io::Result<(File, u64)> {
        #[cfg(windows)]
        let file = crate::winacl::open_append(&self.path, crate::winacl::LOG_FILE_SDDL)
            .map_err(|e| context(e, &self.path, "cannot open the log file"))?;
        #[cfg(not(windows))]
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| context(e, &self.path, "cannot open the log file"))?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    /// Renames the log file to `FILE.old`, replacing an older one.
    pub(super) fn rename_to_old(&self) -> io::Result<()> {
        let name = self.path.file_name().unwrap_or_default();
        let old = self.path.with_file_name(Self::old_name(name));
        #[cfg(windows)]
        clear_old(&old)?;
        std::fs::rename(&self.path, old)
            .map_err(|e| context(e, &self.path, "cannot rotate the log file to .old"))
    }
}

/// Gets `FILE.old` out of the way before the rotation's rename: Windows and
/// Wine refuse to rename a file over one that is open (a reader tailing
/// `FILE.old`), but let an open file be renamed and deleted. So `FILE.old` is
/// renamed to a name of its own and deleted there (an open one goes when its
/// last reader closes it), and the rename never replaces an open file.
#[cfg(windows)]
fn clear_old(old: &Path) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ASIDE: AtomicU64 = AtomicU64::new(0);
    let mut aside = old.as_os_str().to_owned();
    aside.push(format!(
        ".{}-{}.del",
        std::process::id(),
        ASIDE.fetch_add(1, Ordering::Relaxed)
    ));
    match std::fs::rename(old, &aside) {
        Ok(()) => std::fs::remove_file(&aside)
            .map_err(|e| context(e, old, "cannot remove the old file before the rotation")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(context(
            e,
            old,
            "cannot move the old file aside before the rotation",
        )),
    }
}
