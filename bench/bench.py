#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh: every scenario of BENCHMARKS.md, aggregate and its
peers side by side on one corpus, alternating runs, medians.

Environment: RUNS (default 3), SIZES (default "1000 5000"), PEER_SIZES (newsboat; default
"1000"), CORPORA (default "gen_corpus varied": bench/gen_corpus.py's and bench/gen_varied.py's),
SERVE_SECONDS (default 5), ONLY (default "cold steady serving scale build").
"""
import contextlib
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
# The default is what packagers ship (`--profile dist`, fat LTO), which bench/run.sh builds.
BIN = os.path.abspath(os.environ.get("AGGREGATE_BIN", os.path.join(ROOT, "target", "dist", "aggregate")))
RUNS = int(os.environ.get("RUNS", "3"))
SIZES = [int(x) for x in os.environ.get("SIZES", "1000 5000").split()]
PEER_SIZES = [int(x) for x in os.environ.get("PEER_SIZES", "1000").split()]
SERVE_SECONDS = int(os.environ.get("SERVE_SECONDS", "5"))
NGINX_PORT, DAEMON_PORT = 18090, 18091
ENTRIES = 50
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_corpus  # noqa: E402
import gen_varied  # noqa: E402

# Two generators of different shapes (see their docstrings): no figure may depend on one.
GENERATORS = {"gen_corpus": gen_corpus, "varied": gen_varied}
CORPORA = os.environ.get("CORPORA", "gen_corpus varied").split()
# The targets of issue 16, checked where they are measured.
TARGET_COLD_RATIO, TARGET_RSS_MIB, TARGET_STEADY_RATIO = 12.0, 64.0, 50.0

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
    """nginx as its users deploy it for static files (issue 16): sendfile, tcp_nopush and
    nodelay, a file-descriptor cache, no access log, long keep-alive, one worker per core, and
    pre-compressed copies served as they are (gzip_static)."""
    conf = os.path.join(WORK, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes auto;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    keepalive_timeout 65;
    open_file_cache max=20000 inactive=60s;
    open_file_cache_valid 60s;
    gzip_static on;
    etag on;
    types {{ application/rss+xml xml rss; application/atom+xml atom; application/rdf+xml rdf; application/feed+json json; }}
    server {{ listen 127.0.0.1:{NGINX_PORT} backlog=4096; root {WORK}; }}
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


def corpus_dir(corpus):
    return os.path.join(WORK, "corpus" if corpus == "gen_corpus" else corpus)


def generate(corpus, n, *extra):
    """Runs the corpus's generator for `n` feeds into its directory (a fresh one, or `extra`
    arguments such as an update round)."""
    script = os.path.join(ROOT, "bench", f"{GENERATORS[corpus].__name__}.py")
    sizes = ["--entries", str(ENTRIES)] if corpus == "gen_corpus" else []
    subprocess.run([sys.executable, script, corpus_dir(corpus), "--feeds", str(n), *sizes, *extra],
                   check=True, stdout=subprocess.DEVNULL if extra else None)
    if extra and os.path.exists(os.path.join(WORK, "nginx.pid")):
        # nginx's open_file_cache would go on serving a changed file's old size and mtime for
        # up to a minute: new workers start with an empty cache, and every poll after this
        # sees the update.
        subprocess.run(["nginx", "-c", os.path.join(WORK, "nginx.conf"), "-p", WORK, "-s", "reload"],
                       check=False, stderr=subprocess.DEVNULL)
        time.sleep(1)


def ensure_corpus(n, corpus="gen_corpus"):
    """The bench directory, with `corpus`'s feeds 0..n in it, as generated (not updated)."""
    os.makedirs(WORK, exist_ok=True)
    d = corpus_dir(corpus)
    fresh = [int(f.split("-")[1]) for f in os.listdir(d) if f.startswith(".fresh-")] if os.path.isdir(d) else []
    if not any(m >= n for m in fresh):
        shutil.rmtree(d, ignore_errors=True)
        generate(corpus, n)
        open(os.path.join(d, f".fresh-{n}"), "w").close()


def spoil(corpus):
    """Marks a corpus edited by update rounds: the next ensure_corpus generates it afresh."""
    for f in os.listdir(corpus_dir(corpus)):
        if f.startswith(".fresh-"):
            os.remove(os.path.join(corpus_dir(corpus), f))


