#!/usr/bin/env python3
"""What story clustering costs, measured in one build: the cold `--once` pass of bench/run.sh
with `[dedup] merge = "links"` (clustering off: no signature, no comparison) against the
default `"stories"`, runs alternating, medians, on both corpora; then, with `--steady`, the
service's CPU per 1000 polls when 10% of gen_corpus's feeds change a round (the two
configurations alternating, two rounds each time).

    bench/merge_cost.py [BINARY] [--feeds 1000] [--runs 5] [--steady]

BINARY defaults to target/release/aggregate. nginx serves the corpora as in bench/run.sh.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

MERGES = ("links", "stories")


def configs(n, corpus):
    """The harness's config for `corpus`, once per `merge`, each with its own database."""
    cfg, db, _, _ = bench.write_configs(n, corpus)
    out = {}
    for merge in MERGES:
        text = open(cfg).read()
        mdb = db.replace(".db", f"-{merge}.db")
        text = text.replace(db, mdb).replace("[fetch]\n", f'[dedup]\nmerge = "{merge}"\n\n[fetch]\n', 1)
        mcfg = cfg.replace(".toml", f"-{merge}.toml")
        open(mcfg, "w").write(text)
        out[merge] = (mcfg, mdb)
    return out


def cold(binary, n, runs, corpus):
    bench.ensure_corpus(n, corpus)
    cfgs = configs(n, corpus)
    got = {m: [] for m in MERGES}
    for _ in range(runs):
        for m in MERGES:
            cfg, db = cfgs[m]
            bench.reset_db(db)
            got[m].append(bench.timed([binary, "--once", "-q", "--config", cfg]))
    print(f"cold --once, {corpus}, {n} feeds, {runs} alternating runs, medians")
    for m in MERGES:
        print(f"  merge = {m:8} {bench.fmt(got[m])}   walls: " + " ".join(f"{r['wall']:.2f}" for r in got[m]))
    for key in ("wall", "user", "rss"):
        ratio = statistics.median(r[key] for r in got["stories"]) / statistics.median(r[key] for r in got["links"])
        print(f"  stories / links {key}: {ratio:.3f}")


def steady(binary, n, runs):
    corpus = "gen_corpus"
    bench.ensure_corpus(n, corpus)
    cfgs = configs(n, corpus)
    got = {m: [] for m in MERGES}
    round_no = 1000
    for _ in range(runs):
        for m in MERGES:
            cfg, db = cfgs[m]
            bench.fill(cfg, db, binary)
            with bench.service(cfg, "20s", f"steady-{m}.log", binary) as (daemon, base):
                deadline = time.monotonic() + 60
                while bench.polls_done(base) < n and time.monotonic() < deadline:
                    time.sleep(0.5)
                for _ in range(2):
                    round_no += 1
                    bench.generate(corpus, n, "--update", "0.1", "--round", str(round_no))
                    cpu0, polls0 = bench.cpu_seconds(daemon.pid), bench.polls_done(base)
                    while bench.polls_done(base) < polls0 + n:
                        time.sleep(1)
                    got[m].append((bench.cpu_seconds(daemon.pid) - cpu0) * 1000 / (bench.polls_done(base) - polls0))
    bench.spoil(corpus)
    print(f"steady state, {corpus}, {n} feeds, 10% changed a round: CPU s per 1000 polls")
    for m in MERGES:
        print(f"  merge = {m:8} median {statistics.median(got[m]):.3f}   runs: " + " ".join(f"{x:.2f}" for x in got[m]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary", nargs="?", default=os.path.join(bench.ROOT, "target/release/aggregate"))
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steady", action="store_true", help="measure the service's steady rounds too")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    bench.start_nginx()
    try:
        for corpus in ("gen_corpus", "varied"):
            cold(binary, args.feeds, args.runs, corpus)
        if args.steady:
            steady(binary, args.feeds, args.runs)
    finally:
        bench.stop_nginx()


if __name__ == "__main__":
    main()
