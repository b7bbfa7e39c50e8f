//! `shmbus ls`: one line per topic of the bus with its capacity, mode, participants
//! (alive/dead), events, tail position and event type. Topics whose ring file cannot
//! be opened are listed with the reason instead of failing the listing.
//!
//! EVENTS counts the events published on the topic since it was created, by every
//! publisher that ever attached (a monotonic counter kept in the ring header: it never
//! drops when a publisher detaches or dies); TAIL is the byte position the next record
//! will take. `ls` only reads the ring header: it joins no topic and writes nothing.

use serde::Serialize;

use crate::error::CliError;
use crate::output::{human_bytes, json_line, out_line, print_table, right, table, Format};
use crate::target::existing_bus;
use crate::topics::{counts, mode_name, type_name};
use crate::Ctx;

/// Arguments of `shmbus ls`.
#[derive(clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Row<'a> {
    topic: &'a str,
    capacity: u64,
    mode: &'static str,
    producers_alive: usize,
    producers_dead: usize,
    subscribers_alive: usize,
    subscribers_dead: usize,
    subscribers_detached: usize,
    events: u64,
    bytes: u64,
    tail: u64,
    #[serde(rename = "type")]
    type_name: String,
}

#[derive(Serialize)]
struct Unreadable<'a> {
    topic: &'a str,
    error: String,
}

/// Runs `shmbus ls`.
pub fn run(ctx: &Ctx, _args: Args) -> Result<(), CliError> {
    let bus = existing_bus(ctx)?;
    let names = bus
        .topics()
        .map_err(|e| CliError::new(format!("cannot list bus {:?}: {e}", ctx.bus)))?;
    let mut t = table(&[
        "TOPIC",
        "CAPACITY",
        "MODE",
        "PRODUCERS",
        "SUBSCRIBERS",
        "EVENTS",
        "TAIL",
        "TYPE",
    ]);
    for name in &names {
        let topic = match bus.topic(name).open() {
            Ok(t) => t,
            Err(e) => {
                match ctx.format {
                    Format::Json => json_line(&Unreadable {
                        topic: name,
                        error: e.to_string(),
                    }),
                    Format::Table => {
                        let mut row = vec![name.clone()];
                        row.extend(std::iter::repeat_n("-".to_string(), 6));
                        row.push(format!("unreadable: {e}"));
                        t.add_row(row);
                    }
                }
                continue;
            }
        };
        let c = counts(&topic);
        let stats = topic.stats();
        let row = Row {
            topic: name,
            capacity: topic.capacity(),
            mode: mode_name(topic.mode()),
            producers_alive: c.producers_alive,
            producers_dead: c.producers_dead,
            subscribers_alive: c.subscribers_alive,
            subscribers_dead: c.subscribers_dead,
            subscribers_detached: c.detached_named,
            events: stats.records,
            bytes: stats.bytes,
            tail: stats.tail,
            type_name: type_name(&topic),
        };
        match ctx.format {
            Format::Json => json_line(&row),
            Format::Table => {
                let mut subs = format!("{}/{}", c.subscribers_alive, c.subscribers_dead);
                if c.detached_named > 0 {
                    subs.push_str(&format!(" +{} detached", c.detached_named));
                }
                t.add_row(vec![
                    name.into(),
                    right(human_bytes(row.capacity)),
                    row.mode.into(),
                    format!("{}/{}", c.producers_alive, c.producers_dead).into(),
                    subs.into(),
                    right(row.events),
                    right(row.tail),
                    row.type_name.into(),
                ]);
            }
        }
    }
    if ctx.format == Format::Table {
        if names.is_empty() {
            out_line(&format!("no topics on bus {:?}", ctx.bus));
        } else {
            print_table(&mut t);
            out_line("(producers and subscribers: alive/dead; events: published since the topic was created)");
        }
    }
    Ok(())
}
