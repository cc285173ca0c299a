//! Windows security descriptors from SDDL, and what v6fw creates with them:
//! the state directory ([`STATE_DIR_SDDL`]: SYSTEM and Administrators full
//! control, inherited by what is created inside; Users may list the
//! directory but read nothing in it, so the policy and its lock are for
//! SYSTEM and Administrators only; nothing inherited from the parent) and
//! the firewall log ([`LOG_FILE_SDDL`]: SYSTEM and Administrators only, as
//! Windows keeps `pfirewall.log`).
//!
//! An ACL is given only to what v6fw creates ([`create_state_dir`],
//! [`create_file`]). A state directory v6fw did not create is checked
//! instead ([`audit::check_tree`]): owned by SYSTEM or Administrators (or the
//! account v6fw runs as), nobody else may write in it, and nothing in it is
//! a junction or link; otherwise v6fw refuses to start and says how to fix
//! it. Files SYSTEM writes are opened without following reparse points
//! ([`open_append`]).

pub mod audit;

use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use ::windows::core::PCWSTR;
use ::windows::Win32::Foundation::{
    CloseHandle, BOOL, ERROR_ALREADY_EXISTS, ERROR_FILE_EXISTS, HANDLE, HLOCAL,
};
use ::windows::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use ::windows::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};
use ::windows::Win32::Storage::FileSystem::{
    CreateDirectoryW, CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, FILE_FLAG_OPEN_REPARSE_POINT,
    FILE_GENERIC_WRITE, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
};
use ::windows::Win32::System::Memory::LocalFree;

/// The state directory: protected (P: the parent's ACEs are not inherited);
/// SYSTEM and BUILTIN\Administrators full control, inherited by files and
/// directories inside (OICI); BUILTIN\Users read and traverse the directory
/// itself only, so the policy, its lock and the logs inside are for SYSTEM
/// and Administrators alone (a standard user who could open the lock could
/// hold it and keep the service from starting).
pub const STATE_DIR_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;FRFX;;;BU)";

/// A log file: protected; SYSTEM and BUILTIN\Administrators full control, nobody else.
pub const LOG_FILE_SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";

/// A security descriptor built from SDDL; freed on drop.
#[derive(Debug)]
pub struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is a self-contained block LocalAlloc'ed for this
// value alone; it is only read (the calls it is passed to copy it) and freed
// once, from whichever thread drops it.
unsafe impl Send for SecurityDescriptor {}

impl SecurityDescriptor {
    /// Parses `sddl` (`ConvertStringSecurityDescriptorToSecurityDescriptorW`).
    pub fn from_sddl(sddl: &str) -> io::Result<Self> {
        let wide: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
        let mut sd = PSECURITY_DESCRIPTOR::default();
        // SAFETY: `wide` is NUL-terminated; `sd` is a valid out-pointer; the
        // size is not wanted. The result is checked.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                PCWSTR(wide.as_ptr()),
                SDDL_REVISION_1,
                &mut sd,
                None,
            )
        };
        if !ok.as_bool() || sd.0.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(sd))
    }

    /// `SECURITY_ATTRIBUTES` pointing to this descriptor (not inheritable
    /// handles); valid while `self` is.
    pub fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: u32::try_from(std::mem::size_of::<SECURITY_ATTRIBUTES>()).unwrap_or(0),
            lpSecurityDescriptor: self.0 .0,
            bInheritHandle: BOOL(0),
        }
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: the block came from ConvertStringSecurityDescriptorToSecurityDescriptorW
        // (LocalAlloc) and is freed exactly once, here.
        let _ = unsafe { LocalFree(HLOCAL(self.0 .0 as isize)) };
    }
}

