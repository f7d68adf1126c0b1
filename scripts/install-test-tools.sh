#!/usr/bin/env bash
# Installs, from Debian's packages, the external tools the tests drive when they are missing:
# docker-registry, skopeo and umoci (integration tests), docker.io (dockerd and docker, the -L
# tests), nodejs and npm (the Node suite), cmake, gcc, g++, pkgconf, valgrind and libgtest-dev
# (libko's C and C++ suites). Nothing is installed when all are there. Needs root,
# or sudo; the packages' services are kept from starting (the tests start their own).
set -euo pipefail

missing=()
for tool in docker-registry skopeo umoci; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
{ command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing+=(docker.io)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
for tool in cmake gcc g++ valgrind; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v pkg-config >/dev/null 2>&1 || missing+=(pkgconf)
[ -e /usr/include/gtest/gtest.h ] || missing+=(libgtest-dev)
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "install-test-tools.sh: installing ${missing[*]}" >&2
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-test-tools.sh: ${missing[*]} missing, and installing them needs root (or sudo): apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod +x "$policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y "${missing[@]}"
