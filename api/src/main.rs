//! The `v6fw` binary: parses the command line and maps errors to an exit code.
//!
//! The command line ([`cli`]), one module per subcommand ([`cmd`]) and the
//! shared printing ([`output`]) are the binary's own: they compose the
//! library (`v6fw_api`'s manager, store, control plane and log) and are no
//! public API. They are also the only place that uses `anyhow`, because a
//! command only adds context to an error and prints it; the libraries return
//! typed errors a caller can match on.

mod cli;
mod cmd;
mod output;

fn main() -> std::process::ExitCode {
    cli::main()
}
