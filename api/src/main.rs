//! The `v6fw` binary: parses the command line and maps errors to an exit code.

fn main() -> std::process::ExitCode {
    v6fw_api::cli::main()
}
