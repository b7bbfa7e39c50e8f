//! `shmbus ls`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus ls`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus ls`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`ls` is not available in this build yet"))
}
