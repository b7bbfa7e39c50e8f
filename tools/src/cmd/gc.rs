//! `shmbus gc`.

use crate::error::CliError;
use crate::Ctx;

/// Arguments of `shmbus gc`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `shmbus gc`.
pub fn run(_ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    Err(CliError::new("`gc` is not available in this build yet"))
}
