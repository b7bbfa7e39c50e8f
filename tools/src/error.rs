//! The one error type of the CLI: a message for one line on stderr and an exit code.

use std::fmt;

/// A failed command: printed as `shmbus: <message>` and exiting with `code`.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A runtime error (exit code 1).
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: one_line(message.into()),
            code: 1,
        }
    }

    /// Bad usage that clap could not catch, such as a malformed expression (exit code 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: one_line(message.into()),
            code: 2,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Keeps an error on one line: newlines from nested errors become "; ".
fn one_line(s: String) -> String {
    if s.contains('\n') {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        s
    }
}
