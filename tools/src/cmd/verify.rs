//! `shmbus verify`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus verify`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus verify`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`verify` is not available in this build yet"))
}
