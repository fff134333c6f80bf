#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh: every scenario of BENCHMARKS.md, aggregate and its
peers side by side on one corpus, alternating runs, medians.

Environment: RUNS (default 3), SIZES (default "100 1000 5000"), PEER_SIZES (newsboat; default
"100 1000"), SERVE_SECONDS (default 10), SCALE (default "10000 100000 1000000").
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.abspath(os.environ.get("BENCH_WORK", os.path.join(ROOT, "target", "bench")))
# The build under test; AGGREGATE_BIN names another (an older build, to compare side by side).
BIN = os.environ.get("AGGREGATE_BIN", os.path.join(ROOT, "target", "release", "aggregate"))
CORPUS = os.path.join(WORK, "corpus")
RUNS = int(os.environ.get("RUNS", "3"))
SIZES = [int(x) for x in os.environ.get("SIZES", "100 1000 5000").split()]
PEER_SIZES = [int(x) for x in os.environ.get("PEER_SIZES", "100 1000").split()]
SERVE_SECONDS = int(os.environ.get("SERVE_SECONDS", "10"))
NGINX_PORT, DAEMON_PORT = 18090, 18091
ENTRIES = 50
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_corpus  # noqa: E402

report = []


def say(line=""):
    print(line, flush=True)
    report.append(line)


def timed(cmd, cwd=WORK, env=None):
    """Runs cmd; returns wall, user, sys seconds and peak RSS in MiB (from wait4)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed ({status}):\n{err[-2000:]}")
    return {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "rss": ru.ru_maxrss / 1024}


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def fmt(runs):
    return (f"{median(runs, 'wall'):7.2f} s wall  {median(runs, 'user'):6.2f} s user  "
            f"{median(runs, 'sys'):6.2f} s sys  {median(runs, 'rss'):6.1f} MiB")


# ---------------------------------------------------------------- setup

def start_nginx():
    conf = os.path.join(WORK, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 2;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    etag on;
    types {{ application/rss+xml xml rss; application/atom+xml atom; application/rdf+xml rdf; application/feed+json json; }}
    server {{ listen 127.0.0.1:{NGINX_PORT}; root {WORK}; }}
}}
""")
    stop_nginx()
    subprocess.run(["nginx", "-c", conf, "-p", WORK], check=True)


def stop_nginx():
    pid_file = os.path.join(WORK, "nginx.pid")
    if os.path.exists(pid_file):
        try:
            os.kill(int(open(pid_file).read().strip()), signal.SIGQUIT)
        except (ProcessLookupError, ValueError):
            pass
        time.sleep(0.5)


def ensure_corpus(n):
    """The bench directory, with bench/gen_corpus.py's corpus of `n` feeds in it."""
    os.makedirs(WORK, exist_ok=True)
    if not os.path.exists(os.path.join(CORPUS, gen_corpus.feed_file(n - 1))):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_corpus.py"), CORPUS,
                        "--feeds", str(n), "--entries", str(ENTRIES)], check=True)


def feed_urls(n):
    return [f"http://127.0.0.1:{NGINX_PORT}/corpus/{gen_corpus.feed_file(i)}" for i in range(n)]


def write_configs(n):
    db = os.path.join(WORK, f"agg-{n}.db")
    cfg = os.path.join(WORK, f"agg-{n}.toml")
    with open(cfg, "w") as f:
        f.write(f'[storage]\npath = "{db}"\n\n[fetch]\nconcurrency = 16\nper_host = 16\ntimeout = "60s"\n\n'
                f'[server]\nlisten = "127.0.0.1:{DAEMON_PORT}"\n\n')
        for u in feed_urls(n):
            f.write(f'[[feed]]\nurl = "{u}"\n\n')
        f.write(open(os.path.join(ROOT, "config.toml")).read().split("# ---------------------------------------------------------------- tag rules", 1)[1]
                .replace('path = "public/', f'path = "{WORK}/public-{n}/'))
    urls = os.path.join(WORK, f"urls-{n}")
    with open(urls, "w") as f:
        f.write("\n".join(feed_urls(n)) + "\n")
    nb_conf = os.path.join(WORK, "newsboat.conf")
    with open(nb_conf, "w") as f:
        f.write("reload-threads 8\nshow-read-feeds yes\nsuppress-first-reload yes\n")
    return cfg, db, urls, nb_conf


def reset_db(db):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)


def aggregate_once(cfg):
    return timed([BIN, "--once", "--config", cfg])


def newsboat_reload(urls, cache, nb_conf):
    return timed(["newsboat", "-u", urls, "-c", cache, "-C", nb_conf, "-x", "reload"],
                 env={**os.environ, "HOME": WORK, "XDG_CONFIG_HOME": WORK, "XDG_DATA_HOME": WORK})


