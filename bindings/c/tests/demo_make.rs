//! `make demo` (through `make run-demo`, which it runs after building) fails when a
//! demo program is missing or exits non-zero, and passes when both succeed.

use std::path::Path;
use std::process::Command;

fn run_demo(sub: &str, publ: &str) -> std::process::ExitStatus {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo_dir = std::env::temp_dir().join(format!("shmbus-demo-test-{}", std::process::id()));
    Command::new(std::env::var("MAKE").unwrap_or_else(|_| "make".into()))
        .current_dir(dir)
        .arg("--no-print-directory")
        .arg("run-demo")
        .arg(format!("DEMO_SUB={sub}"))
        .arg(format!("DEMO_PUB={publ}"))
        .arg(format!("DEMO_DIR={}", demo_dir.display()))
        .env_remove("MAKEFLAGS")
        .status()
        .expect("run make")
}

#[test]
fn make_demo_fails_when_a_program_is_missing_or_fails() {
    if Command::new("make").arg("--version").output().is_err() {
        println!("SKIPPED: make not found");
        return;
    }
    let missing = "/nonexistent/shmbus-demo-subscriber";
    assert!(
        !run_demo(missing, "/bin/true").success(),
        "missing subscriber"
    );
    assert!(
        !run_demo("/bin/true", missing).success(),
        "missing publisher"
    );
    let (t, f) = ("/bin/true", "/bin/false");
    assert!(!run_demo(t, f).success(), "failing publisher");
    assert!(!run_demo(f, t).success(), "failing subscriber");
    assert!(run_demo(t, t).success(), "both succeed");
}
