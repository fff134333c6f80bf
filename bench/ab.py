#!/usr/bin/env python3
"""Two builds of aggregate side by side on the cold `--once` pass of bench/run.sh: the same
corpus, the same nginx, the same config, runs alternating A and B, medians. For the question
"is this change slower?", which the full suite answers only against its own last run.

    bench/ab.py OLD_BINARY NEW_BINARY [--feeds 1000] [--runs 5]
    bench/ab.py OLD_BINARY NEW_BINARY --serving [--runs 3]
    bench/ab.py OLD_BINARY NEW_BINARY --update [--corpus varied] [--runs 5]
    bench/ab.py OLD_BINARY NEW_BINARY --steady [--corpus varied] [--runs 5]

`--update` compares the cron user's steady cost: each build fills its own database with a cold
pass, then each round updates the corpus as bench.py's steady scenario does (10% of the feeds
changed: two new entries and an edited title each) and runs both builds' `--once` on it, the
order alternating round by round; CPU seconds (user + system) per pass, medians.

`--steady` compares the running service's steady cost: each build fills its own database, then
both run as services at once (each on its own port, polling every 20 s, so both see every
round alike); each round updates the corpus as `--update` does and waits until both have
polled every feed again: CPU seconds per 1000 polls, medians of the rounds after the first
(the first after a start loads the story index; it is shown apart).

`--serving` compares serving instead: each build fills its own database with a cold pass, then
runs as the service (polling hourly, so nothing but the requests loads it) while wrk asks for
/feeds/all.rss (200s, then 304s) and an ad-hoc tag feed, SERVE_SECONDS each, 32 connections.

Build the old one from a commit with, for example:
    git worktree add /tmp/old REV && cargo build --release --manifest-path /tmp/old/Cargo.toml \
        --target-dir target/bench/old-target
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="the binary to compare against (before)")
    ap.add_argument("b", help="the binary under test (after)")
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--serving", action="store_true", help="compare serving, not the cold pass")
    ap.add_argument("--update", action="store_true", help="compare --once after a 10%% update")
    ap.add_argument("--steady", action="store_true", help="compare the service's steady rounds")
    ap.add_argument("--corpus", default="gen_corpus", choices=sorted(bench.GENERATORS))
    args = ap.parse_args()
    # The runs' working directory is the bench's, not the caller's.
    args.a, args.b = os.path.abspath(args.a), os.path.abspath(args.b)
    if args.serving:
        return serving(args)
    if args.update:
        return update(args)
    if args.steady:
        return steady(args)
    def cold(binary, cfg, db):
        bench.reset_db(db)
        return bench.timed([binary, "--once", "--config", cfg])

    n = args.feeds
    runs = alternate(args, cold)
    print(f"cold --once, {n} feeds x {bench.ENTRIES} entries, {args.runs} alternating runs, medians")
    for side, label in (("a", args.a), ("b", args.b)):
        print(f"  {side}: {bench.fmt(runs[side])}   {label}")
        print("     walls: " + " ".join(f"{r['wall']:.2f}" for r in runs[side]))
    for key in ("wall", "user"):
        ratio = statistics.median(r[key] for r in runs["b"]) / statistics.median(r[key] for r in runs["a"])
        print(f"  b / a {key}: {ratio:.3f}")


def alternate(args, run):
    """`run(binary, cfg, db)` for A then B, `args.runs` times, on the corpus behind nginx."""
    bench.ensure_corpus(args.feeds)
    bench.start_nginx()
    try:
        cfg, db, _, _ = bench.write_configs(args.feeds)
        runs = {"a": [], "b": []}
        for _ in range(args.runs):
            for side in ("a", "b"):
                runs[side].append(run(getattr(args, side), cfg, db))
    finally:
        bench.stop_nginx()
    return runs


def filled(args):
    """Each build's config, with a database and output files of its own, filled by its own
    cold pass."""
    cfg, db, _, _ = bench.write_configs(args.feeds, args.corpus)
    text = open(cfg).read()
    configs = {}
    for side in ("a", "b"):
        side_db = f"{db[:-3]}-{side}.db"
        configs[side] = f"{cfg[:-5]}-{side}.toml"
        with open(configs[side], "w") as f:
            f.write(text.replace(db, side_db).replace("/public-", f"/public-{side}-"))
        bench.fill(configs[side], side_db, getattr(args, side))
    return configs


def update(args):
    n, corpus = args.feeds, args.corpus
    bench.ensure_corpus(n, corpus)
    bench.start_nginx()
    try:
        configs = filled(args)
        runs = {"a": [], "b": []}
        for r in range(args.runs):
            # Round r of the generators holds the entries of rounds 1..r: a feed first
            # changed in round r shows 2r new entries (a high round number, all new ones).
            bench.generate(corpus, n, "--update", "0.1", "--round", str(r + 1))
            for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
                t = bench.timed([getattr(args, side), "--once", "-q", "--config", configs[side]])
                t["cpu"] = t["user"] + t["sys"]
                runs[side].append(t)
        bench.spoil(corpus)
    finally:
        bench.stop_nginx()
    print(f"--once after a 10% update, {corpus}, {n} feeds, {args.runs} rounds, "
          f"alternating order, medians")
    for side, label in (("a", args.a), ("b", args.b)):
        cpu = statistics.median(r["cpu"] for r in runs[side])
        print(f"  {side}: {bench.fmt(runs[side])}  {cpu:6.2f} s CPU   {label}")
        print("     CPU: " + " ".join(f"{r['cpu']:.2f}" for r in runs[side]))
    for key in ("wall", "cpu", "rss"):
        ratio = statistics.median(r[key] for r in runs["b"]) / statistics.median(r[key] for r in runs["a"])
        print(f"  b / a {key}: {ratio:.3f}")


def steady(args):
    n, corpus = args.feeds, args.corpus
    bench.ensure_corpus(n, corpus)
    bench.start_nginx()
    rounds = {"a": [], "b": []}
    try:
        configs = filled(args)
        with contextlib.ExitStack() as stack:
            services = {}
            for side, port in (("a", bench.DAEMON_PORT), ("b", bench.DAEMON_PORT + 2)):
                services[side] = stack.enter_context(bench.service(
                    configs[side], "20s", f"steady-{side}.log", getattr(args, side), port))
            deadline = time.monotonic() + 60
            # The first round after a start: every feed answers 304.
            while (min(bench.polls_done(base) for _, base in services.values()) < n
                   and time.monotonic() < deadline):
                time.sleep(0.5)
            for r in range(args.runs + 1):
                bench.generate(corpus, n, "--update", "0.1", "--round", str(r + 1))
                start = {s: (bench.cpu_seconds(d.pid), bench.polls_done(b)) for s, (d, b) in services.items()}
                done = {}
                while len(done) < 2:
                    time.sleep(1)  # each look renders /metrics: a cost of ours, kept rare
                    for side, (daemon, base) in services.items():
                        polls = bench.polls_done(base) - start[side][1]
                        if side not in done and polls >= n:
                            done[side] = (bench.cpu_seconds(daemon.pid) - start[side][0]) * 1000 / polls
                for side in done:
                    rounds[side].append(done[side])
        bench.spoil(corpus)
    finally:
        bench.stop_nginx()
    print(f"the service, {corpus}, {n} feeds, 10% changed a round, both builds running at once: "
          f"CPU s per 1000 polls, median of {args.runs} rounds after the first")
    for side, label in (("a", args.a), ("b", args.b)):
        first, rest = rounds[side][0], rounds[side][1:]
        print(f"  {side}: {statistics.median(rest):6.3f}   first round {first:.3f}   {label}")
        print("     rounds: " + " ".join(f"{x:.3f}" for x in rest))
    ratio = statistics.median(rounds["b"][1:]) / statistics.median(rounds["a"][1:])
    print(f"  b / a cpu: {ratio:.3f}")


def serve_once(binary, cfg, db):
    """One build's serving figures: req/s of 200s, 304s and ad-hoc 200s."""
    import urllib.request
    bench.fill(cfg, db, binary)
    with bench.service(cfg, "1h", "daemon.log", binary) as (_, base):
        etag, _, _ = bench.fetch(base + "/feeds/all.rss")
        adhoc = base + "/feed.rss?tags=Binance,Blockchain&limit=50"
        urllib.request.urlopen(adhoc).read()
        return {
            "200": bench.wrk(base + "/feeds/all.rss", 32)["rps"],
            "304": bench.wrk(base + "/feeds/all.rss", 32, [f"If-None-Match: {etag}"])["rps"],
            "adhoc": bench.wrk(adhoc, 32)["rps"],
        }


def serving(args):
    n = args.feeds
    runs = alternate(args, serve_once)
    print(f"serving, {n}-feed database, wrk -t2 -c32, {bench.SERVE_SECONDS}s each, "
          f"{args.runs} alternating runs, medians (req/s)")
    for side, label in (("a", args.a), ("b", args.b)):
        figures = "  ".join(f"{k} {statistics.median(r[k] for r in runs[side]):,.0f}"
                            for k in ("200", "304", "adhoc"))
        print(f"  {side}: {figures}   {label}")
    for k in ("200", "304", "adhoc"):
        ratio = statistics.median(r[k] for r in runs["b"]) / statistics.median(r[k] for r in runs["a"])
        print(f"  b / a {k}: {ratio:.3f}")


if __name__ == "__main__":
    main()