# ---------------------------------------------------------------- scenarios

def cold_and_warm():
    say("## 1-2. Cold and warm `--once` (alternating runs, medians)")
    say()
    per_feed = {}
    for n in SIZES:
        cfg, db, urls, nb_conf = write_configs(n)
        cache = os.path.join(WORK, f"newsboat-{n}.db")
        peer = n in PEER_SIZES
        agg_cold, agg_warm, nb_cold, nb_warm = [], [], [], []
        for _ in range(RUNS):
            reset_db(db)
            agg_cold.append(aggregate_once(cfg))
            agg_warm.append(aggregate_once(cfg))
            if peer:
                for p in (cache, cache + ".lock"):
                    if os.path.exists(p):
                        os.remove(p)
                nb_cold.append(newsboat_reload(urls, cache, nb_conf))
                nb_warm.append(newsboat_reload(urls, cache, nb_conf))
        per_feed[n] = median(agg_cold, "wall") / n
        say(f"N = {n}")
        say(f"    aggregate cold  {fmt(agg_cold)}")
        say(f"    aggregate warm  {fmt(agg_warm)}")
        if peer:
            say(f"    newsboat  cold  {fmt(nb_cold)}")
            say(f"    newsboat  warm  {fmt(nb_warm)}")
            say(f"    ratio cold: aggregate is {median(nb_cold, 'wall') / median(agg_cold, 'wall'):.1f}x faster; "
                f"warm: {median(nb_warm, 'wall') / median(agg_warm, 'wall'):.1f}x faster")
        say()
    if 1000 in per_feed and 5000 in per_feed:
        say(f"Scaling: time per feed at 5000 / at 1000 = {per_feed[5000] / per_feed[1000]:.2f}")
        say()


def update():
    n = 1000 if 1000 in SIZES else SIZES[0]
    cfg, db, urls, nb_conf = write_configs(n)
    cache = os.path.join(WORK, f"newsboat-{n}.db")
    say(f"## 3. Update `--once`: 10% of {n} sources changed (2 new entries, 1 edited title each)")
    say()
    agg, nb = [], []
    for r in range(1, RUNS + 1):
        gen_corpus_update(n, r)
        agg.append(aggregate_once(cfg))
        if n in PEER_SIZES and os.path.exists(cache):
            nb.append(newsboat_reload(urls, cache, nb_conf))
    say(f"    aggregate  {fmt(agg)}")
    if nb:
        say(f"    newsboat   {fmt(nb)}")
        say(f"    ratio: aggregate is {median(nb, 'wall') / median(agg, 'wall'):.1f}x faster")
    say()


def gen_corpus_update(n, round_no):
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_corpus.py"), CORPUS, "--feeds", str(n),
                    "--entries", str(ENTRIES), "--update", "0.1", "--round", str(round_no)], check=True, stdout=subprocess.DEVNULL)


WRK_RE = {
    "rps": re.compile(r"Requests/sec:\s+([\d.]+)"),
    "p50": re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)", re.M),
    "p99": re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)", re.M),
    "errors": re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)"),
}


def wrk(url, conns, headers=()):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{SERVE_SECONDS}s", "--latency", url]
    for h in headers:
        cmd[1:1] = ["-H", h]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p50 = WRK_RE["p50"].search(out)
    p99 = WRK_RE["p99"].search(out)
    return {
        "rps": float(WRK_RE["rps"].search(out).group(1)),
        "p50": float(p50.group(1)) * unit[p50.group(2)],
        "p99": float(p99.group(1)) * unit[p99.group(2)],
        "errors": " ".join(m.group(0) for m in WRK_RE["errors"].finditer(out)),
    }


def head_etag(url, extra=None):
    req = urllib.request.Request(url, headers=extra or {})
    with urllib.request.urlopen(req) as r:
        body = r.read()
        return r.headers.get("ETag"), body


def wait_for_service():
    """The started service's base URL, once it answers /healthz (10 s at most)."""
    base = f"http://127.0.0.1:{DAEMON_PORT}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz").read()
            break
        except OSError:
            time.sleep(0.1)
    return base


