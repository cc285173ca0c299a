//! `v6fw service install`'s check of where v6fw.exe is: the service runs
//! it as LocalSystem at every start, with WinDivert.dll and WinDivert64.sys
//! (and any DLL Windows looks for) from the same folder. If a user who is no
//! administrator may write that folder or a file in it (Downloads, a new
//! folder under `C:\`), or delete or rename it through a folder above, that
//! user could run code as SYSTEM. Only SYSTEM, Administrators and
//! TrustedInstaller are trusted here; not the installing administrator's own
//! account, whose unelevated programs could write what it owns.

use std::path::Path;

use v6fw_api::winacl::audit::{check_tree, Trust};

/// Where to install from instead.
pub(super) const INSTALL_DIR: &str = r"C:\Program Files\v6fw";

/// Refuses (with `force`: warns about) an `exe` whose folder or files are
/// not SYSTEM's and Administrators' alone.
pub(super) fn check_folder(exe: &Path, force: bool) -> anyhow::Result<()> {
    let Some(dir) = exe.parent() else {
        anyhow::bail!("{} has no folder", exe.display());
    };
    let fix = format!(
        "Put v6fw.exe, WinDivert.dll and WinDivert64.sys in {INSTALL_DIR} (only Administrators \
         may write there) and run `\"{INSTALL_DIR}\\v6fw.exe\" service install` from an elevated \
         prompt; or pass --force to install from here anyway"
    );
    let Err(e) = check_tree(dir, &Trust::well_known(), &fix) else {
        return Ok(());
    };
    if !force {
        anyhow::bail!("refusing to install the service v6fw (it runs as LocalSystem): {e}");
    }
    eprintln!(
        "warning: installing anyway (--force), though whoever may write there can run code as \
         SYSTEM: {e}"
    );
    Ok(())
}
