//! One module per subcommand: each has `Args` (clap) and `run`. Commands do not use
//! each other; what they share lives beside `cmd/`.

pub mod completions;
pub mod create;
pub mod doctor;
pub mod export;
pub mod gc;
pub mod info;
pub mod ls;
pub mod publish;
pub mod query;
pub mod record;
pub mod replay;
pub mod stat;
pub mod tail;
pub mod verify;
