#!/usr/bin/env bash
# One command for every benchmark scenario (BENCHMARKS.md): installs the peers and tools it
# needs from Debian (nginx, wrk, newsboat), builds aggregate as packagers do (--profile dist),
# generates both corpora, runs the scenarios and prints a table (also written to
# target/bench/results.md): cold and warm --once and peak RSS at 1000 and 5000 feeds against
# newsboat, the steady state's CPU per 1000 polls, serving against a tuned nginx (200/304,
# identity/gzip, 50- and 10-item feeds, 32/256 connections), the scale bench, the build times.
#
#   bench/run.sh                       # everything, 3 runs each (about 50 minutes)
#   RUNS=5 SIZES="1000" bench/run.sh
#   CORPORA=varied bench/run.sh        # one corpus (gen_corpus, varied)
#   ONLY="serving" bench/run.sh        # just these scenarios (cold steady serving scale build)
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

cargo build --profile dist --quiet
exec python3 bench/bench.py
