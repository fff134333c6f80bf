#!/usr/bin/env bash
# The README's two commands on a fresh clone, timed: the run command (a release build and a
# pass over the fixtures), then the test command. The crates come from Cargo's local cache
# (downloading them is the network's time, not the build's); nothing else is reused.
#
#   bench/build_time.sh [REV]          # default HEAD; prints both times, the tail of each log
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD}
dir=$(mktemp -d /tmp/aggregate-build.XXXXXX)
trap 'rm -rf "$dir"' EXIT
git clone -q . "$dir/src" && git -C "$dir/src" checkout -q "$rev"
cd "$dir/src"
cargo fetch --locked -q
unset CARGO_TARGET_DIR RUSTFLAGS
seconds() { local t0=$SECONDS; "$@" >"$dir/log" 2>&1 || { tail -20 "$dir/log"; exit 1; }; echo $((SECONDS - t0)); }
run=$(seconds cargo run --release -- --once --config fixtures/offline.toml)
tail -1 "$dir/log"
tests=$(seconds cargo test --release)
grep -E "^test result" "$dir/log" | awk '{p+=$4; f+=$6} END {print p " passed, " f " failed"}'
echo "run command:  ${run} s   (cargo run --release -- --once --config fixtures/offline.toml)"
echo "test command: ${tests} s   (cargo test --release, after it)"
echo "machine: $(nproc) cores, $(rustc --version)"