def feed_urls(n, corpus="gen_corpus"):
    sub = os.path.basename(corpus_dir(corpus))
    return [f"http://127.0.0.1:{NGINX_PORT}/{sub}/{GENERATORS[corpus].feed_file(i)}" for i in range(n)]


def write_configs(n, corpus="gen_corpus"):
    tag = f"{n}" if corpus == "gen_corpus" else f"{corpus}-{n}"
    db = os.path.join(WORK, f"agg-{tag}.db")
    cfg = os.path.join(WORK, f"agg-{tag}.toml")
    with open(cfg, "w") as f:
        f.write(f'[storage]\npath = "{db}"\n\n[fetch]\nconcurrency = 16\nper_host = 16\ntimeout = "60s"\n\n'
                f'[server]\nlisten = "127.0.0.1:{DAEMON_PORT}"\n'
                # wrk's connections all come from 127.0.0.1, as a reverse proxy's would.
                'per_address = 1024\n\n')
        for u in feed_urls(n, corpus):
            f.write(f'[[feed]]\nurl = "{u}"\n\n')
        f.write(open(os.path.join(ROOT, "config.toml")).read().split("# ---------------------------------------------------------------- tag rules", 1)[1]
                .replace('path = "public/', f'path = "{WORK}/public-{tag}/'))
        # The small feed of the serving scenario.
        f.write('\n[[output]]\nname = "latest"\ntitle = "Latest ten"\nlimit = 10\n')
    urls = os.path.join(WORK, f"urls-{tag}")
    with open(urls, "w") as f:
        f.write("\n".join(feed_urls(n, corpus)) + "\n")
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

def cold_and_warm(corpus):
    say(f"## 1-2. Cold and warm `--once`, corpus {corpus} (alternating runs, medians)")
    say()
    for n in SIZES:
        cfg, db, urls, nb_conf = write_configs(n, corpus)
        cache = os.path.join(WORK, f"newsboat-{corpus}-{n}.db")
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
        rss = median(agg_cold, "rss")
        say(f"N = {n}")
        say(f"    aggregate cold  {fmt(agg_cold)}   peak RSS target <= {TARGET_RSS_MIB:.0f} MiB: "
            f"{'met' if rss <= TARGET_RSS_MIB else 'missed'}")
        say(f"    aggregate warm  {fmt(agg_warm)}")
        if peer:
            ratio = median(nb_cold, "wall") / median(agg_cold, "wall")
            say(f"    newsboat  cold  {fmt(nb_cold)}")
            say(f"    newsboat  warm  {fmt(nb_warm)}")
            say(f"    ratio cold: aggregate is {ratio:.1f}x faster (target >= {TARGET_COLD_RATIO:.0f}x: "
                f"{'met' if ratio >= TARGET_COLD_RATIO else 'missed'}); "
                f"warm: {median(nb_warm, 'wall') / median(agg_warm, 'wall'):.1f}x faster")
        say()


