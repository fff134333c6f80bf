#!/usr/bin/env python3
"""Soak: the service against a local server of feeds that keep changing, read by a load
generator, for long enough that days of its life pass (short interval, short retention).

    python3 bench/soak.py --binary target/release/aggregate --minutes 30 --feeds 500 \
        --out target/soak

Every few seconds it samples the service's resident memory, open descriptors, threads, the
database and WAL sizes, the polls it finished and how long they took (from /metrics), and the
latency of the outputs it serves (measured by the reader here), into OUT/soak.csv; then it
plots each over time (OUT/soak.png, with gnuplot when installed) and checks the targets:

- after warm-up (the first fifth of the run), memory and descriptors show no growth trend;
- the WAL stays bounded, and the database by retention;
- no poll window's p99 is above twice the first window's (after warm-up);
- no error the service logged is its own (the feeds' failures are expected and logged as
  warnings).

Exit 0 when every target holds, 1 otherwise, with the reasons. The feeds: each gains an entry
every few polls and edits one now and then; one in ten fails for a while and recovers; some
are moved (301), some answer 429 with Retry-After, some are slow.
"""

import argparse
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from email.utils import formatdate

WORDS = (
    "Binance Bitcoin Ethereum regulators SEC exchange token listing stablecoin ETF miners "
    "validators DeFi lending hack bridge custody treasury yield rally slump volume launch"
).split()


class Feeds:
    """What every feed says at a moment: a deterministic function of the feed and the time."""

    def __init__(self, count, started, step):
        self.count = count
        self.started = started
        self.step = step  # seconds between new entries of one feed, on average

    def kind(self, n):
        if n % 50 == 7:
            return "moved"
        if n % 50 == 13:
            return "limited"
        if n % 50 == 21:
            return "slow"
        if n % 10 == 3:
            return "flaky"
        return "plain"

    def body(self, n, now):
        # Entry i exists from started + i * step (each feed phase-shifted); the newest 20 shown.
        phase = (n * 7.3) % self.step
        newest = int((now - self.started + phase) / self.step) + 3
        items = []
        for i in range(newest, max(-1, newest - 20), -1):
            rnd = random.Random(n * 100_003 + i)
            words = " ".join(rnd.choice(WORDS) for _ in range(8))
            # Now and then an entry is edited later: its text changes after a while.
            edited = " (updated)" if i % 7 == 0 and newest - i > 2 else ""
            when = formatdate(self.started + i * self.step - phase, usegmt=True)
            items.append(
                f"<item><title>Feed {n} story {i}: {words}</title>"
                f"<link>http://soak.example/{n}/{i}</link><guid>soak-{n}-{i}</guid>"
                f"<pubDate>{when}</pubDate><description>&lt;p&gt;{words} {words}{edited}&lt;/p&gt;"
                f"</description><category>crypto</category></item>"
            )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Soak feed {n}</title>'
            f"<link>http://soak.example/{n}</link>{''.join(items)}</channel></rss>"
        ).encode()


HOSTS = 20  # feeds are spread over this many loopback addresses: one site's 429 holds only its own


def serve_feeds(feeds, port_holder, stop):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body=b"", headers=()):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            m = re.match(r"^/(f|moved)/(\d+)\.xml$", self.path)
            if not m:
                return self.reply(404, b"no such feed")
            n = int(m.group(2))
            now = time.time()
            kind = feeds.kind(n)
            if kind == "moved" and m.group(1) == "f":
                return self.reply(301, headers=[("Location", f"/moved/{n}.xml")])
            if kind == "flaky" and int((now - feeds.started) / 120 + n) % 4 == 0:
                return self.reply(503, b"down for a while")
            if kind == "limited" and int((now - feeds.started) / 60) % 3 == 0:
                return self.reply(429, b"slow down", [("Retry-After", "30")])
            if kind == "slow":
                time.sleep(1.5)
            body = feeds.body(n, now)
            etag = '"%x"' % (hash(body) & 0xFFFFFFFF)
            if self.headers.get("If-None-Match") == etag:
                return self.reply(304, headers=[("ETag", etag)])
            self.reply(200, body, [("Content-Type", "application/rss+xml"), ("ETag", etag)])

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    servers = []
    port = 0
    for h in range(HOSTS):
        server = Server((f"127.0.1.{h + 1}", port), Handler)
        port = server.server_address[1]  # the same port on every address
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_holder.append(port)
    stop.wait()
    for server in servers:
        server.shutdown()


