//! `shmbus publish`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus publish`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus publish`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new(
        "`publish` is not available in this build yet",
    ))
}
