//! `shmbus ls`: one line per topic of the bus with its capacity, mode, participants
//! (alive/dead), tail position and event type. Topics whose ring file cannot be opened
//! are listed with the reason instead of failing the whole listing.

use shmbus::{Mode, Raw, SubscriberState, Topic};

use crate::error::CliError;
use crate::output::Format;
use crate::report::{human_bytes, out_line, Obj, Table};
use crate::target::existing_bus;
use crate::Ctx;

/// Arguments of `shmbus ls`.
#[derive(clap::Args)]
pub struct Args {}

/// Participant counts of a topic.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Producer slots whose process runs.
    pub producers_alive: usize,
    /// Producer slots whose process is gone.
    pub producers_dead: usize,
    /// Attached subscribers whose process runs.
    pub subscribers_alive: usize,
    /// Attached subscribers whose process is gone, and evicted ones.
    pub subscribers_dead: usize,
    /// Named subscribers with no process attached (their position is kept).
    pub detached_named: usize,
}

/// Counts a topic's participants.
pub fn counts(topic: &Topic<Raw>) -> Counts {
    let mut c = Counts::default();
    for p in topic.producers() {
        if p.alive {
            c.producers_alive += 1;
        } else {
            c.producers_dead += 1;
        }
    }
    for s in topic.subscribers() {
        match s.state {
            SubscriberState::Active if s.alive => c.subscribers_alive += 1,
            SubscriberState::Detached => c.detached_named += 1,
            _ => c.subscribers_dead += 1,
        }
    }
    c
}

/// `reliable` or `lossy`.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Reliable => "reliable",
        Mode::Lossy => "lossy",
    }
}

/// The event type name of a topic, `raw` for raw topics.
pub fn type_name(topic: &Topic<Raw>) -> String {
    topic
        .schema()
        .map(|s| s.type_name().to_string())
        .unwrap_or_else(|| "raw".into())
}

/// Runs `shmbus ls`.
pub fn run(ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    let bus = existing_bus(ctx)?;
    let names = bus
        .topics()
        .map_err(|e| CliError::new(format!("cannot list bus {:?}: {e}", ctx.bus)))?;
    let mut table = Table::new(&[
        "TOPIC",
        "CAPACITY",
        "MODE",
        "PRODUCERS",
        "SUBSCRIBERS",
        "TAIL",
        "TYPE",
    ]);
    for name in &names {
        let topic = match bus.topic(name).open() {
            Ok(t) => t,
            Err(e) => {
                match ctx.format {
                    Format::Json => out_line(
                        &Obj::new()
                            .str("topic", name)
                            .str("error", &e.to_string())
                            .finish(),
                    ),
                    Format::Table => table.row(vec![
                        name.clone(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        format!("unreadable: {e}"),
                    ]),
                }
                continue;
            }
        };
        let c = counts(&topic);
        match ctx.format {
            Format::Json => out_line(
                &Obj::new()
                    .str("topic", name)
                    .u64("capacity", topic.capacity())
                    .str("mode", mode_name(topic.mode()))
                    .u64("producers_alive", c.producers_alive as u64)
                    .u64("producers_dead", c.producers_dead as u64)
                    .u64("subscribers_alive", c.subscribers_alive as u64)
                    .u64("subscribers_dead", c.subscribers_dead as u64)
                    .u64("subscribers_detached", c.detached_named as u64)
                    .u64("tail", topic.tail())
                    .str("type", &type_name(&topic))
                    .finish(),
            ),
            Format::Table => {
                let mut subs = format!("{}/{}", c.subscribers_alive, c.subscribers_dead);
                if c.detached_named > 0 {
                    subs.push_str(&format!(" +{} detached", c.detached_named));
                }
                table.row(vec![
                    name.clone(),
                    human_bytes(topic.capacity()),
                    mode_name(topic.mode()).into(),
                    format!("{}/{}", c.producers_alive, c.producers_dead),
                    subs,
                    topic.tail().to_string(),
                    type_name(&topic),
                ])
            }
        }
    }
    if ctx.format == Format::Table {
        if table.is_empty() {
            out_line(&format!("no topics on bus {:?}", ctx.bus));
        } else {
            table.print();
            out_line("(producers and subscribers: alive/dead)");
        }
    }
    Ok(())
}
