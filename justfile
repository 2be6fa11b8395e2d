# Trellis tasks. `just --list` shows them. (Install just with `cargo install just`.)

# Start the server (embedded SQLite in ./data).
run:
    cargo run --release

# Every test, Rust and TypeScript (database suites on SQLite; with TEST_DATABASE_URL on PostgreSQL too, else ignored).
test:
    cargo test --workspace

# The tests with the PostgreSQL suites against the local server (switching to or from `test` rebuilds the server).
test-pg:
    TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test --workspace

# What CI runs.
ci:
    bash .ci/run

# Three replicas behind HAProxy on 127.0.0.1:8080, sharing PostgreSQL, Redis and a secret (deploy/README.md).
cluster:
    bash deploy/cluster.sh up

# Stop what `just cluster` started.
cluster-down:
    bash deploy/cluster.sh down

# Load generator: Trellis procedures next to a bare HTTP handler, side by side.
bench:
    cargo build --release -p trellis-server --bin trellis
    cargo run --release -p trellis-bench

# The Redis limiter next to the in-process one, measured by wrk (out of process; needs wrk).
bench-redis:
    cargo build --release -p trellis-server
    bash examples/bench/wrk/redis-limiter.sh

fmt:
    cargo fmt --all

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate the TypeScript bindings, the Rust client's methods and openrpc.json from the schema crate.
gen:
    cargo run -q -p trellis-schema --bin gen

# Fail if the generated files are stale.
check-gen:
    cargo run -q -p trellis-schema --bin gen -- --check
