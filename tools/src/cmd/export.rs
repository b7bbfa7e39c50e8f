//! `shmbus export`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus export`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus export`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`export` is not available in this build yet"))
}
