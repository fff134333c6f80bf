#!/usr/bin/env python3
"""Two builds of aggregate side by side on the cold `--once` pass of bench/run.sh: the same
corpus, the same nginx, the same config, runs alternating A and B, medians. For the question
"is this change slower?", which the full suite answers only against its own last run.

    bench/ab.py OLD_BINARY NEW_BINARY [--feeds 1000] [--runs 5]

Build the old one from a commit with, for example:
    git worktree add /tmp/old REV && cargo build --release --manifest-path /tmp/old/Cargo.toml \
        --target-dir target/bench/old-target
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="the binary to compare against (before)")
    ap.add_argument("b", help="the binary under test (after)")
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    n = args.feeds
    bench.ensure_corpus(n)
    bench.start_nginx()
    try:
        cfg, db, _, _ = bench.write_configs(n)
        runs = {"a": [], "b": []}
        for _ in range(args.runs):
            for side in ("a", "b"):
                bench.reset_db(db)
                runs[side].append(bench.timed([getattr(args, side), "--once", "--config", cfg]))
    finally:
        bench.stop_nginx()
    print(f"cold --once, {n} feeds x {bench.ENTRIES} entries, {args.runs} alternating runs, medians")
    for side, label in (("a", args.a), ("b", args.b)):
        print(f"  {side}: {bench.fmt(runs[side])}   {label}")
        print("     walls: " + " ".join(f"{r['wall']:.2f}" for r in runs[side]))
    for key in ("wall", "user"):
        ratio = statistics.median(r[key] for r in runs["b"]) / statistics.median(r[key] for r in runs["a"])
        print(f"  b / a {key}: {ratio:.3f}")


if __name__ == "__main__":
    main()
