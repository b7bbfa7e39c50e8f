//! `shmbus stat`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus stat`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus stat`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`stat` is not available in this build yet"))
}
