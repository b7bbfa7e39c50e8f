//! `shmbus create TOPIC [--raw | --schema FILE] [--capacity SIZE] [--lossy]`: creates a
//! topic, so a bus can be set up, fed (`shmbus publish`) and inspected without writing
//! Rust. A typed topic takes its schema from a JSON file in the form that `shmbus info
//! --format json` prints (see `schema_file`); a topic created this way is the same as
//! one created by the Rust type the schema came from.

use std::path::PathBuf;

use serde::Serialize;
use shmbus::OpenError;

use crate::error::CliError;
use crate::output::{human_bytes, json_line, out_line, Format};
use crate::target::bus_creating;
use crate::topics::mode_name;
use crate::units::parse_size;
use crate::Ctx;

/// Arguments of `shmbus create`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic to create: [A-Za-z0-9._-], 1 to 128 characters, not starting with '.'.
    pub topic: String,
    /// Carry raw bytes (the default when no --schema is given).
    #[arg(long, conflicts_with = "schema")]
    pub raw: bool,
    /// Carry typed events described by this JSON schema file (- for stdin): the
    /// "schema" object of `shmbus info --format json`, or that whole output.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Ring capacity, a power of two from 4KiB to 1TiB; the largest event is a quarter
    /// of it. Sizes: 65536, 64KiB, 16MiB, 1GiB.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub capacity: u64,
    /// Lossy delivery: producers never wait; slow subscribers skip what was overwritten.
    #[arg(long)]
    pub lossy: bool,
}

#[derive(Serialize)]
struct Created<'a> {
    topic: &'a str,
    path: String,
    capacity: u64,
    mode: &'static str,
    #[serde(rename = "type")]
    type_name: String,
    type_id: u64,
}

/// Runs `shmbus create`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    if let Err(e) = shmbus::check_name(&args.topic) {
        return Err(CliError::usage(format!("bad topic name: {e}")));
    }
    let described = match &args.schema {
        Some(path) => Some(read_schema(path)?),
        None => None,
    };
    let bus = bus_creating(ctx)?;
    if bus.ring_path(&args.topic).exists() {
        return Err(CliError::new(format!(
            "topic {:?} already exists on bus {} (see `shmbus info {}`)",
            args.topic,
            bus.dir().display(),
            args.topic
        )));
    }
    let mut builder = bus.topic(&args.topic).capacity(args.capacity);
    if args.lossy {
        builder = builder.lossy();
    }
    if let Some((schema, type_id)) = described {
        builder = builder.with_schema(schema, type_id);
    }
    let topic = builder.open_or_create().map_err(|e| match e {
        OpenError::InvalidConfig(why) => {
            CliError::usage(format!("cannot create topic {:?}: {why}", args.topic))
        }
        e => CliError::new(format!("cannot create topic {:?}: {e}", args.topic)),
    })?;
    let row = Created {
        topic: topic.name(),
        path: topic.path().display().to_string(),
        capacity: topic.capacity(),
        mode: mode_name(topic.mode()),
        type_name: crate::topics::type_name(&topic),
        type_id: topic.meta().type_id,
    };
    match ctx.format {
        Format::Json => json_line(&row),
        Format::Table => out_line(&format!(
            "created topic {:?} ({}, {}, {}) at {}",
            row.topic,
            human_bytes(row.capacity),
            row.mode,
            row.type_name,
            row.path
        )),
    }
    Ok(())
}

/// Reads and checks a schema file (`-` is stdin).
fn read_schema(path: &std::path::Path) -> Result<(shmbus::schema::Schema, u64), CliError> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| CliError::new(format!("cannot read schema file {}: {e}", path.display())))?;
    crate::schema_file::parse(&text)
        .map_err(|e| CliError::new(format!("bad schema file {}: {e}", path.display())))
}
