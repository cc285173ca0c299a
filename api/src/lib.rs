//! v6fw-api: the OpenPorts administration API, the policy store, the control
//! plane and the `v6fw` command line.

pub mod cli;
pub mod cmd;
pub mod control;
pub mod fw;
pub mod interfaces;
pub mod log;
pub mod output;
#[cfg(unix)]
mod private_dir;
pub mod store;
#[cfg(windows)]
pub mod winacl;
