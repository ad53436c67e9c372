#!/usr/bin/env bash
# The two set-up commands of the README, for a fresh machine with Rust stable:
#   ./dev.sh demo   build everything, then run a broker, 4 agents and a real
#                   workload (π(10^9) in 100 tasks, reduced by sum-u64)
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
        cargo build --quiet -p wasmgrid -p wasmgrid-broker -p wasmgrid-agent
        shift
        "${CARGO_TARGET_DIR:-target}/debug/wasmgrid" demo "$@"
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
