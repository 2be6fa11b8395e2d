//! The TypeScript SDK's own suite (`npm test` in `sdk-ts`), run against this
//! build of the server, so that `cargo test --workspace` tests everything.

use std::path::Path;
use std::process::Command;

fn npm(dir: &Path, args: &[&str]) -> std::process::ExitStatus {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    Command::new(npm)
        .args(args)
        .current_dir(dir)
        .env("TRELLIS_BIN", env!("CARGO_BIN_EXE_trellis"))
        .status()
        .unwrap_or_else(|e| panic!("`npm {}` could not start ({e}): Node.js 20+ and npm are needed", args.join(" ")))
}

#[test]
fn the_typescript_sdk_suite_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-ts");
    if !dir.join("node_modules").exists() {
        assert!(npm(&dir, &["ci", "--no-audit", "--no-fund"]).success(), "npm ci failed in sdk-ts");
    }
    assert!(npm(&dir, &["test"]).success(), "the TypeScript SDK suite failed (see its output above)");
}
