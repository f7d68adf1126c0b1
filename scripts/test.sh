#!/usr/bin/env bash
# Every test of the project, in one command: formatting and lints, unit tests, and the integration
# tests against real go, docker-registry, skopeo, umoci, dockerd and kubectl; the tools missing
# from Debian's packages are installed first (scripts/install-test-tools.sh, root or sudo), the
# Kubernetes binaries are built on first use (tests/k8s/build.sh). Go and Rust must be there.
set -euo pipefail
cd "$(dirname "$0")/.."
# Go may live outside the default PATH (e.g. /usr/local/go/bin).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
bash scripts/install-test-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build -p ko-cli
cargo test --workspace
# Python (python/, issue 5): build the extension into a venv kept under the cargo target dir,
# type-check the typed example with mypy --strict, then run pytest against the real registry and
# Go fixtures (it uses the ko binary built above for the CLI comparison).
py_venv="${CARGO_TARGET_DIR:-$PWD/target}/python-venv"
[ -x "$py_venv/bin/python" ] || python3 -m venv "$py_venv"
for tool in maturin pytest mypy; do
  [ -x "$py_venv/bin/$tool" ] || { "$py_venv/bin/python" -m pip install --quiet "maturin>=1.9,<2" pytest mypy; break; }
done
(cd python && VIRTUAL_ENV="$py_venv" PATH="$py_venv/bin:$PATH" maturin develop)
(cd python && "$py_venv/bin/mypy" --strict examples/typed_example.py)
"$py_venv/bin/python" -m pytest -p no:cacheprovider python/tests
# Node (node/, issue 10): the dev dependencies from package-lock.json (without running the
# package's install script, which would build a release addon), the addon built in debug from
# this workspace, the TypeScript example checked with tsc --strict, then the node:test suite
# against the real registry and Go fixtures (it also uses the ko binary built above).
(cd node && npm ci --ignore-scripts --no-audit --no-fund)
(cd node && node scripts/build.js --debug)
(cd node && npx tsc --noEmit --strict -p examples)
(cd node && node --test test/*.test.js)
