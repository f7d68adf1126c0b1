#!/usr/bin/env bash
# Every test of the project, in one command: formatting and lints, unit tests, and the integration
# tests against real go, docker-registry, skopeo and umoci (which must be installed: see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build -p ko-cli
cargo test --workspace
