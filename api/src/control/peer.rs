//! Who is at the other end of a control connection, and whether they may
//! change the policy (Unix).
//!
//! The kernel says who connected (`SO_PEERCRED` and `SO_PEERGROUPS` on
//! Linux, `getpeereid` elsewhere): uid, gid and (Linux) the supplementary
//! groups the peer's process held at `connect`. Root may change the policy;
//! so may, when the daemon was started with `--admin-group NAME`, a peer
//! whose process holds that group: as its gid or, on Linux, among the groups
//! the kernel reports. `/etc/group` is not consulted on Linux: a user listed
//! there whose process dropped the group (`setpriv --clear-groups`, a
//! sandbox) is not admitted, and one who gained it after login (`newgrp`,
//! `sg`) is. Elsewhere, where the kernel reports no groups, the user
//! database's supplementary groups of the uid are used (`/etc/group`, looked
//! up when the peer first asks).
//!
//! A member of the admin group may change the policy but is not root: what
//! it may do to root's files is narrowed ([`Caller::AdminGroup`]).

use std::os::unix::net::UnixStream;

use crate::control::protocol::Caller;
use crate::fw::FwError;

/// The credentials of a connected peer, from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Effective uid at connect time.
    pub uid: u32,
    /// Effective gid at connect time.
    pub gid: u32,
    /// The supplementary groups its process held at connect time
    /// (`SO_PEERGROUPS`, Linux); `None` where the kernel does not say.
    pub groups: Option<Vec<u32>>,
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
            groups: Some(peer_groups(stream.as_raw_fd())?),
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
        Ok(Peer {
            uid,
            gid,
            groups: None,
        })
    }

    /// What this peer may do: root, a member of `group` when one is
    /// configured, or a reader.
    pub fn caller(&self, group: Option<&AdminGroup>) -> std::io::Result<Caller> {
        if self.uid == 0 {
            return Ok(Caller::Root);
        }
        match group {
            Some(g) if g.has_member(self)? => Ok(Caller::AdminGroup),
            _ => Ok(Caller::Reader),
        }
    }
}

/// The supplementary groups of the process at the other end of `fd`
/// (`SO_PEERGROUPS`, Linux 4.13), as they were at `connect`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_groups(fd: std::os::fd::RawFd) -> std::io::Result<Vec<u32>> {
    // NGROUPS_MAX is 65536; start small and grow to what the kernel asks.
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..2 {
        let bytes = groups.len() * std::mem::size_of::<libc::gid_t>();
        let mut len = libc::socklen_t::try_from(bytes).map_err(std::io::Error::other)?;
        // SAFETY: `fd` is a live socket; `groups` is a writable buffer of
        // `len` bytes, and the kernel writes at most `len` bytes into it.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast::<libc::c_void>(),
                &mut len,
            )
        };
        let got = usize::try_from(len).map_err(std::io::Error::other)?;
        if rc == 0 {
            groups.truncate(got / std::mem::size_of::<libc::gid_t>());
            return Ok(groups);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
        // Too small: the kernel said how many bytes it needs.
        groups.resize(got / std::mem::size_of::<libc::gid_t>() + 1, 0);
    }
    Err(std::io::Error::other(
        "the peer's groups kept changing size (SO_PEERGROUPS)",
    ))
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

    /// Whether `peer` is in the group: its gid, or one of the groups its
    /// process holds (Linux), or elsewhere one of the user database's
    /// supplementary groups of its uid.
    pub fn has_member(&self, peer: &Peer) -> std::io::Result<bool> {
        if peer.gid == self.gid {
            return Ok(true);
        }
        if let Some(groups) = &peer.groups {
            return Ok(groups.contains(&self.gid));
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

/// Whether the user database gives `user` the group `gid` (where the kernel
/// does not report a peer's groups).
fn supplementary_has(user: &nix::unistd::User, gid: u32) -> std::io::Result<bool> {
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .map_err(std::io::Error::from)?;
    Ok(group.is_some_and(|g| g.mem.contains(&user.name)))
}
