//! `shmbus completions bash|zsh|fish` prints a shell completion script (clap_complete);
//! `shmbus completions --man` and `shmbus man` print the man page (clap_mangen, roff).
//!
//! ```text
//! shmbus completions bash > /etc/bash_completion.d/shmbus
//! shmbus man | man -l -
//! ```

use clap::CommandFactory;
use clap_complete::Shell;

use crate::error::CliError;

/// Arguments of `shmbus completions`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell: bash, zsh or fish (also elvish, powershell).
    #[arg(required_unless_present = "man")]
    pub shell: Option<Shell>,
    /// Print the man page (roff) instead.
    #[arg(long, conflicts_with = "shell")]
    pub man: bool,
}

/// Runs `shmbus completions`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.shell {
        Some(shell) if !args.man => {
            let mut cmd = crate::Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "shmbus", &mut out);
            write_out(&out)
        }
        _ => man(),
    }
}

/// Prints the man page.
pub fn man() -> Result<(), CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(crate::Cli::command())
        .render(&mut out)
        .map_err(|e| CliError::new(format!("cannot render the man page: {e}")))?;
    write_out(&out)
}

fn write_out(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut so = std::io::stdout().lock();
    match so.write_all(bytes).and_then(|()| so.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::new(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}
