//! `shmbus info`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus info`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus info`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`info` is not available in this build yet"))
}
