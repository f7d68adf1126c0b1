#!/usr/bin/env bash
# Builds libko and installs it for C and C++ build systems:
#
#   PREFIX=/usr/local bash bindings/c/install.sh      # PREFIX defaults to /usr/local
#
# installs under $PREFIX
#   lib/libko.a, lib/libko.so.X.Y.Z (+ libko.so.X, libko.so)   one library: the C API and the C++ bridge
#   include/ko.h, include/ko.hpp, include/ko/*.h, include/rust/cxx.h
#   lib/pkgconfig/ko.pc                                        pkg-config --cflags --libs ko
#   lib/cmake/ko/koConfig*.cmake                               find_package(ko): ko::ko, ko::ko_static, ko::cpp, ko::cpp_static
#
# PROFILE=release (default) or debug picks the cargo profile. Needs cargo and a C++ compiler.
#
# Cargo builds libko.a (crate ko-ffi, a staticlib); libko.so is linked from that archive here, with
# bindings/c/libko.map as its export list. A cargo cdylib would export only Rust's #[no_mangle]
# functions and hide the C++ half of the cxx bridge that ko.hpp calls.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${PREFIX:-/usr/local}
case "${PROFILE:-release}" in
  release) profile=release; dir=release ;;
  debug | dev) profile=dev; dir=debug ;;
  *) echo "install.sh: PROFILE must be release or debug" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac

cargo build --manifest-path "$root/Cargo.toml" -p ko-ffi --profile "$profile"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
major=${version%%.*}
# What libko.a needs from the system: rustc's `--print native-static-libs` for this crate
# (Rust's std, and the C++ standard library for the cxx bridge).
native_libs="-lstdc++ -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

lib=$prefix/lib
mkdir -p "$lib/pkgconfig" "$lib/cmake/ko" "$prefix/include/ko" "$prefix/include/rust"
install -m 644 "$target/$dir/libko.a" "$lib/libko.a"
# shellcheck disable=SC2086 # the list is words
${CXX:-c++} -shared -o "$lib/libko.so.$version" -Wl,-soname,"libko.so.$major" \
  -Wl,--version-script="$root/bindings/c/libko.map" -Wl,--gc-sections \
  -Wl,--whole-archive "$target/$dir/libko.a" -Wl,--no-whole-archive ${native_libs/-lstdc++ /}
ln -sfn "libko.so.$version" "$lib/libko.so.$major"
ln -sfn "libko.so.$major" "$lib/libko.so"

install -m 644 "$root/bindings/c/include/ko.h" "$prefix/include/ko.h"
install -m 644 "$root/bindings/cpp/include/ko.hpp" "$prefix/include/ko.hpp"
install -m 644 "$root/bindings/cpp/include/ko/event_handler.h" "$prefix/include/ko/event_handler.h"
# The headers cxx generated for the bridge while cargo built it.
install -m 644 "$target/cxxbridge/ko-ffi/cpp/src/bridge.rs.h" "$prefix/include/ko/bridge.rs.h"
install -m 644 "$target/cxxbridge/rust/cxx.h" "$prefix/include/rust/cxx.h"

subst() {
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@VERSION_MAJOR@|$major|g" \
    -e "s|@NATIVE_LIBS@|$native_libs|g" \
    -e "s|@NATIVE_LIBS_CMAKE@|$(echo "$native_libs" | sed -e 's/-l//g' -e 's/ /;/g')|g" "$1" >"$2"
}
subst "$root/bindings/c/ko.pc.in" "$lib/pkgconfig/ko.pc"
subst "$root/bindings/c/cmake/koConfig.cmake.in" "$lib/cmake/ko/koConfig.cmake"
subst "$root/bindings/c/cmake/koConfigVersion.cmake.in" "$lib/cmake/ko/koConfigVersion.cmake"
echo "installed libko $version into $prefix"