def config(feeds_port, listen_port, count, interval, retention, workdir):
    lines = [
        "[storage]",
        'path = "soak.db"',
        f'retention = "{retention}"',
        "",
        "[fetch]",
        f'interval = "{interval}"',
        "concurrency = 32",
        "per_host = 32",
        'timeout = "10s"',
        "",
        "[server]",
        f'listen = "127.0.0.1:{listen_port}"',
        "",
        # Story clustering's windows shrunk like the rest of time: stories leave the index
        # minutes after they are created, as they would days after in a year of service.
        "[dedup]",
        'window = "2m"',
        'absorb = "4m"',
        'settle = "1m"',
        "",
    ]
    for n in range(count):
        host = f"127.0.1.{n % HOSTS + 1}"
        lines += ["[[feed]]", f'url = "http://{host}:{feeds_port}/f/{n}.xml"', ""]
    lines += [
        "[[tag]]",
        'name = "Binance"',
        'keywords = ["Binance"]',
        "",
        "[[output]]",
        'name = "all"',
        "limit = 50",
        "",
        "[[output]]",
        'name = "binance"',
        'tags = ["Binance"]',
        'path = "public/binance.rss"',
        "",
    ]
    with open(os.path.join(workdir, "config.toml"), "w") as f:
        f.write("\n".join(lines))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reader:
    """A feed reader polling the outputs as fast as it can, conditional half the time."""

    def __init__(self, port, stop):
        self.port, self.stop = port, stop
        self.latencies = []
        self.errors = []
        self.lock = threading.Lock()

    def run(self):
        etag = None
        paths = ["/feeds/all.rss", "/feeds/binance.atom", "/feed.json?tags=binance&limit=20"]
        i = 0
        while not self.stop.is_set():
            i += 1
            req = urllib.request.Request(f"http://127.0.0.1:{self.port}{paths[i % 3]}")
            if etag and i % 2 == 0 and i % 3 == 0:
                req.add_header("If-None-Match", etag)
            began = time.monotonic()
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
                    if i % 3 == 0:
                        etag = r.headers.get("ETag")
            except urllib.error.HTTPError as e:
                if e.code != 304:
                    with self.lock:
                        self.errors.append(f"{req.full_url}: HTTP {e.code}")
            except Exception as e:
                with self.lock:
                    self.errors.append(f"{req.full_url}: {e!r}")
            with self.lock:
                self.latencies.append(time.monotonic() - began)
            time.sleep(0.02)

    def take(self):
        with self.lock:
            lat, self.latencies = self.latencies, []
            return lat


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except Exception:
        return None
    polls = sum(
        float(v) for v in re.findall(r"^aggregate_polls_total\{[^}]*\} (\S+)$", text, re.M)
    )
    buckets = [
        (float("inf") if le == "+Inf" else float(le), float(v))
        for le, v in re.findall(
            r'^aggregate_fetch_duration_seconds_bucket\{le="([^"]+)"\} (\S+)$', text, re.M
        )
    ]
    return polls, sorted(buckets)


def quantile_between(before, after, q):
    """The q-quantile of the polls between two histogram readings (an upper bucket bound)."""
    if not before or not after:
        return None
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = counts[-1][1]
    if total <= 0:
        return None
    for le, c in counts:
        if c >= q * total:
            return le
    return counts[-1][0]