def serving():
    n = 1000 if 1000 in SIZES else SIZES[0]
    cfg, db, _, _ = write_configs(n)
    say(f"## 4. Serving, {n}-feed corpus stored, a poll pass running meanwhile (wrk -t2, {SERVE_SECONDS}s each)")
    say()
    # Polls every 5s during the load: serving must not stall behind them.
    live_cfg = cfg.replace(".toml", "-live.toml")
    text = open(cfg).read().replace("[fetch]\n", '[fetch]\ninterval = "5s"\n')
    open(live_cfg, "w").write(text)
    log = open(os.path.join(WORK, "daemon.log"), "w")
    daemon = subprocess.Popen([BIN, "--config", live_cfg, "--log-level", "warn"], cwd=WORK, stdout=log, stderr=log)
    try:
        base = wait_for_service()
        etag, body = head_etag(base + "/feeds/all.rss")
        static = os.path.join(WORK, "static")
        os.makedirs(static, exist_ok=True)
        with open(os.path.join(static, "all.rss"), "wb") as f:
            f.write(body)
        nginx_url = f"http://127.0.0.1:{NGINX_PORT}/static/all.rss"
        nginx_etag, _ = head_etag(nginx_url)
        say(f"    feed body: {len(body) / 1024:.0f} KiB (/feeds/all.rss, 100 items)")
        rows = []
        for conns in (32, 64):
            a200 = wrk(base + "/feeds/all.rss", conns)
            n200 = wrk(nginx_url, conns)
            a304 = wrk(base + "/feeds/all.rss", conns, [f"If-None-Match: {etag}"])
            n304 = wrk(nginx_url, conns, [f"If-None-Match: {nginx_etag}"])
            adhoc = wrk(base + "/feed.rss?tags=Binance,Blockchain&limit=50", conns)
            rows.append((conns, a200, n200, a304, n304, adhoc))
        say()
        say("| connections | what | aggregate req/s | p50 ms | p99 ms | nginx req/s | p50 ms | p99 ms | ratio |")
        say("|---|---|---|---|---|---|---|---|---|")
        for conns, a200, n200, a304, n304, adhoc in rows:
            say(f"| {conns} | 200 /feeds/all.rss | {a200['rps']:.0f} | {a200['p50']:.2f} | {a200['p99']:.2f} | {n200['rps']:.0f} | {n200['p50']:.2f} | {n200['p99']:.2f} | {a200['rps'] / n200['rps']:.2f} |")
            say(f"| {conns} | 304 /feeds/all.rss | {a304['rps']:.0f} | {a304['p50']:.2f} | {a304['p99']:.2f} | {n304['rps']:.0f} | {n304['p50']:.2f} | {n304['p99']:.2f} | {a304['rps'] / n304['rps']:.2f} |")
            say(f"| {conns} | 200 /feed.rss?tags=... | {adhoc['rps']:.0f} | {adhoc['p50']:.2f} | {adhoc['p99']:.2f} | | | | |")
        errors = [r[1]["errors"] + r[3]["errors"] + r[5]["errors"] for r in rows]
        say()
        say(f"    wrk errors against aggregate: {' '.join(e for e in errors if e) or 'none'}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=20)
        log.close()
    polls = open(os.path.join(WORK, "daemon.log")).read()
    say(f"    daemon log during the load: {len(polls.splitlines())} warning/error lines")
    say()


def scale():
    say("## 5. Scale: outputs from large databases (cargo bench --bench scale)")
    say()
    out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "scale"], cwd=ROOT, check=True, capture_output=True,
                         text=True, env={**os.environ, "SCALE_DIR": WORK})
    for line in out.stdout.splitlines():
        say("    " + line)
    say()


def main():
    os.makedirs(WORK, exist_ok=True)
    biggest = max(SIZES)
    if not os.path.exists(os.path.join(CORPUS, gen_corpus.feed_file(biggest - 1))):
        shutil.rmtree(CORPUS, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_corpus.py"), CORPUS, "--feeds", str(biggest),
                        "--entries", str(ENTRIES)], check=True)
    size = sum(os.path.getsize(os.path.join(CORPUS, gen_corpus.feed_file(i))) for i in range(min(1000, biggest)))
    start_nginx()
    try:
        say(f"# aggregate benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        say()
        say(f"Machine: {os.cpu_count()} cores, {os.uname().machine}, {os.uname().release}; "
            f"corpus: {ENTRIES} entries a feed, {size / 1e6:.0f} MB for the first 1000 feeds, served by nginx on 127.0.0.1.")
        say(f"Runs: {RUNS}, alternating aggregate and newsboat; medians.")
        say()
        only = os.environ.get("ONLY", "cold update serving scale").split()
        if os.environ.get("SCALE", "1") == "0" and "scale" in only:
            only.remove("scale")
        for name, scenario in [("cold", cold_and_warm), ("update", update), ("serving", serving), ("scale", scale)]:
            if name in only:
                scenario()
    finally:
        stop_nginx()
    with open(os.path.join(WORK, "results.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    print(f"\nwritten to {os.path.join(WORK, 'results.md')}")


if __name__ == "__main__":
    main()