def cpu_seconds(pid):
    """User plus system CPU of a running process, in seconds (/proc/PID/stat)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def polls_done(base):
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    return sum(float(m) for m in re.findall(r"^aggregate_polls_total\{[^}]*\} (\S+)$", text, re.M))


def steady(corpus):
    """The running service's cost: CPU seconds per 1000 polls when 10% of the feeds changed
    since their last poll (two new entries and an edited title each), against newsboat's
    reload of the same changes. The rest answer 304 to conditional requests."""
    n = 1000 if 1000 in SIZES else SIZES[0]
    cfg, db, urls, nb_conf = write_configs(n, corpus)
    cache = os.path.join(WORK, f"newsboat-{corpus}-{n}.db")
    say(f"## 3. Steady state, corpus {corpus}: {n} feeds, 10% changed between polls")
    say()
    fill(cfg, db)
    peer = n in PEER_SIZES
    if peer and not os.path.exists(cache):
        newsboat_reload(urls, cache, nb_conf)
    agg, once, nb = [], [], []
    with service(cfg, "20s", "steady.log") as (daemon, base):
        deadline = time.monotonic() + 60
        while polls_done(base) < n and time.monotonic() < deadline:  # its first round, all 304
            time.sleep(0.5)
        for r in range(1, RUNS + 1):
            generate(corpus, n, "--update", "0.1", "--round", str(r))
            cpu0, polls0 = cpu_seconds(daemon.pid), polls_done(base)
            while polls_done(base) < polls0 + n:
                time.sleep(1)  # each look renders /metrics: a cost of ours, kept rare
            agg.append((cpu_seconds(daemon.pid) - cpu0) * 1000 / (polls_done(base) - polls0))
            if peer:
                t = newsboat_reload(urls, cache, nb_conf)
                nb.append((t["user"] + t["sys"]) * 1000 / n)
    # --once on the same kind of change, for cron users (a process start, the index loaded).
    for r in range(RUNS + 1, 2 * RUNS + 1):
        generate(corpus, n, "--update", "0.1", "--round", str(r))
        t = aggregate_once(cfg)
        once.append((t["user"] + t["sys"]) * 1000 / n)
    spoil(corpus)
    say(f"    aggregate service  {statistics.median(agg):.3f} CPU s per 1000 polls "
        f"(runs: {' '.join(f'{x:.3f}' for x in agg)})")
    say(f"    aggregate --once   {statistics.median(once):.3f} CPU s per 1000 polls")
    if nb:
        ratio = statistics.median(nb) / statistics.median(agg)
        say(f"    newsboat reload    {statistics.median(nb):.3f} CPU s per 1000 polls")
        say(f"    ratio: the service spends {ratio:.0f}x less CPU (target >= {TARGET_STEADY_RATIO:.0f}x: "
            f"{'met' if ratio >= TARGET_STEADY_RATIO else 'missed'}); --once "
            f"{statistics.median(nb) / statistics.median(once):.0f}x less")
    say()


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


def wait_for_service(port=DAEMON_PORT):
    """The started service's base URL, once it answers /healthz (10 s at most)."""
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz").read()
            break
        except OSError:
            time.sleep(0.1)
    return base


def fill(cfg, db, binary=None):
    """A fresh database for `cfg`, filled by one cold `--once` pass."""
    reset_db(db)
    subprocess.run([binary or BIN, "--once", "-q", "--config", cfg], cwd=WORK, check=True)


@contextlib.contextmanager
def service(cfg, interval, log_name, binary=None, port=DAEMON_PORT):
    """The service on `cfg`'s database polling every `interval`, its log in WORK/`log_name`,
    listening on `port`; yields the process and its base URL once it answers, and stops it
    with SIGTERM."""
    live = cfg.replace(".toml", f"-every-{interval}.toml")
    text = open(cfg).read().replace("[fetch]\n", f'[fetch]\ninterval = "{interval}"\n')
    open(live, "w").write(text.replace(f"127.0.0.1:{DAEMON_PORT}", f"127.0.0.1:{port}"))
    with open(os.path.join(WORK, log_name), "w") as log:
        daemon = subprocess.Popen([binary or BIN, "--config", live, "--log-level", "warn"], cwd=WORK,
                                  stdout=log, stderr=log)
        try:
            yield daemon, wait_for_service(port)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)


def fetch(url, headers=None):
    """ETag and body of a GET, with these request headers."""
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.headers.get("ETag"), r.read(), r.headers.get("Content-Encoding")


SERVED = [("50-item tag feed", "binance.rss"), ("10-item feed", "latest.rss")]


def static_copies(base, static):
    """The daemon's bytes of each served feed as files for nginx, with a gzip copy beside
    each (nginx's gzip_static serves it as it is), and the URLs of both servers."""
    os.makedirs(static, exist_ok=True)
    cases = []
    for label, name in SERVED:
        _, body, _ = fetch(f"{base}/feeds/{name}")
        _, gz, enc = fetch(f"{base}/feeds/{name}", {"Accept-Encoding": "gzip"})
        assert enc == "gzip", f"/feeds/{name} was not gzipped"
        path = os.path.join(static, name)
        with open(path, "wb") as f:
            f.write(body)
        with open(path + ".gz", "wb") as f:
            f.write(gz)
        mtime = os.path.getmtime(path)
        os.utime(path + ".gz", (mtime, mtime))
        cases.append((label, name, len(body), len(gz)))
    return cases


