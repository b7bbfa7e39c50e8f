//! `replay --create`: the destination topic made with the stored event type.

use shmbus::schema::Schema;
use shmbus::{Raw, Topic};

use super::Args;
use crate::error::CliError;
use crate::target::{bus_creating, open_topic};
use crate::Ctx;

/// Opens the destination topic, creating it (and the bus) with the stored event type
/// if it does not exist. Returns whether it was created here.
pub fn create_or_open(
    ctx: &Ctx,
    args: &Args,
    schema: Option<&Schema>,
    type_id: u64,
) -> Result<(Topic<Raw>, bool), CliError> {
    if let Err(e) = shmbus::check_name(&args.to) {
        return Err(CliError::usage(format!("bad topic name: {e}")));
    }
    let bus = bus_creating(ctx)?;
    if bus.ring_path(&args.to).exists() {
        return Ok((open_topic(&bus, &args.to)?, false));
    }
    let mut builder = bus.topic(&args.to);
    if let Some(c) = args.capacity {
        builder = builder.capacity(c);
    }
    let builder = match (schema, type_id) {
        (Some(s), id) if id != 0 => builder.with_schema(s.clone(), id),
        (None, 0) => builder,
        (Some(_), _) => {
            return Err(CliError::new(format!(
                "the segments of {:?} carry a schema but type id 0: cannot create {:?} \
                 with their event type",
                args.topic, args.to
            )))
        }
        (None, _) => {
            return Err(CliError::new(format!(
                "cannot create {:?}: no sealed segment of {:?} holds the event type's schema \
                 (seal the last one with `shmbus verify --repair`, or create the topic with \
                 the producer)",
                args.to, args.topic
            )))
        }
    };
    let topic = builder.open_or_create().map_err(|e| match e {
        shmbus::OpenError::InvalidConfig(why) => {
            CliError::usage(format!("cannot create topic {:?}: {why}", args.to))
        }
        e => CliError::new(format!("cannot create topic {:?}: {e}", args.to)),
    })?;
    Ok((topic, true))
}
