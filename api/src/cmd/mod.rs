//! One module per `v6fw` subcommand.

pub mod replay;
