//! A short soak in CI: the code of `examples/soak.rs` (producers, named and anonymous
//! subscribers, blocking and spinning, and a recorder, as processes SIGKILLed and
//! restarted on a random schedule), with its end-to-end check that every committed
//! event reached every surviving subscriber and the store exactly once, in order, and
//! that nothing leaked. The children are this test binary re-run with a role.

#[allow(dead_code)]
#[path = "../examples/soak.rs"]
mod soak;

#[test]
fn soak_with_random_kills_loses_and_duplicates_nothing() {
    if soak::is_child() {
        if let Err(e) = soak::run(Vec::new()) {
            eprintln!("soak child (pid {}): error: {e}", std::process::id());
            std::process::exit(1);
        }
        return;
    }
    let args = ["--duration", "12s", "--rate", "2000", "--seed", "11"];
    match soak::run(args.iter().map(|s| s.to_string()).collect()) {
        Ok(summary) => {
            eprintln!("{summary}");
            assert!(summary.starts_with("soak: OK"), "{summary}");
        }
        Err(e) => panic!("soak failed: {e}"),
    }
}
