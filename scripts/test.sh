#!/usr/bin/env bash
# Every test of the project, in one command: formatting and lints, unit tests, the integration
# tests against real go, docker-registry, skopeo, umoci, dockerd and kubectl, the Python and Node
# suites, and the C and C++ suites (cmake, gcc/g++, GoogleTest, valgrind, pkg-config); the tools
# missing from Debian's packages are installed first (scripts/install-test-tools.sh, root or
# sudo), the Kubernetes binaries are built on first use (tests/k8s/build.sh). Go and Rust must be there.
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
# C and C++ (bindings/, issue 9): install libko with its install script into a prefix under the
# cargo target dir, then build with the system gcc/g++ and CMake, against that installed copy: the
# C suite (ctest: linked shared, linked static, and under valgrind), the header checks, the C++
# GoogleTest suite (shared and static; -V shows gtest's own summary), and the examples, once with
# pkg-config and once as a CMake consumer (find_package(ko)).
libko_target="${CARGO_TARGET_DIR:-$PWD/target}"
case "$libko_target" in /*) ;; *) libko_target="$PWD/$libko_target" ;; esac
libko_prefix="$libko_target/libko-prefix"
libko_build="$libko_target/libko-build"
rm -rf "$libko_prefix"
PREFIX="$libko_prefix" PROFILE=debug bash bindings/c/install.sh
export KO_CLI="$libko_target/debug/ko"
cmake -S bindings/c/tests -B "$libko_build/c-tests" -DCMAKE_PREFIX_PATH="$libko_prefix" >/dev/null
cmake --build "$libko_build/c-tests" -j 2 >/dev/null
ctest --test-dir "$libko_build/c-tests" --output-on-failure -j 2
cmake -S bindings/cpp/tests -B "$libko_build/cpp-tests" -DCMAKE_PREFIX_PATH="$libko_prefix" >/dev/null
cmake --build "$libko_build/cpp-tests" -j 2 >/dev/null
ctest --test-dir "$libko_build/cpp-tests" --output-on-failure -V
libko_layout=$(mktemp -d)
trap 'rm -rf "$libko_layout"' EXIT
export PKG_CONFIG_PATH="$libko_prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046 # pkg-config's output is a list of words
cc -std=c99 -Wall -Wextra -Werror examples/libko/build.c $(pkg-config --cflags --libs ko) -o "$libko_build/build_pkg_config"
LD_LIBRARY_PATH="$libko_prefix/lib" "$libko_build/build_pkg_config" examples/hello "$libko_layout/pkg-config"
skopeo inspect "oci:$libko_layout/pkg-config" >/dev/null
cmake -S examples/libko -B "$libko_build/examples" -DCMAKE_PREFIX_PATH="$libko_prefix" >/dev/null
cmake --build "$libko_build/examples" -j 2 >/dev/null
for example in build_c build_c_static build_cpp; do
  "$libko_build/examples/$example" examples/hello "$libko_layout/$example"
  skopeo inspect "oci:$libko_layout/$example" >/dev/null
done
echo "libko examples: 4 of 4 built examples/hello into an OCI layout (pkg-config, CMake: shared, static, C++)"