def proc(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def size_mib(path):
    try:
        return os.path.getsize(path) / (1 << 20)
    except OSError:
        return 0.0


def slope(xs, ys):
    """Least-squares slope of ys over xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/aggregate")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--interval", default="30s", help="each feed's polling interval")
    ap.add_argument("--retention", default="10m")
    ap.add_argument("--sample", type=float, default=5, help="seconds between samples")
    ap.add_argument("--out", default="target/soak")
    args = ap.parse_args()

    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "work", "public"))
    work = os.path.join(out, "work")
    binary = os.path.abspath(args.binary)

    stop = threading.Event()
    port_holder = []
    feeds = Feeds(args.feeds, time.time(), step=20.0)
    threading.Thread(target=serve_feeds, args=(feeds, port_holder, stop), daemon=True).start()
    while not port_holder:
        time.sleep(0.05)
    listen = free_port()
    config(port_holder[0], listen, args.feeds, args.interval, args.retention, work)
    log = open(os.path.join(out, "service.log"), "w")
    service = subprocess.Popen(
        [binary, "--config", "config.toml", "--log-level", "info"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.time() + 30
    while metrics(listen) is None:
        if time.time() > deadline or service.poll() is not None:
            sys.exit("the service did not start; see " + os.path.join(out, "service.log"))
        time.sleep(0.2)
    reading = threading.Event()
    reader = Reader(listen, reading)
    threading.Thread(target=reader.run, daemon=True).start()

    rows = []
    started = time.monotonic()
    last = metrics(listen)
    end = started + args.minutes * 60
    while time.monotonic() < end and service.poll() is None:
        time.sleep(args.sample)
        now = metrics(listen)
        rss, fds, threads = proc(service.pid)
        lat = sorted(reader.take())
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0
        rows.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "rss_mib": round(rss, 2),
                "fds": fds,
                "threads": threads,
                "db_mib": round(size_mib(os.path.join(work, "soak.db")), 3),
                "wal_mib": round(size_mib(os.path.join(work, "soak.db-wal")), 3),
                "polls": int(now[0] - last[0]) if now and last else 0,
                "poll_p99_s": quantile_between(last[1], now[1], 0.99) if now and last else None,
                "served": len(lat),
                "served_p50_ms": round(p(0.50), 2),
                "served_p99_ms": round(p(0.99), 2),
            }
        )
        last = now or last
    alive = service.poll() is None
    reading.set()
    time.sleep(0.5)
    service.send_signal(signal.SIGTERM)
    try:
        code = service.wait(timeout=20)
    except subprocess.TimeoutExpired:
        service.kill()
        code = "killed after 20 s"
    stop.set()
    log.close()

    csv_path = os.path.join(out, "soak.csv")
    with open(csv_path, "w") as f:
        keys = list(rows[0].keys())
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join("" if r[k] is None else str(r[k]) for k in keys) + "\n")
    plot(out, csv_path)

    failures = check(rows, out, alive, code, reader.errors)
    summary = summarize(rows)
    summary["failures"] = failures
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))
    sys.exit(1 if failures else 0)


def summarize(rows):
    warm = rows[len(rows) // 5 :] or rows
    col = lambda k, rs=warm: [r[k] for r in rs if r[k] is not None]
    return {
        "samples": len(rows),
        "minutes": round(rows[-1]["t_s"] / 60, 1),
        "polls": sum(col("polls", rows)),
        "served": sum(col("served", rows)),
        "rss_mib": {"min": min(col("rss_mib")), "max": max(col("rss_mib")),
                    "slope_mib_per_hour": round(slope(col("t_s"), col("rss_mib")) * 3600, 2)},
        "fds": {"min": min(col("fds")), "max": max(col("fds"))},
        "threads": {"min": min(col("threads")), "max": max(col("threads"))},
        "db_mib_max": max(col("db_mib", rows)),
        "wal_mib_max": max(col("wal_mib", rows)),
        "served_p99_ms_median": statistics.median(col("served_p99_ms")),
        "poll_p99_s_max": max(col("poll_p99_s") or [0]),
    }


def check(rows, out, alive, code, reader_errors):
    failures = []
    if not alive:
        failures.append("the service died during the run")
    if code != 0:
        failures.append(f"SIGTERM did not end the service with 0: {code}")
    warm = rows[len(rows) // 5 :]
    if len(warm) < 5:
        return failures + ["too few samples to judge a trend"]
    t = [r["t_s"] for r in warm]
    rss = [r["rss_mib"] for r in warm]
    # Growth over the whole run, extrapolated from the trend: under a tenth of the mean, and
    # under 8 MiB (noise from the allocator returning pages is a few MiB either way).
    grown = slope(t, rss) * (t[-1] - t[0])
    if grown > max(0.1 * statistics.fmean(rss), 8):
        failures.append(f"memory grows: +{grown:.1f} MiB over the run after warm-up")
    fds = [r["fds"] for r in warm]
    # Idle keep-alive connections to the feeds' hosts come and go: a trend, not a wobble.
    if slope(t, fds) * (t[-1] - t[0]) > max(16, 0.25 * statistics.fmean(fds)):
        failures.append(f"descriptors grow: {fds[0]} -> {fds[-1]}")
    if max(r["wal_mib"] for r in rows) > 80:
        failures.append("the WAL is not bounded (over 80 MiB)")
    dbs = [r["db_mib"] for r in warm]
    half = len(dbs) // 2
    if len(dbs) > 10 and max(dbs[half:]) > 1.5 * max(dbs[:half]) + 1:
        failures.append(f"the database keeps growing past retention: {dbs[0]} -> {dbs[-1]} MiB")
    p99s = [r["poll_p99_s"] for r in warm if r["poll_p99_s"] not in (None, float("inf"))]
    if p99s:
        first = max(p99s[: max(1, len(p99s) // 5)])
        if max(p99s) > 2 * first and max(p99s) - first > 0.5:
            failures.append(f"polls slow down: p99 {first} s at first, {max(p99s)} s later")
    own = [
        line.strip()
        for line in open(os.path.join(out, "service.log"))
        if " ERROR " in line
    ]
    if own:
        failures.append(f"{len(own)} errors of the service's own, first: {own[0]}")
    if reader_errors:
        failures.append(f"{len(reader_errors)} requests of the reader failed, first: {reader_errors[0]}")
    return failures


def plot(out, csv_path):
    if not shutil.which("gnuplot"):
        print("gnuplot not installed: no plot (apt-get install gnuplot-nox)", file=sys.stderr)
        return
    script = f"""
set datafile separator ','
set terminal pngcairo size 1400,1000 font ',10'
set output '{out}/soak.png'
set multiplot layout 3,2 title 'aggregate soak'
set key autotitle columnhead
set xlabel 'minutes'
plot '{csv_path}' using ($1/60):2 with lines title 'RSS (MiB)'
plot '{csv_path}' using ($1/60):3 with lines title 'open descriptors', '' using ($1/60):4 with lines title 'threads'
plot '{csv_path}' using ($1/60):5 with lines title 'database (MiB)', '' using ($1/60):6 with lines title 'WAL (MiB)'
plot '{csv_path}' using ($1/60):7 with lines title 'polls per sample'
plot '{csv_path}' using ($1/60):8 with lines title 'poll p99 (s, bucket bound)'
plot '{csv_path}' using ($1/60):10 with lines title 'served p50 (ms)', '' using ($1/60):11 with lines title 'served p99 (ms)'
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=False)


if __name__ == "__main__":
    main()
