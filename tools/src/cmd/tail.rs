//! `shmbus tail`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus tail`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus tail`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`tail` is not available in this build yet"))
}
