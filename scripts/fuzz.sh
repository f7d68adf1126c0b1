#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), one after another, each
# from the seed corpus kept in fuzz/seeds/<target> plus what earlier runs found (kept under
# fuzz/target/work, outside git). Needs a nightly toolchain and cargo-fuzz; installs cargo-fuzz
# when it is missing. Prints, per target, the runs and what was found; a crash's input is saved
# under fuzz/target/work/artifacts/<target>/ (turn it into a regression test). Exits non-zero
# when any target found a crash.
#
#   bash scripts/fuzz.sh 600            # ten minutes per target
#   bash scripts/fuzz.sh 60 selector    # one target
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz || exit 2
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
work="$PWD/target/work"
cargo +nightly fuzz build || exit 2

failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  log="$work/$t.log"
  echo "== $t: ${seconds}s" >&2
  cargo +nightly fuzz run "$t" "$work/corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
  status=$?
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
  crashes="$(find "$work/artifacts/$t" -type f | wc -l)"
  summary+=("$t: ${runs:-?} runs in ${seconds}s, corpus $(find "$work/corpus/$t" -type f | wc -l) inputs, $crashes saved crash inputs, exit $status")
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    grep -E 'panicked|ERROR|SUMMARY' "$log" | head -n 5 >&2
  fi
done
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs under $work/artifacts)" >&2
  exit 1
fi
