//! Whether a file or directory is safe for SYSTEM to use: owned by a
//! [`Trust`]ed SID, and no other SID may write, append, delete, or change its
//! ACL or owner (an `ACCESS_ALLOWED` ACE of another SID with any of
//! [`WRITE_RIGHTS`]); and not a reparse point (junction, symbolic link,
//! mount point), which could send SYSTEM's writes anywhere.
//!
//! [`problems`] reads a descriptor (one from SDDL in the tests, one read from
//! a handle at start); [`check_tree`] opens a directory and each entry in it
//! without following reparse points and checks them all.

use std::fs::File;
use std::io;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use ::windows::core::PWSTR;
use ::windows::Win32::Foundation::{CloseHandle, HANDLE, HLOCAL, PSID};
use ::windows::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetSecurityInfo, SE_FILE_OBJECT,
};
use ::windows::Win32::Security::{
    AclSizeInformation, GetAce, GetAclInformation, GetSecurityDescriptorDacl,
    GetSecurityDescriptorOwner, GetTokenInformation, TokenUser, ACCESS_ALLOWED_ACE, ACE_HEADER,
    ACL, ACL_SIZE_INFORMATION, DACL_SECURITY_INFORMATION, INHERIT_ONLY_ACE,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, TOKEN_QUERY, TOKEN_USER,
};
use ::windows::Win32::Storage::FileSystem::{
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
    FILE_READ_ATTRIBUTES, READ_CONTROL,
};
use ::windows::Win32::System::Memory::LocalFree;
use ::windows::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::SecurityDescriptor;

/// Rights that let a SID change what SYSTEM reads or where it writes:
/// write data / add a file (0x2), append / add a subdirectory (0x4),
/// delete a child (0x40), DELETE, WRITE_DAC, WRITE_OWNER, GENERIC_ALL,
/// GENERIC_WRITE.
pub const WRITE_RIGHTS: u32 =
    0x2 | 0x4 | 0x40 | 0x1_0000 | 0x4_0000 | 0x8_0000 | 0x1000_0000 | 0x4000_0000;

/// What only the owner-side of an ancestor directory matters for: deleting
/// or renaming what is in it (delete a child, DELETE, WRITE_DAC,
/// WRITE_OWNER, GENERIC_ALL). Adding entries to an ancestor is harmless.
pub const REPLACE_RIGHTS: u32 = 0x40 | 0x1_0000 | 0x4_0000 | 0x8_0000 | 0x1000_0000;

/// SIDs that may own and write what SYSTEM uses: SYSTEM, BUILTIN\Administrators,
/// TrustedInstaller, CREATOR OWNER and OWNER RIGHTS (both stand for the
/// owner, checked on its own).
const WELL_KNOWN: &[&str] = &[
    "S-1-5-18",
    "S-1-5-32-544",
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
    "S-1-3-0",
    "S-1-3-4",
];

/// The SIDs trusted to own and write: [`WELL_KNOWN`] and whoever else the
/// caller adds (the account v6fw runs as).
#[derive(Debug, Clone)]
pub struct Trust {
    sids: Vec<String>,
}

impl Trust {
    /// SYSTEM, Administrators, TrustedInstaller (and CREATOR OWNER, OWNER RIGHTS).
    pub fn well_known() -> Self {
        Trust {
            sids: WELL_KNOWN.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    /// [`Trust::well_known`] and the account this process runs as (SYSTEM
    /// for the service; an elevated administrator's own SID otherwise).
    pub fn this_process() -> Self {
        let mut t = Self::well_known();
        match current_user_sid() {
            Ok(me) => t.sids.push(me),
            Err(e) => tracing::debug!("cannot read this process's user SID: {e}"),
        }
        t
    }

    /// Whether `sid` (as a string) is trusted.
    pub fn trusts(&self, sid: &str) -> bool {
        self.sids.iter().any(|s| s.eq_ignore_ascii_case(sid))
    }
}

/// A SID's usual name, for messages.
fn named(sid: &str) -> String {
    let name = match sid {
        "S-1-1-0" => "Everyone",
        "S-1-5-11" => "Authenticated Users",
        "S-1-5-32-545" => "BUILTIN\\Users",
        "S-1-5-4" => "INTERACTIVE",
        "S-1-5-32-546" => "BUILTIN\\Guests",
        _ => return sid.to_string(),
    };
    format!("{sid} ({name})")
}

/// `psid` as a string (`S-1-5-...`).
///
/// # Safety
///
/// `psid` points to a valid SID.
unsafe fn sid_string(psid: PSID) -> io::Result<String> {
    let mut text = PWSTR::null();
    // SAFETY: the caller's contract; `text` is a valid out-pointer.
    if !unsafe { ConvertSidToStringSidW(psid, &mut text) }.as_bool() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `text` is a NUL-terminated string LocalAlloc'ed
    // by the call.
    let s = unsafe { text.to_string() }.map_err(|e| io::Error::other(e.to_string()));
    // SAFETY: freed once, here.
    let _ = unsafe { LocalFree(HLOCAL(text.0 as isize)) };
    s
}

/// The user SID of `token` (opened with `TOKEN_QUERY`), as a string.
pub fn token_user_sid(token: HANDLE) -> io::Result<String> {
    // TOKEN_USER and the SID after it; u64s keep the pointer in it aligned.
    let mut buf = [0u64; 16];
    let size = u32::try_from(std::mem::size_of_val(&buf)).unwrap_or(0);
    let mut got = 0u32;
    // SAFETY: `buf` is `size` writable, 8-byte aligned bytes (TOKEN_USER
    // plus the largest SID fit); `got` is a valid out-pointer.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            Some(buf.as_mut_ptr().cast()),
            size,
            &mut got,
        )
    };
    if !ok.as_bool() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call filled `buf` with a TOKEN_USER whose SID pointer
    // points into `buf`, which is alive for the read.
    let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
    // SAFETY: that SID is valid (the call wrote it) and in `buf`.
    unsafe { sid_string(user.User.Sid) }
}