def serving():
    """aggregate's own HTTP server against the tuned nginx serving the same bytes from files:
    200s and 304s, identity and gzip, a 50-item and a 10-item feed, 32 and 256 connections;
    alternating runs, medians. The service polls hourly, so only the requests load it."""
    n = 1000 if 1000 in SIZES else SIZES[0]
    corpus = CORPORA[0]
    cfg, db, _, _ = write_configs(n, corpus)
    say(f"## 4. Serving against a tuned nginx, {n}-feed database (wrk -t2, {SERVE_SECONDS} s a run, "
        f"{RUNS} alternating runs, medians)")
    say()
    fill(cfg, db)
    rows, errors = [], []
    with service(cfg, "1h", "daemon.log") as (_, base):
        cases = static_copies(base, os.path.join(WORK, "static"))
        for label, name, size, gz_size in cases:
            say(f"    {label}: /feeds/{name}, {size / 1024:.1f} KiB, {gz_size / 1024:.1f} KiB gzipped")
        for label, name, _, _ in cases:
            ours, theirs = f"{base}/feeds/{name}", f"http://127.0.0.1:{NGINX_PORT}/static/{name}"
            for enc in ("identity", "gzip"):
                accept = [f"Accept-Encoding: {enc}"]
                tag_a, _, _ = fetch(ours, {"Accept-Encoding": enc})
                tag_n, _, _ = fetch(theirs, {"Accept-Encoding": enc})
                for status, extra_a, extra_n in (("200", [], []),
                                                 ("304", [f"If-None-Match: {tag_a}"], [f"If-None-Match: {tag_n}"])):
                    for conns in (32, 256):
                        a, b = [], []
                        for _ in range(RUNS):
                            a.append(wrk(ours, conns, accept + extra_a))
                            b.append(wrk(theirs, conns, accept + extra_n))
                        errors += [r["errors"] for r in a if r["errors"]]
                        rows.append((label, enc, status, conns, a, b))
    say()
    say("| feed | encoding | status | conns | aggregate req/s | p99 ms | nginx req/s | p99 ms | ratio | p99 target |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    met = 0
    for label, enc, status, conns, a, b in rows:
        ra, rb = median(a, "rps"), median(b, "rps")
        pa, pb = median(a, "p99"), median(b, "p99")
        ok = ra >= rb and pa <= pb + 1
        met += ok
        say(f"| {label} | {enc} | {status} | {conns} | {ra:,.0f} | {pa:.2f} | {rb:,.0f} | {pb:.2f} | "
            f"{ra / rb:.2f} | {'met' if pa <= pb + 1 else 'missed'} |")
    say()
    say(f"    cases where aggregate >= nginx in req/s and p99 <= nginx's + 1 ms: {met} of {len(rows)}")
    say(f"    wrk errors against aggregate: {' '.join(errors) or 'none'}")
    say(f"    daemon log during the load: {len(open(os.path.join(WORK, 'daemon.log')).read().splitlines())} warning/error lines")
    say()


def build():
    say("## 6. Build: the README's two commands on a fresh clone (bench/build_time.sh)")
    say()
    out = subprocess.run(["bash", os.path.join(ROOT, "bench", "build_time.sh")], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        say("    " + line)
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
    for corpus in CORPORA:
        ensure_corpus(max(SIZES), corpus)
    start_nginx()
    try:
        say(f"# aggregate benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        say()
        say(f"Machine: {os.cpu_count()} cores, {os.uname().machine}, {os.uname().release}; binary: {BIN}.")
        for corpus in CORPORA:
            first = min(1000, max(SIZES))
            files = [os.path.join(corpus_dir(corpus), GENERATORS[corpus].feed_file(i)) for i in range(first)]
            say(f"Corpus {corpus}: {sum(map(os.path.getsize, files)) / 1e6:.0f} MB for the first {first} feeds, "
                f"served by the tuned nginx on 127.0.0.1.")
        say(f"Runs: {RUNS}, alternating aggregate and its peer; medians.")
        say()
        only = os.environ.get("ONLY", "cold steady serving scale build").split()
        for name, scenario in [("cold", cold_and_warm), ("steady", steady)]:
            if name in only:
                for corpus in CORPORA:
                    ensure_corpus(max(SIZES), corpus)
                    scenario(corpus)
        for name, scenario in [("serving", serving), ("scale", scale), ("build", build)]:
            if name in only:
                scenario()
    finally:
        stop_nginx()
    with open(os.path.join(WORK, "results.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    print(f"\nwritten to {os.path.join(WORK, 'results.md')}")


if __name__ == "__main__":
    main()
