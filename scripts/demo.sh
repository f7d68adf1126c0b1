#!/usr/bin/env bash
# The main job on a fresh machine: build `ko`, then build examples/hello into an image on the
# built-in base and publish it to a local OCI layout (no registry, no network). Prints the reference.
# Usage: bash scripts/demo.sh [LAYOUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
layout=${1:-$(mktemp -d)/layout}
cargo build --release --quiet -p ko-cli --manifest-path "$root/Cargo.toml"
cd "$root/examples/hello"
"$root/target/release/ko" build --push=false --oci-layout-path "$layout" .