/// The user SID of this process, as a string.
pub fn current_user_sid() -> io::Result<String> {
    let mut token = HANDLE::default();
    // SAFETY: the current-process pseudo-handle needs no closing; `token`
    // is a valid out-pointer.
    if !unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) }.as_bool() {
        return Err(io::Error::last_os_error());
    }
    let sid = token_user_sid(token);
    // SAFETY: the token OpenProcessToken opened, closed once.
    let _ = unsafe { CloseHandle(token) };
    sid
}

/// What is wrong with `sd` for something SYSTEM uses (an empty list: all
/// is well): an owner `trust` does not trust, no DACL, or an allow ACE of
/// another SID with any of `rights` (inherit-only ACEs, which do not apply
/// to the object itself, are skipped: what they would give to new entries
/// only trusted SIDs can create).
pub fn problems(sd: &SecurityDescriptor, trust: &Trust, rights: u32) -> io::Result<Vec<String>> {
    // SAFETY: `sd.0` is a valid descriptor for as long as `sd` lives.
    unsafe { problems_of(sd.0, trust, rights) }
}

/// [`problems`] of a raw descriptor.
///
/// # Safety
///
/// `sd` is a valid security descriptor, alive during the call.
unsafe fn problems_of(
    sd: PSECURITY_DESCRIPTOR,
    trust: &Trust,
    rights: u32,
) -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut owner = PSID::default();
    let mut defaulted = 0i32;
    // SAFETY: the caller's contract; valid out-pointers.
    if !unsafe { GetSecurityDescriptorOwner(sd, &mut owner, &mut defaulted) }.as_bool() {
        return Err(io::Error::last_os_error());
    }
    if owner.is_invalid() {
        found.push("it has no owner".to_string());
    } else {
        // SAFETY: `owner` points into `sd`, a valid SID.
        let o = unsafe { sid_string(owner) }?;
        if !trust.trusts(&o) {
            found.push(format!(
                "it is owned by {} (an owner may change its ACL)",
                named(&o)
            ));
        }
    }
    let (mut present, mut dacl) = (0i32, std::ptr::null_mut::<ACL>());
    // SAFETY: the caller's contract; valid out-pointers.
    if !unsafe { GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) }.as_bool()
    {
        return Err(io::Error::last_os_error());
    }
    if present == 0 || dacl.is_null() {
        found.push("it has no DACL, so everyone has full access".to_string());
        return Ok(found);
    }
    let mut info = ACL_SIZE_INFORMATION::default();
    // SAFETY: `dacl` points into `sd`; `info` is the struct this class fills.
    let ok = unsafe {
        GetAclInformation(
            dacl,
            (&mut info as *mut ACL_SIZE_INFORMATION).cast(),
            u32::try_from(std::mem::size_of::<ACL_SIZE_INFORMATION>()).unwrap_or(0),
            AclSizeInformation,
        )
    };
    if !ok.as_bool() {
        return Err(io::Error::last_os_error());
    }
    for i in 0..info.AceCount {
        let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
        // SAFETY: `i` is below the ACL's ACE count; `ace` a valid out-pointer.
        if !unsafe { GetAce(dacl, i, &mut ace) }.as_bool() || ace.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: every ACE starts with an ACE_HEADER.
        let header = unsafe { *ace.cast::<ACE_HEADER>() };
        if u32::from(header.AceFlags) & INHERIT_ONLY_ACE.0 != 0 {
            continue;
        }
        match header.AceType {
            // ACCESS_ALLOWED_ACE_TYPE, ACCESS_ALLOWED_CALLBACK_ACE_TYPE: a
            // mask and the SID right after it.
            0 | 9 => {
                let allowed = ace.cast::<ACCESS_ALLOWED_ACE>();
                // SAFETY: an ACE of this type is an ACCESS_ALLOWED_ACE.
                let mask = unsafe { (*allowed).Mask };
                // SAFETY: the SID starts at SidStart inside the ACE.
                let sid = PSID(unsafe { std::ptr::addr_of_mut!((*allowed).SidStart) }.cast());
                // SAFETY: a valid SID inside `sd`.
                let who = unsafe { sid_string(sid) }?;
                if mask & rights != 0 && !trust.trusts(&who) {
                    found.push(format!(
                        "{} may write, delete or change its ACL (access mask {mask:#x})",
                        named(&who)
                    ));
                }
            }
            // Denials, audits, labels and the like give nothing.
            1 | 2 | 3 | 6 | 7 | 8 | 10 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 20 => {}
            // Object and other allow ACEs: not on files; v6fw cannot tell.
            t => found.push(format!(
                "an allow ACE of type {t}, which v6fw does not read"
            )),
        }
    }
    Ok(found)
}

