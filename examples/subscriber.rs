//! Receive `Tick` events from a topic, check their order and print the first as JSON
//! (rendered from the schema stored in the topic, not from the `Tick` type).
//!
//! ```text
//! cargo run --release --example subscriber -- --bus /dev/shm/shmbus-ex --topic ticks --count 100000
//! ```
//!
//! It starts at the earliest record still in the ring and waits up to 30 s for each
//! event; start it before the publisher so that nothing is overwritten before it attaches.

mod common;

use common::{open_topic, rate, receive, subscriber, Args, Res};

const USAGE: &str = "subscriber --bus NAME|DIR --topic NAME --count N [--name NAME]";

fn main() {
    if let Err(e) = run() {
        eprintln!("subscriber: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args = Args::parse(USAGE, &["bus", "topic", "count", "name"])?;
    // The same rule as the CLI's --bus: a name under $SHMBUS_DIR, a path when it has a '/'.
    let bus = shmbus::topic::names::bus_dir(args.req("bus")?);
    let topic_name = args.req("topic")?;
    let count = args.num("count", None)?;
    let name = args.get("name").unwrap_or("example-subscriber");

    let topic = open_topic(&bus, topic_name)?;
    let mut sub = subscriber(&topic, name)?;
    eprintln!(
        "subscriber `{name}` attached to {}/{topic_name}, waiting for {count} events",
        bus.display()
    );
    let r = receive(&mut sub, count)?;
    if count > 0 {
        println!("first event: {}", r.first_json);
    }
    let symbols: Vec<String> = r
        .per_symbol
        .iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect();
    println!(
        "received {} events in order ({}) in {:.3} s ({})",
        r.events,
        symbols.join(", "),
        r.elapsed.as_secs_f64(),
        rate(r.events, r.elapsed)
    );
    Ok(())
}
