//! Publish `Tick` events to a topic.
//!
//! ```text
//! cargo run --release --example publisher -- --bus /dev/shm/shmbus-ex --topic ticks --count 100000
//! ```
//!
//! Start `--example subscriber` with the same `--bus`/`--topic` first to watch them.

mod common;

use common::{open_topic, publish, rate, Args, Res};

const USAGE: &str = "publisher --bus NAME|DIR --topic NAME --count N [--symbol SYM]";

fn main() {
    if let Err(e) = run() {
        eprintln!("publisher: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args = Args::parse(USAGE, &["bus", "topic", "count", "symbol"])?;
    // The same rule as the CLI's --bus: a name under $SHMBUS_DIR, a path when it has a '/'.
    let bus = shmbus::topic::names::bus_dir(args.req("bus")?);
    let topic_name = args.req("topic")?;
    let count = args.num("count", None)?;
    let symbol = args.get("symbol").unwrap_or("ABC");

    let topic = open_topic(&bus, topic_name)?;
    let r = publish(&topic, symbol, count)?;
    println!(
        "published {} events to {}/{} in {:.3} s ({})",
        r.events,
        bus.display(),
        topic_name,
        r.elapsed.as_secs_f64(),
        rate(r.events, r.elapsed)
    );
    Ok(())
}
