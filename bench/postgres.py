#!/usr/bin/env python3
"""PostgreSQL next to SQLite, on bench/run.sh's corpus and nginx: the cold `--once` pass on
each backend (alternating runs, medians); a cold first pass by one and by three services on
one PostgreSQL database (time until every feed is stored, and how the polls were split);
serving on each backend (a cached feed with wrk, and renders that miss the cache).

    bench/postgres.py [--feeds 1000] [--runs 3] [--binary target/release/aggregate]

It starts its own PostgreSQL cluster (Debian's, from /usr/lib/postgresql/*/bin) in the
bench directory, durable as SQLite's WAL mode with synchronous=NORMAL is: fsync on,
synchronous_commit off (a power cut may lose the last commits, never corrupt).
"""
import argparse
import glob
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

PG_DIR = os.path.join(bench.WORK, "pg")
PORTS = [18091, 18092, 18093]


def pg_bin(tool):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not found:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1]


def as_pg(cmd):
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def start_postgres():
    stop_postgres()
    shutil.rmtree(PG_DIR, ignore_errors=True)
    os.makedirs(PG_DIR)
    if os.geteuid() == 0:
        shutil.chown(PG_DIR, "postgres")
    as_pg([pg_bin("initdb"), "-A", "trust", "-U", "aggregate", "-D", f"{PG_DIR}/data"])
    opts = (f"-c listen_addresses='' -c unix_socket_directories='{PG_DIR}' -c fsync=on "
            "-c synchronous_commit=off -c shared_buffers=256MB -c max_connections=100")
    as_pg([pg_bin("pg_ctl"), "-D", f"{PG_DIR}/data", "-l", f"{PG_DIR}/log", "-w", "start", "-o", opts])
    return f"host={PG_DIR} user=aggregate"


def stop_postgres():
    if os.path.exists(f"{PG_DIR}/data/postmaster.pid"):
        as_pg([pg_bin("pg_ctl"), "-D", f"{PG_DIR}/data", "-m", "fast", "stop"])