/// Opens `path` itself, never what a reparse point leads to, for reading
/// its attributes and ACL; refuses a reparse point.
fn open_no_follow(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .access_mode(READ_CONTROL.0 | FILE_READ_ATTRIBUTES.0)
        .share_mode(7)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT.0 | FILE_FLAG_BACKUP_SEMANTICS.0)
        .open(path)?;
    refuse_reparse_point(&file, path)?;
    Ok(file)
}

/// An error if `file` (opened with `FILE_FLAG_OPEN_REPARSE_POINT`) is a
/// reparse point: a junction, symbolic link or mount point.
pub fn refuse_reparse_point(file: &File, path: &Path) -> io::Result<()> {
    if file.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT.0 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a junction, symbolic link or mount point, which v6fw never follows: remove it",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The owner and DACL of an open file or directory.
fn descriptor_of(file: &File) -> io::Result<SecurityDescriptor> {
    let mut sd = PSECURITY_DESCRIPTOR::default();
    // SAFETY: the handle is open with READ_CONTROL; `sd` is a valid
    // out-pointer whose block is LocalFree'd by SecurityDescriptor's drop.
    let rc = unsafe {
        GetSecurityInfo(
            HANDLE(file.as_raw_handle() as isize),
            SE_FILE_OBJECT,
            (OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION).0,
            None,
            None,
            None,
            None,
            Some(&mut sd),
        )
    };
    if rc.is_err() || sd.0.is_null() {
        return Err(io::Error::from_raw_os_error(
            i32::try_from(rc.0).unwrap_or(0),
        ));
    }
    Ok(SecurityDescriptor(sd))
}

/// What is wrong with `path` itself (opened without following it), as
/// one phrase naming the path; `None` if nothing.
fn check_one(path: &Path, trust: &Trust, rights: u32) -> io::Result<Option<String>> {
    let file = match open_no_follow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Ok(Some(e.to_string())),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot open {} to check its ACL: {e}", path.display()),
            ))
        }
    };
    let found = problems(&descriptor_of(&file)?, trust, rights)?;
    Ok((!found.is_empty()).then(|| format!("{}: {}", path.display(), found.join(", "))))
}

/// How many offending paths an error names; the rest are counted.
const SHOWN: usize = 4;

/// `found` joined, the first [`SHOWN`] of them, and how many more.
fn listed(found: &[String]) -> String {
    let mut text = found
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if found.len() > SHOWN {
        text.push_str(&format!("; and {} more", found.len() - SHOWN));
    }
    text
}

