//! The committed `include/shmbus.h` must be what cbindgen generates from the sources.
//!
//! Needs the `cbindgen` CLI (`cargo install cbindgen --locked`); without it the test
//! prints why and passes, so CI must install it for the check to mean anything.

use std::path::Path;
use std::process::Command;

#[test]
fn committed_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cbindgen = std::env::var("CBINDGEN").unwrap_or_else(|_| "cbindgen".into());
    if Command::new(&cbindgen).arg("--version").output().is_err() {
        println!(
            "SKIPPED: `{cbindgen}` not found; install it with `cargo install cbindgen --locked`"
        );
        return;
    }
    let out = std::env::temp_dir().join(format!("shmbus-h-{}.h", std::process::id()));
    let status = Command::new(&cbindgen)
        .current_dir(dir)
        .args(["--config", "cbindgen.toml", "--quiet", "--output"])
        .arg(&out)
        .status()
        .expect("run cbindgen");
    assert!(status.success(), "cbindgen failed: {status}");
    let fresh = std::fs::read_to_string(&out).expect("read the generated header");
    let _ = std::fs::remove_file(&out);
    let committed =
        std::fs::read_to_string(dir.join("include/shmbus.h")).expect("read include/shmbus.h");
    assert!(
        fresh == committed,
        "bindings/c/include/shmbus.h is stale: run `make -C bindings/c header` and commit it"
    );
}
