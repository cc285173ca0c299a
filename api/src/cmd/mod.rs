//! One module per `v6fw` subcommand.

pub mod check;
pub mod completions;
pub mod connections;
pub mod explain;
pub mod firewall;
pub mod load;
pub mod log;
pub mod man;
pub mod ports;
pub mod replay;
pub mod run;
pub mod service;
pub mod stats;
