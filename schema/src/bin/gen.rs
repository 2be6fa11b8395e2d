//! Run with `just gen` (`cargo run -p trellis-schema --bin gen`): writes the TypeScript bindings
//! (`sdk-ts/src/generated/`) and `schema/openrpc.json` from the procedure list.
//!
//! `just check-gen` (`cargo run -p trellis-schema --bin gen -- --check`) writes nothing and fails
//! when a generated file on disk differs from what the schema crate makes now (CI's drift check).

use std::path::Path;
use std::process::ExitCode;

use trellis_schema::codegen;

fn main() -> ExitCode {
    let mut check = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: gen [--check]\n\nWrites the generated files; with --check, only reports stale ones.");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("gen: unknown argument {other:?} (usage: gen [--check])");
                return ExitCode::from(2);
            }
        }
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the schema crate lives in the workspace");
    let files = codegen::files();

    if check {
        match codegen::stale(root, &files) {
            Ok(stale) if stale.is_empty() => ExitCode::SUCCESS,
            Ok(stale) => {
                eprintln!("gen --check: these generated files are stale (missing or edited, or the schema changed):");
                for (_, file) in &stale {
                    eprintln!("  {}", file.path);
                }
                eprintln!("run `just gen` (cargo run -p trellis-schema --bin gen) and commit the result");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("gen --check: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match codegen::write(root, &files) {
            Ok(changed) => {
                for path in &changed {
                    println!("wrote {}", path.strip_prefix(root).unwrap_or(path).display());
                }
                if changed.is_empty() {
                    println!("generated files are current");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gen: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
