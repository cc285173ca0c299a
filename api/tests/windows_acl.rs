//! The ACLs v6fw gives what it creates on Windows (api/src/winacl.rs): the
//! state directory (SYSTEM and Administrators full control, inherited; Users
//! may list it, not read what is in it) and the log file (SYSTEM and
//! Administrators only); and the start's check of a state directory that
//! exists already (api/src/winacl/audit.rs).
#![cfg(windows)]
#![allow(clippy::unwrap_used)]

mod common;

use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows::core::PWSTR;
use windows::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, GetNamedSecurityInfoW, SE_FILE_OBJECT,
};
use windows::Win32::Security::DACL_SECURITY_INFORMATION;

use v6fw_api::winacl::{create_file, create_state_dir, SecurityDescriptor, LOG_FILE_SDDL};
use windows::core::PCWSTR;
use windows::Win32::Foundation::HLOCAL;
use windows::Win32::Security::Authorization::SDDL_REVISION_1;
use windows::Win32::Security::PSECURITY_DESCRIPTOR;
use windows::Win32::System::Memory::LocalFree;

/// The DACL of `path` as SDDL.
fn dacl(path: &Path) -> String {
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut sd = PSECURITY_DESCRIPTOR::default();
    // SAFETY: `wide` is NUL-terminated, `sd` a valid out-pointer, freed below.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            PCWSTR(wide.as_ptr()),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            None,
            None,
            None,
            None,
            &mut sd,
        )
    };
    assert!(rc.is_ok(), "GetNamedSecurityInfoW: {rc:?}");
    let mut text = PWSTR::null();
    // SAFETY: `sd` is the descriptor just read; `text` a valid out-pointer.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION.0,
            &mut text,
            None,
        )
    };
    assert!(ok.as_bool());
    // SAFETY: `text` is a NUL-terminated string the call allocated.
    let s = unsafe { text.to_string() }.unwrap();
    // SAFETY: both were LocalAlloc'ed by the calls above; freed once.
    unsafe {
        let _ = LocalFree(HLOCAL(text.0 as isize));
        let _ = LocalFree(HLOCAL(sd.0 as isize));
    }
    s
}

#[test]
fn the_state_directory_gets_its_acl_and_files_in_it_inherit_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("parent").join("v6fw");
    create_state_dir(&dir).unwrap();
    assert!(dir.is_dir());
    // Created again: left alone, no error.
    create_state_dir(&dir).unwrap();
    if common::wine_skip("the state directory's ACL and its inheritance (Wine keeps no file ACLs)")
    {
        return;
    }
    let got = dacl(&dir);
    assert!(got.starts_with("D:P"), "protected: {got}");
    for ace in ["(A;OICI;FA;;;SY)", "(A;OICI;FA;;;BA)", "(A;;", ";;;BU)"] {
        assert!(got.contains(ace), "{ace} in {got}");
    }
    assert!(!got.contains(";;;WD)") && !got.contains(";;;AU)"), "{got}");
    // Users read the directory, not what is in it: the policy and its lock
    // are for SYSTEM and Administrators only.
    let file = dir.join("policy.toml");
    std::fs::write(&file, "x").unwrap();
    let inherited = dacl(&file);
    assert!(
        inherited.contains(";;;BA)")
            && !inherited.contains(";;;WD)")
            && !inherited.contains(";;;BU)"),
        "{inherited}"
    );
}

#[test]
fn a_new_log_file_is_for_admins_only_an_existing_one_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("pfirewall.log");
    create_file(&log, LOG_FILE_SDDL).unwrap();
    std::fs::write(&log, "kept").unwrap();
    create_file(&log, LOG_FILE_SDDL).unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "kept");
    if common::wine_skip("the log file's admin-only ACL (Wine keeps no file ACLs)") {
        return;
    }
    let got = dacl(&log);
    assert!(got.starts_with("D:P"), "protected: {got}");
    assert!(
        got.contains("(A;;FA;;;SY)") && got.contains("(A;;FA;;;BA)"),
        "{got}"
    );
    assert!(!got.contains(";;;BU)") && !got.contains(";;;WD)"), "{got}");
}

