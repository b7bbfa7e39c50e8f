//! `shmbus doctor`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus doctor`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus doctor`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`doctor` is not available in this build yet"))
}
