#!/usr/bin/env bash
# The two set-up commands of the README, for a fresh machine with Rust stable:
#   ./dev.sh demo   build everything and run a real task in the sandbox
#   ./dev.sh test   build everything and run the whole test suite
# Both install the wasm32-wasip1 target when it is missing and build the
# sample tasks (a separate cargo workspace) into target/wasm32-wasip1/.
set -euo pipefail
cd "$(dirname "$0")"

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-wasip1; then
        rustup target add wasm32-wasip1
    fi
}

build_sample_tasks() {
    cargo sample-tasks --quiet
}

case "${1:-}" in
    demo)
        ensure_wasm_target
        build_sample_tasks
        echo "counting the primes below 10^8 in the sandbox (expected: 5761455)" >&2
        echo '{"start":0,"end":100000000}' |
            cargo run --quiet -p wasmgrid -- run target/wasm32-wasip1/release/primes.wasm
        echo
        ;;
    test)
        ensure_wasm_target
        build_sample_tasks
        cargo test --workspace
        ;;
    *)
        echo "usage: $0 demo|test" >&2
        exit 2
        ;;
esac
