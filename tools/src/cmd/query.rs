//! `shmbus query`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus query`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus query`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`query` is not available in this build yet"))
}
