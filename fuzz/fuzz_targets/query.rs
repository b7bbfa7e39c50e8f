#![no_main]
//! cargo-fuzz target `query`: see `tests/fuzz/targets.rs` for the input format.

#[allow(dead_code)]
#[path = "../../tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::query(data));
