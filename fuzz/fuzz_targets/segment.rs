#![no_main]
//! cargo-fuzz target `segment`: see `tests/fuzz/targets.rs` for the input format.

#[allow(dead_code)]
#[path = "../../tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::segment(data));