/// Checks that the directory `dir` and each entry in it are owned by
/// trusted SIDs, writable by nobody else and no reparse point, and that no
/// untrusted SID may delete or rename `dir` through one of its ancestors.
/// `Err` naming what was found, then what to do: `fix` for `dir` and its
/// entries, a place elsewhere for a folder above it.
pub fn check_tree(dir: &Path, trust: &Trust, fix: &str) -> io::Result<()> {
    let mut found: Vec<String> = check_one(dir, trust, WRITE_RIGHTS)?.into_iter().collect();
    for entry in std::fs::read_dir(dir)? {
        found.extend(check_one(&entry?.path(), trust, WRITE_RIGHTS)?);
    }
    let mut above = Vec::new();
    for ancestor in dir.ancestors().skip(1).filter(|a| a.parent().is_some()) {
        above.extend(check_one(ancestor, trust, REPLACE_RIGHTS)?);
    }
    let mut parts = Vec::new();
    if !found.is_empty() {
        parts.push(format!("{}. {}", listed(&found), fix.trim_end_matches('.')));
    }
    if !above.is_empty() {
        parts.push(format!(
            "a folder above it may be changed by others, who could swap it for one of their \
             own: {}. Keep it under folders only administrators may change (such as \
             C:\\ProgramData or C:\\Program Files)",
            listed(&above)
        ));
    }
    if parts.is_empty() {
        return Ok(());
    }
    // Not PermissionDenied: that would read as "run as root" to the caller.
    Err(io::Error::other(format!(
        "{} is not safe for v6fw (which runs as SYSTEM) to use: {}",
        dir.display(),
        parts.join(". Also, ")
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn check(sddl: &str) -> Vec<String> {
        let sd = SecurityDescriptor::from_sddl(sddl).unwrap();
        problems(&sd, &Trust::well_known(), WRITE_RIGHTS).unwrap()
    }

    #[test]
    fn an_admin_only_tree_passes() {
        // The state directory as v6fw makes it, owned by Administrators or SYSTEM.
        assert_eq!(
            check(&format!("O:BA{}", super::super::STATE_DIR_SDDL)),
            Vec::<String>::new()
        );
        assert_eq!(
            check(&format!("O:SY{}", super::super::LOG_FILE_SDDL)),
            Vec::<String>::new()
        );
        // Users may read and traverse; TrustedInstaller may write.
        let program_files = "O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464\
            D:P(A;;FA;;;S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)\
            (A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)(A;OICIIO;GA;;;CO)";
        assert_eq!(check(program_files), Vec::<String>::new());
    }

    #[test]
    fn a_user_owned_directory_is_refused() {
        let got = check("O:S-1-5-21-1-2-3-1001D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("owned by S-1-5-21-1-2-3-1001"), "{got:?}");
        // Its owner is trusted once named (the account v6fw runs as).
        let mut trust = Trust::well_known();
        trust.sids.push("S-1-5-21-1-2-3-1001".into());
        let sd = SecurityDescriptor::from_sddl("O:S-1-5-21-1-2-3-1001D:P(A;;FA;;;SY)").unwrap();
        assert!(problems(&sd, &trust, WRITE_RIGHTS).unwrap().is_empty());
    }

    #[test]
    fn a_world_writable_file_is_refused() {
        let got = check("O:BAD:(A;;FA;;;SY)(A;;FRFW;;;WD)");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("S-1-1-0 (Everyone) may write"), "{got:?}");
        // Append alone, delete alone, WRITE_DAC alone: each is enough.
        for right in ["0x4", "SD", "WD", "WO", "GA", "GW", "0x40"] {
            let got = check(&format!("O:BAD:(A;;{right};;;BU)"));
            assert!(
                got.iter().any(|p| p.contains("BUILTIN\\Users")),
                "{right}: {got:?}"
            );
        }
    }

    #[test]
    fn reading_is_no_problem_and_neither_is_an_inherit_only_grant() {
        assert!(check("O:SYD:P(A;;FA;;;SY)(A;;FRFX;;;BU)(A;;FR;;;WD)").is_empty());
        assert!(check("O:SYD:P(A;;FA;;;SY)(A;OICIIO;FA;;;BU)").is_empty());
        // Denials are no grant.
        assert!(check("O:SYD:P(D;;FA;;;WD)(A;;FA;;;SY)").is_empty());
    }

    #[test]
    fn no_dacl_or_no_owner_is_refused() {
        // No DACL at all: everyone has full access.
        let got = check("O:BA");
        assert!(got.iter().any(|p| p.contains("no DACL")), "{got:?}");
        let got = check("D:P(A;;FA;;;SY)");
        assert!(got.iter().any(|p| p.contains("no owner")), "{got:?}");
    }

    #[test]
    fn an_authenticated_users_modify_grant_is_named() {
        // What a new folder under C:\ gets for Authenticated Users.
        let got = check("O:BAD:(A;OICI;0x1301bf;;;AU)(A;OICI;FA;;;SY)");
        assert!(got[0].contains("S-1-5-11 (Authenticated Users)"), "{got:?}");
    }

    #[test]
    fn this_process_trusts_its_own_account() {
        let me = current_user_sid().unwrap();
        assert!(me.starts_with("S-1-"), "{me}");
        assert!(Trust::this_process().trusts(&me));
        assert!(!Trust::well_known().trusts("S-1-1-0"));
    }
}