def psql(conn, sql):
    out = subprocess.run(["psql", conn, "-X", "-q", "-A", "-t", "-c", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def fresh_db(base, name):
    psql(f"{base} dbname=postgres", f"DROP DATABASE IF EXISTS {name}")
    psql(f"{base} dbname=postgres", f"CREATE DATABASE {name}")
    return f"{base} dbname={name}"


def config_on(cfg, target, port=None, interval=None):
    """bench.write_configs' config, its storage swapped for `target` (a path or a PostgreSQL
    address), listening on `port`."""
    text = open(cfg).read()
    if target.startswith("host="):
        text = re.sub(r'path = "[^"]*"', f'url = "{target}"', text, count=1)
    else:
        text = re.sub(r'path = "[^"]*"', f'path = "{target}"', text, count=1)
    if port:
        text = re.sub(r'listen = "[^"]*"', f'listen = "127.0.0.1:{port}"', text)
    if interval:
        text = text.replace("[fetch]\n", f'[fetch]\ninterval = "{interval}"\n', 1)
    name = os.path.join(bench.WORK, f"pg-bench-{abs(hash((target, port, interval)))}.toml")
    with open(name, "w") as f:
        f.write(text)
    return name


def cold_once(binary, cfg, db, base, n, runs):
    bench.say(f"## Cold `--once`, {n} feeds x {bench.ENTRIES} entries, SQLite and PostgreSQL "
              f"(alternating, medians of {runs})")
    bench.say()
    result = {"sqlite": [], "postgres": []}
    for _ in range(runs):
        bench.reset_db(db)
        result["sqlite"].append(bench.timed([binary, "--once", "--config", config_on(cfg, db)]))
        pg = fresh_db(base, "bench_once")
        result["postgres"].append(bench.timed([binary, "--once", "--config", config_on(cfg, pg)]))
    for side in ("sqlite", "postgres"):
        bench.say(f"    {side:9} {bench.fmt(result[side])}")
    ratio = statistics.median(r["wall"] for r in result["postgres"]) / \
        statistics.median(r["wall"] for r in result["sqlite"])
    bench.say(f"    postgres / sqlite wall: {ratio:.2f}")
    bench.say()


def first_pass(binary, cfg, target, instances, n):
    """Starts `instances` services on `target`; the time until every feed is stored, and each
    instance's share of the polls."""
    procs, logs = [], []
    started = time.monotonic()
    for i in range(instances):
        log = open(os.path.join(bench.WORK, f"pg-instance-{i}.log"), "w+")
        conf = config_on(cfg, target, port=PORTS[i], interval="1h")
        procs.append(subprocess.Popen([binary, "--config", conf, "--log-level", "info"],
                                      stdout=subprocess.DEVNULL, stderr=log))
        logs.append(log)
    try:
        while True:
            if target.startswith("host="):
                try:
                    done = int(psql(target, "SELECT COUNT(*) FROM feeds WHERE last_success IS NOT NULL"))
                except subprocess.CalledProcessError:
                    done = 0  # the schema is not there yet
            else:
                done = int(subprocess.run(["sqlite3", target, "SELECT COUNT(*) FROM feeds WHERE last_success IS NOT NULL"],
                                          capture_output=True, text=True).stdout.strip() or 0)
            if done >= n:
                break
            if time.monotonic() - started > 300:
                raise RuntimeError(f"only {done} of {n} feeds stored after 300 s")
            time.sleep(0.1)
        took = time.monotonic() - started
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    split = []
    for log in logs:
        log.seek(0)
        split.append(sum(1 for line in log if " polled" in line))
        log.close()
    return took, split


def first_passes(binary, cfg, db, base, n, runs):
    bench.say(f"## First pass of the service, {n} feeds: one on SQLite, one and three on PostgreSQL "
              f"(time until every feed is stored, from process start; medians of {runs})")
    bench.say()
    bench.say("    Start-up polls are spread over 3 s, so no pass is shorter; the machine has two cores,")
    bench.say("    so three instances share them rather than add any.")
    bench.say()
    rows = {"sqlite x1": [], "postgres x1": [], "postgres x3": []}
    splits = []
    for _ in range(runs):
        bench.reset_db(db)
        rows["sqlite x1"].append(first_pass(binary, cfg, db, 1, n)[0])
        rows["postgres x1"].append(first_pass(binary, cfg, fresh_db(base, "bench_one"), 1, n)[0])
        took, split = first_pass(binary, cfg, fresh_db(base, "bench_three"), 3, n)
        rows["postgres x3"].append(took)
        splits.append(split)
    for name, took in rows.items():
        bench.say(f"    {name:12} {statistics.median(took):6.2f} s   (" + " ".join(f"{t:.2f}" for t in took) + ")")
    bench.say("    polls per instance, three on PostgreSQL: " + "; ".join("/".join(map(str, s)) for s in splits))
    bench.say()


def uncached_renders(port, count):
    """Requests whose limit differs each time, so that each is rendered from the store."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    started = time.monotonic()
    for i in range(count):
        conn.request("GET", f"/feed.rss?tags=bitcoin&limit={10 + i % 200}")
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}")
    return count / (time.monotonic() - started)


def serving(binary, cfg, db, base):
    bench.say("## Serving one service on each backend, after a cold pass (wrk -t2 -c32, 10 s; renders)")
    bench.say()
    for name, target in (("sqlite", db), ("postgres", base + " dbname=bench_three")):
        conf = config_on(cfg, target, port=PORTS[0], interval="1h")
        p = subprocess.Popen([binary, "--config", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(4)
            url = f"http://127.0.0.1:{PORTS[0]}/feeds/binance.rss"
            cached = bench.wrk(url, 32)
            renders = uncached_renders(PORTS[0], 400)
        finally:
            p.terminate()
            p.wait()
        bench.say(f"    {name:9} cached 50-item feed: {cached['rps']:8.0f} req/s (p99 {cached['p99']:.2f} ms);"
                  f"  rendered from the store: {renders:6.0f} req/s")
    bench.say()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--binary", default=bench.BIN)
    args = ap.parse_args()
    n = args.feeds
    bench.ensure_corpus(n)
    base = start_postgres()
    bench.start_nginx()
    try:
        cfg, db, _, _ = bench.write_configs(n)
        cold_once(args.binary, cfg, db, base, n, args.runs)
        first_passes(args.binary, cfg, db, base, n, args.runs)
        serving(args.binary, cfg, db, base)
    finally:
        bench.stop_nginx()
        stop_postgres()


if __name__ == "__main__":
    main()