/// What to do about a state directory `dir` that [`audit::check_tree`] refused.
fn state_dir_fix(dir: &Path) -> String {
    let p = dir.display();
    format!(
        "Look at what is in it (someone else could have written it), then remove the directory \
         and let v6fw create it again (it gets SYSTEM and Administrators only), or, from an \
         elevated prompt, make it Administrators' and theirs alone: `takeown /F \"{p}\" /A /R /D Y`, \
         `icacls \"{p}\" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F \
         *S-1-5-32-545:RX`, `icacls \"{p}\\*\" /reset /T` and `icacls \"{p}\" /remove:g *SID` for \
         each SID named above; or choose another --state-dir"
    )
}

/// Creates `dir` (and its missing parents, which inherit as usual) with the
/// ACL [`STATE_DIR_SDDL`], then checks it ([`audit::check_tree`]): a
/// directory that existed already is used only if it is owned by SYSTEM or
/// Administrators (or the account v6fw runs as), nobody else may write in it
/// or change it, and nothing in it is a junction or link.
pub fn create_state_dir(dir: &Path) -> io::Result<()> {
    make_state_dir(dir)?;
    audit::check_tree(dir, &audit::Trust::this_process(), &state_dir_fix(dir))
}

/// [`create_state_dir`] without the check.
fn make_state_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let sd = SecurityDescriptor::from_sddl(STATE_DIR_SDDL)?;
    let sa = sd.attributes();
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain(Some(0)).collect();
    // SAFETY: `wide` is NUL-terminated; `sa` and the descriptor it points to
    // are alive during the call (the directory gets its own copy).
    if unsafe { CreateDirectoryW(PCWSTR(wide.as_ptr()), Some(&sa)) }.as_bool() {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == i32::try_from(ERROR_ALREADY_EXISTS.0).ok() && dir.is_dir() {
        return Ok(()); // created meanwhile by someone else
    }
    Err(err)
}

/// Creates the file `path` with the ACL `sddl` if it does not exist (an
/// existing file is left as it is), so that opening it afterwards never
/// creates it with its directory's inherited ACL.
pub fn create_file(path: &Path, sddl: &str) -> io::Result<()> {
    let sd = SecurityDescriptor::from_sddl(sddl)?;
    let sa = sd.attributes();
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
    // SAFETY: `wide` is NUL-terminated; `sa` and its descriptor are alive
    // during the call; no template. The result is checked.
    let created = unsafe {
        CreateFileW(
            PCWSTR(wide.as_ptr()),
            FILE_GENERIC_WRITE.0,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            Some(&sa),
            CREATE_NEW,
            // A link of that name is not followed (and CREATE_NEW fails on it).
            FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT,
            HANDLE::default(),
        )
    };
    match created {
        Ok(h) => {
            // SAFETY: a handle CreateFileW just returned, closed once.
            let _ = unsafe { CloseHandle(h) };
            Ok(())
        }
        Err(e) => {
            let code = e.code().0 as u32 & 0xFFFF;
            if code == ERROR_FILE_EXISTS.0 || code == ERROR_ALREADY_EXISTS.0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(
                    i32::try_from(code).unwrap_or(0),
                ))
            }
        }
    }
}

/// `FILE_FLAG_OPEN_REPARSE_POINT` as `OpenOptionsExt::custom_flags` takes it:
/// a reparse point is opened as itself, never followed (check it with
/// [`audit::refuse_reparse_point`]).
pub const OPEN_REPARSE_POINT: u32 = FILE_FLAG_OPEN_REPARSE_POINT.0;

/// Opens `path` for appending, creating it first with the ACL `sddl` if it
/// does not exist ([`create_file`]); a junction, symbolic link or mount
/// point at `path` is refused, never followed (`FILE_FLAG_OPEN_REPARSE_POINT`
/// and a check of what was opened).
pub fn open_append(path: &Path, sddl: &str) -> io::Result<std::fs::File> {
    use std::os::windows::fs::OpenOptionsExt;
    create_file(path, sddl)?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(OPEN_REPARSE_POINT)
        .open(path)?;
    audit::refuse_reparse_point(&file, path)?;
    Ok(file)
}