#[test]
fn bad_sddl_is_an_error() {
    assert!(SecurityDescriptor::from_sddl("D:(nonsense)").is_err());
}

/// A directory made with the ACL `sddl` (kept on Windows; Wine keeps none).
fn dir_with(dir: &Path, sddl: &str) {
    use windows::Win32::Storage::FileSystem::CreateDirectoryW;
    let sd = SecurityDescriptor::from_sddl(sddl).unwrap();
    let sa = sd.attributes();
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain(Some(0)).collect();
    // SAFETY: `wide` is NUL-terminated; `sa` and its descriptor outlive the call.
    assert!(unsafe { CreateDirectoryW(PCWSTR(wide.as_ptr()), Some(&sa)) }.as_bool());
}

#[test]
fn a_state_directory_others_may_write_or_replace_is_refused() {
    // A folder Everyone may change, as a new folder under C:\ or a user's
    // own: on Windows one made so here; under Wine, which reports ACLs made
    // from the Unix mode, /tmp (mode 1777: Everyone may write and delete).
    let tmp = tempfile::tempdir().unwrap();
    let open = if common::wine_skip("the ACL given to a test folder (Wine uses /tmp instead)") {
        let p = Path::new(r"Z:\tmp").join(format!("v6fw-acl-{}", std::process::id()));
        assert!(
            Path::new(r"Z:\tmp").is_dir(),
            "Z:\\tmp is the host's /tmp under Wine"
        );
        p
    } else {
        let p = tmp.path().join("open");
        dir_with(&p, "D:P(A;OICI;FA;;;WD)(A;OICI;FA;;;SY)");
        p
    };
    let dir = open.join("v6fw");
    let e = create_state_dir(&dir).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&open);
    assert!(e.contains("S-1-1-0 (Everyone)"), "{e}");
    assert!(e.contains("not safe for v6fw"), "{e}");
    // The directory itself is v6fw's; the folder above is what to change.
    assert!(
        e.contains("a folder above it may be changed")
            && e.contains(r"C:\ProgramData")
            && !e.contains("takeown"),
        "{e}"
    );
}

#[test]
fn a_link_where_the_log_goes_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("elsewhere.txt");
    std::fs::write(&target, "not the log").unwrap();
    let link = tmp.path().join("pfirewall.log");
    if let Err(e) = std::os::windows::fs::symlink_file(&target, &link) {
        // Creating a symbolic link needs a privilege not every account has.
        eprintln!("note: cannot make a symbolic link here ({e}): not checked");
        return;
    }
    if common::wine_skip(
        "a link where the log or a state file goes is refused (Wine makes the link but does not \
         report it as a reparse point)",
    ) {
        return;
    }
    let e = v6fw_api::winacl::open_append(&link, LOG_FILE_SDDL).unwrap_err();
    assert!(e.to_string().contains("never follows"), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "not the log");
    // A state directory holding such a link is refused too.
    let e = create_state_dir(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("pfirewall.log is a junction, symbolic link"),
        "{e}"
    );
}

#[test]
fn a_state_directory_v6fw_made_passes_its_own_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v6fw");
    create_state_dir(&dir).unwrap();
    std::fs::write(dir.join("policy.toml"), "").unwrap();
    create_state_dir(&dir).unwrap();
}

#[test]
fn a_state_directory_everyone_may_write_is_refused_with_the_fix() {
    if common::wine_skip("an existing state directory's own ACL (Wine keeps no file ACLs)") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v6fw");
    dir_with(&dir, "D:P(A;OICI;FA;;;WD)(A;OICI;FA;;;SY)");
    let e = create_state_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("S-1-1-0 (Everyone) may write"), "{e}");
    assert!(e.contains("takeown") && e.contains("icacls"), "{e}");
}
