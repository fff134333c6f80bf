#!/usr/bin/env bash
# One command for every benchmark scenario (BENCHMARKS.md): installs the peers and tools it
# needs from Debian (nginx, wrk, newsboat), builds aggregate in release mode, generates the
# corpus, runs the scenarios and prints a table (also written to target/bench/results.md).
#
#   bench/run.sh                     # everything: N = 100, 1000, 5000; 3 runs each
#   RUNS=5 SIZES="100 1000" bench/run.sh
#   SCALE=0 bench/run.sh             # skip the 1M-entry scale scenario
#   ONLY="serving" bench/run.sh      # just these scenarios (cold update serving scale)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v newsboat >/dev/null || need+=(newsboat)
if ((${#need[@]})); then
    echo "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --quiet
rm -rf target/bench/corpus   # regenerated: update rounds edit it in place
exec python3 bench/bench.py
