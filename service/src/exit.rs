//! Exit codes (sysexits.h) and command-line parsing that maps usage errors to them, for
//! both binaries: a wrong flag, a missing argument or a bad value exits 64 (`EX_USAGE`),
//! like a bad configuration, so that scripts and systemd (`RestartPreventExitStatus=64`)
//! can tell "fix the command" from "try again".

use std::process::ExitCode;

/// The command or its configuration is wrong: fix it, do not retry.
pub const EX_USAGE: u8 = 64;
/// A needed file (state directory, buffer, database, TLS file) cannot be created or used.
pub const EX_CANTCREAT: u8 = 73;

/// Parses the command line. On a usage error prints clap's message and returns exit
/// 64; `--help` and `--version` print and return 0.
pub fn parse_args<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EX_USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Prints `program: message` and returns exit 64.
pub fn usage_error(program: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{program}: {message}");
    ExitCode::from(EX_USAGE)
}
