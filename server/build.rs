//! Sets `cfg(postgres_tests)` when `TEST_DATABASE_URL` is set at build time,
//! so the tests' PostgreSQL variants are built to run, and are otherwise
//! reported as ignored rather than passing without having run. The server
//! itself never reads the flag.

fn main() {
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
