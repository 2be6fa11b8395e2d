//! The README's test command fails when the committed bindings
//! (`sdk-ts/src/generated/`, `schema/openrpc.json`) differ from what the
//! schema makes now, as `just check-gen` does in CI.

use std::path::Path;

use trellis_schema::codegen;

#[test]
fn generated_files_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the schema crate lives in the workspace");
    let files = codegen::files();
    let stale = codegen::stale(root, &files).expect("generated files readable");
    let names: Vec<&str> = stale.iter().map(|(_, f)| f.path).collect();
    assert!(names.is_empty(), "stale generated files {names:?}: run `just gen` and commit the result");
}
