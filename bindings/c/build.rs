//! Gives libshmbus.so its SONAME, `libshmbus.so.0`: programs linked against it record
//! that name, so a later 0.x library with the same ABI major replaces it in place.
//!
//! The `libshmbus.so.0` link next to the built library is made by `make lib` (and by
//! the tests and the benchmark that link C programs against the build directory);
//! `make install` installs `libshmbus.so.<version>` with the `.so.0` and `.so` links.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let family = std::env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    // ELF platforms only: macOS uses install names, Windows has no SONAME.
    if family == "unix" && os != "macos" && os != "ios" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libshmbus.so.0");
    }
}
