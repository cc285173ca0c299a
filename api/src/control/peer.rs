//! Who is at the other end of a control connection, and whether they may
//! change the policy (Unix).
//!
//! The kernel says who connected (`SO_PEERCRED` on Linux, `getpeereid`
//! elsewhere): uid and gid as they were at `connect`. Root may change the
//! policy; so may, when the daemon was started with `--admin-group NAME`, a
//! peer whose gid is that group's or whose uid has it among its
//! supplementary groups (looked up when the peer first asks, so a change to
//! `/etc/group` applies to the next connection without a restart).

use std::os::unix::net::UnixStream;

use crate::fw::FwError;

/// The credentials of a connected peer, from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Effective uid at connect time.
    pub uid: u32,
    /// Effective gid at connect time.
    pub gid: u32,
}

impl Peer {
    /// The peer of `stream`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        use std::os::fd::AsRawFd;

        let mut cred = libc::ucred {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        };
        let size = std::mem::size_of::<libc::ucred>();
        let mut len = libc::socklen_t::try_from(size).map_err(std::io::Error::other)?;
        // SAFETY: the fd is a live socket owned by `stream`; `cred` and `len`
        // are valid, writable and `len` holds the size of `cred`, so the
        // kernel writes at most that many bytes into it.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                std::ptr::addr_of_mut!(cred).cast::<libc::c_void>(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if usize::try_from(len).ok() != Some(size) {
            return Err(std::io::Error::other("short SO_PEERCRED answer"));
        }
        Ok(Peer {
            uid: cred.uid,
            gid: cred.gid,
        })
    }

    /// The peer of `stream`.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        use std::os::fd::AsRawFd;

        let mut uid: libc::uid_t = libc::uid_t::MAX;
        let mut gid: libc::gid_t = libc::gid_t::MAX;
        // SAFETY: the fd is a live socket owned by `stream`; `uid` and `gid`
        // are valid places for the two values getpeereid writes.
        let rc = unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Peer { uid, gid })
    }

    /// Whether this peer may change the policy: root, or a member of
    /// `group` when one is configured.
    pub fn is_admin(&self, group: Option<&AdminGroup>) -> std::io::Result<bool> {
        if self.uid == 0 {
            return Ok(true);
        }
        match group {
            Some(g) => g.has_member(*self),
            None => Ok(false),
        }
    }
}

/// The group whose members may change the policy besides root
/// (`v6fw run --admin-group NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGroup {
    name: String,
    gid: u32,
}

impl AdminGroup {
    /// Looks the group up by name; an unknown group is `E_INVALIDARG`.
    pub fn lookup(name: &str) -> Result<AdminGroup, FwError> {
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Ok(AdminGroup {
                name: name.to_string(),
                gid: g.gid.as_raw(),
            }),
            Ok(None) => Err(FwError::InvalidArg(format!(
                "there is no group {name:?}: create it (`groupadd {name}`) or give an existing one to --admin-group"
            ))),
            Err(e) => Err(FwError::Fail(format!(
                "cannot look up the group {name:?}: {e}; check /etc/group and nsswitch.conf"
            )).because(e)),
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's id.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Whether `peer` is in the group: its gid, or one of the supplementary
    /// groups of its uid.
    pub fn has_member(&self, peer: Peer) -> std::io::Result<bool> {
        if peer.gid == self.gid {
            return Ok(true);
        }
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(peer.uid))
            .map_err(std::io::Error::from)?;
        let Some(user) = user else {
            // A uid with no name has no supplementary groups.
            return Ok(false);
        };
        supplementary_has(&user, self.gid)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn supplementary_has(user: &nix::unistd::User, gid: u32) -> std::io::Result<bool> {
    let name = std::ffi::CString::new(user.name.as_bytes()).map_err(std::io::Error::other)?;
    let groups = nix::unistd::getgrouplist(&name, user.gid).map_err(std::io::Error::from)?;
    Ok(groups.iter().any(|g| g.as_raw() == gid))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn supplementary_has(user: &nix::unistd::User, gid: u32) -> std::io::Result<bool> {
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .map_err(std::io::Error::from)?;
    Ok(group.is_some_and(|g| g.mem.contains(&user.name)))
}
