//! `shmbus replay`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus replay`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus replay`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`replay` is not available in this build yet"))
}
