//! `shmbus record`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus record`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus record`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`record` is not available in this build yet"))
}
