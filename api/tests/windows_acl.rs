//! The ACLs v6fw gives what it creates on Windows (api/src/winacl.rs): the
//! state directory (SYSTEM and Administrators full control, Users read,
//! inherited) and the log file (SYSTEM and Administrators only).
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
    for ace in [
        "(A;OICI;FA;;;SY)",
        "(A;OICI;FA;;;BA)",
        "(A;OICI;FR",
        ";;;BU)",
    ] {
        assert!(got.contains(ace), "{ace} in {got}");
    }
    assert!(!got.contains(";;;WD)") && !got.contains(";;;AU)"), "{got}");
    let file = dir.join("policy.toml");
    std::fs::write(&file, "x").unwrap();
    let inherited = dacl(&file);
    assert!(
        inherited.contains(";;;BA)") && !inherited.contains(";;;WD)"),
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
