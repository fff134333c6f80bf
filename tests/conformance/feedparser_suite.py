#!/usr/bin/env python3
"""feedparser's own test suite, run through `aggregate` as a republisher.

Every test feed of feedparser 6.0.14 whose `Expect:` line is about entry data is served over
HTTP on 127.0.0.1 (with the `Header:` lines the file asks for, as feedparser's own test server
does), polled by `aggregate --once` into RSS 2.0, Atom 1.0 and JSON Feed outputs, and read back
with feedparser (`sanitize_html=False, resolve_relative_uris=False`). The test's own expectation
is then evaluated on what feedparser read from our RSS and from our Atom output.

Scope. A case counts when its expectation names `entries` and every entry field it names is
one a republisher carries: title, link(s), summary/description, content, dates, author(s),
categories (tags: term and label), enclosures. Left out, because a republisher replaces or does
not carry them: the entry id/guid (we publish our own stable guid), `*_detail.type` and
`.base` and `.language` (we republish titles as plain text and bodies as HTML with absolute
URLs), `source` (ours names the origin feed), `tags.scheme`, links with a rel other than alternate
and enclosure (self, edit, license, via: about the source entry, not the article), comments, rights, contributors,
publisher, geo, iTunes, Media RSS and other extension fields, and `wellformed/sanitize` cases,
which are judged by the safety oracle below instead of by feedparser's sanitiser's exact bytes.

Normalisation (what a republisher may legitimately change): runs of white space compare as one
space and leading/trailing space is ignored; character references and entity forms compare by
the characters they stand for; `<br>` and `<br />` (void elements) are one; attribute quoting
is ignored; markup compares in one canonical spelling (attributes sorted, `xmlns`
declarations, which HTML implies, left out, comments dropped, `<x></x>` and an unclosed `<x>`
with nothing in it alike); URLs compare with scheme and host case-insensitive and percent-encoding decoded
(an IRI and its URI are one address); the `rel="noopener noreferrer"` we add to links is ignored; one `<div>` around a whole
body (Atom's XHTML container, which feed-rs unwraps) is ignored; an author compares on
the name (feedparser appends `(email)`); dates compare to the minute, as struct_time, ISO 8601
or RFC 822 strings; Atom 0.3's `created` compares with our one publication date; a leading
`bozo and` is dropped (it says the source was broken, not our output); tags compare as a set
(ours are sorted; an expectation indexing them sees them in the source's order), and so do an
entry's links. Titles are
republished as plain text, so where the source's title is HTML (as feedparser itself reads the
source) and the expectation is only about the title, it compares as the text it shows.

Every case's outputs must also read back without error whatever it expects: RSS 2.0 and Atom
in feedparser (not bozo), JSON Feed 1.1 as JSON; one that does not fails the run.

A case passes when its expectation holds on our Atom output or on our RSS output (each is
reported too: RSS 2.0 cannot say some things, such as several enclosures, that Atom can).

Sanitize cases pass when neither output carries a script, an event handler, a javascript: URL,
a style attribute or element, an iframe, object, embed, form, base, applet, frame or meta, and
the safe text is still there: every text run of what feedparser's sanitiser keeps (the
expectation's value), except comments and runs that read as script code.

Usage: feedparser_suite.py --binary target/release/aggregate [--min-rate 99] [--report FILE]
"""

import argparse
import ast
import calendar
import concurrent.futures
import html
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FEEDPARSER = "feedparser==6.0.14"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / "target" / "conformance"

DESC_RE = re.compile(rb"Description:\s*(.*?)\s*Expect:\s*(.*)\s*-->")
SKIP_RE = re.compile(rb"SkipUnless:\s*(.*?)\n")
HEADER_RE = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)

# Entry fields a republisher carries (first key, and for dicts the second key).
IN_SCOPE = {
    ("title",), ("title_detail", "value"), ("description",), ("summary",),
    ("summary_detail", "value"), ("content", "value"), ("content",), ("link",),
    ("links", "href"), ("links", "rel"), ("links", "type"), ("links", "length"), ("links",),
    ("tags", "term"), ("tags", "label"), ("tags",), ("category",),
    ("author",), ("author_detail", "name"), ("authors", "name"), ("authors",),
    ("published",), ("published_parsed",), ("updated",), ("updated_parsed",),
    ("created",), ("created_parsed",),
    ("enclosures",), ("enclosures", "href"), ("enclosures", "url"),
    ("enclosures", "type"), ("enclosures", "length"),
}

DANGER = re.compile(
    r"<\s*(script|style|iframe|object|embed|form|base|applet|frame|frameset|meta|link)\b"
    r"|\son[a-z]+\s*=|javascript:|vbscript:|\sstyle\s*=|expression\s*\(",
    re.I,
)


def fetch_feedparser():
    """The sdist (for its tests/) and an importable feedparser, both from PyPI, cached."""
    sdist_dir = CACHE / "sdist"
    tests = next(sdist_dir.glob("feedparser-*/tests"), None) if sdist_dir.exists() else None
    if tests is None:
        sdist_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", FEEDPARSER, "--no-deps",
             "--no-binary", ":all:", "-d", str(sdist_dir)],
            check=True,
        )
        archive = next(sdist_dir.glob("feedparser-*.tar.gz"))
        shutil.unpack_archive(str(archive), str(sdist_dir))
        tests = next(sdist_dir.glob("feedparser-*/tests"))
    lib = CACHE / "py"
    if not (lib / "feedparser").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(lib), FEEDPARSER],
            check=True,
        )
    sys.path.insert(0, str(lib))
    return tests


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the test files with the headers their `Header:` lines name."""

    def send_head(self):
        path = self.translate_path(self.path)
        try:
            blob = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return None
        headers = {k.decode().strip(): v.decode().strip() for k, v in HEADER_RE.findall(blob)}
        status = int(headers.pop("Status", 200))
        self.send_response(status)
        ctype = headers.pop("Content-type", None) or headers.pop("Content-Type", None)
        self.send_header("Content-Type", ctype or self.guess_type(path))
        self.send_header("Content-Length", str(len(blob)))
        for k, v in headers.items():
            if k.lower() not in ("content-length", "content-encoding"):
                self.send_header(k, v)
        self.end_headers()
        import io
        return io.BytesIO(blob)

    def log_message(self, *args):
        pass


def entry_paths(expr):
    """The entry field paths an expectation reads: ('title_detail', 'value'), ..."""
    out = set()
    for node in ast.walk(ast.parse(expr, mode="eval")):
        if not isinstance(node, (ast.Subscript, ast.Attribute)):
            continue
        chain, n = [], node
        while isinstance(n, (ast.Subscript, ast.Attribute, ast.Call)):
            if isinstance(n, ast.Call):
                n = n.func
                continue
            if isinstance(n, ast.Subscript):
                s = n.slice
                if isinstance(s, ast.Constant) and isinstance(s.value, str):
                    chain.append(s.value)
            else:
                chain.append(n.attr)
            n = n.value
        if isinstance(n, ast.Name) and n.id == "entries":
            out.add(tuple(reversed(chain))[:2])
    return {p for p in out if not any(q != p and q[: len(p)] == p for q in out)}


def load_cases(tests):
    cases = []
    for f in sorted(tests.rglob("*.xml")):
        rel = f.relative_to(tests.parent).as_posix()
        data = f.read_bytes()
        m = DESC_RE.search(data)
        if not m:
            continue
        expect = m.group(2).decode().strip()
        skip = SKIP_RE.search(data)
        if skip and skip.group(1).strip() != b"1":
            continue
        if "entries" not in expect:
            continue
        sanitize = "/sanitize/" in rel
        paths = entry_paths(expect)
        if not sanitize and not all(p in IN_SCOPE or p == () for p in paths):
            continue
        # The source entry's own links of other kinds (self, edit, license, via...) are not
        # republished: an item links to its article and its attachments.
        if not sanitize and ("links", "rel") in paths and re.search(
                r"\['rel'\]\s*==\s*'(?!alternate'|enclosure')", expect):
            continue
        if not sanitize and re.search(r"'rel':\s*'(?!alternate'|enclosure')", expect):
            continue
        cases.append({"file": rel, "expect": expect, "sanitize": sanitize})
    return cases


# ------------------------------------------------------------- normalised comparison

VOID = re.compile(r"<(br|hr|img|input|meta|link|area|col|param|source|wbr)([^>]*?)\s*/?>", re.I)
ATTR_Q = re.compile(r"""(\s[\w:-]+)=(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""")


NOOPENER = re.compile(r"""\s+rel=["']noopener noreferrer["']""")
EMAIL_SUFFIX = re.compile(r"^(.*\S)\s+\([^()\s]+@[^()\s]+\)$")


OUTER_DIV = re.compile(r"^\s*<div(?: xmlns=\"http://www.w3.org/1999/xhtml\")?>(.*)</div>\s*$", re.S)


URL_HOST = re.compile(r"(https?://[^/\s\"'<>]+)", re.I)


VOID_NAMES = {"br", "hr", "img", "input", "meta", "link", "area", "col", "param", "source", "wbr"}


def canon_html(s):
    """Markup in one canonical spelling: attributes sorted and unquoted-insensitive, namespace
    declarations (implied in HTML) and the rel=noopener we add left out, comments dropped, an
    element with nothing in it written the same whether or not it was closed."""
    import html.parser

    out = []

    class P(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            kept = sorted((k, v or "") for k, v in attrs
                          if not k.startswith("xmlns") and not (k == "rel" and v == "noopener noreferrer"))
            out.append(("start", tag, tuple(kept)))

        def handle_startendtag(self, tag, attrs):
            self.handle_starttag(tag, attrs)

        def handle_endtag(self, tag):
            if tag in VOID_NAMES:
                return
            if out and out[-1][0] == "start" and out[-1][1] == tag:
                return  # <x></x> is <x/>
            out.append(("end", tag))

        def handle_data(self, data):
            out.append(("text", data))

    p = P(convert_charrefs=True)
    p.feed(s)
    p.close()
    parts = []
    for t in out:
        if t[0] == "start":
            parts.append("<%s%s>" % (t[1], "".join(' %s="%s"' % kv for kv in t[2])))
        elif t[0] == "end":
            parts.append("</%s>" % t[1])
        else:
            parts.append(t[1])
    return "".join(parts)


def norm_text(s):
    s = NOOPENER.sub("", s)
    m = OUTER_DIV.match(s)
    if m and "<div" not in m.group(1):
        s = m.group(1)
    m = EMAIL_SUFFIX.match(s.strip())
    if m:
        s = m.group(1)
    s = html.unescape(html.unescape(s))
    s = VOID.sub(lambda m: "<%s%s>" % (m.group(1).lower(), m.group(2)), s)
    s = ATTR_Q.sub(lambda m: '%s="%s"' % (m.group(1), m.group(2) or m.group(3) or m.group(4) or ""), s)
    if "<" in s:
        s = canon_html(s)
    s = s.replace("\u00a0", " ")
    # URLs: scheme and host are case-insensitive (RFC 3986 §6.2.2.1), and a percent-encoded
    # IRI is the same address as the IRI.
    s = URL_HOST.sub(lambda m: m.group(1).lower(), s)
    if "%" in s:
        import urllib.parse
        s = urllib.parse.unquote(s)
    return " ".join(s.split())


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


RFC822 = re.compile(r"^(\w{3}, )?\d{1,2} \w{3} \d{2,4} \d\d:\d\d(:\d\d)? ")


def norm(v):
    if isinstance(v, time.struct_time) or (isinstance(v, tuple) and len(v) == 9):
        return ("time", calendar.timegm(tuple(v)) // 60)
    if isinstance(v, str):
        if ISO.match(v.strip()):
            from datetime import datetime
            try:
                d = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
                if d.tzinfo is None:
                    return ("time", calendar.timegm(d.timetuple()) // 60)
                return ("time", int(d.timestamp()) // 60)
            except ValueError:
                pass
        if RFC822.match(v.strip()):
            import email.utils
            try:
                return ("time", int(email.utils.parsedate_to_datetime(v).timestamp()) // 60)
            except (TypeError, ValueError):
                pass
        return norm_text(v)
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


# Set for a case whose expectation is only about titles and whose source title is HTML.
TITLE_AS_TEXT = threading.local()


def as_text(s):
    return norm_text(TAG.sub("", html.unescape(s)))


def _eq(a, b):
    if a == b or norm(a) == norm(b):
        return True
    if getattr(TITLE_AS_TEXT, "on", False) and isinstance(a, str) and isinstance(b, str):
        return as_text(a) == as_text(b)
    return False


def _ne(a, b):
    return not _eq(a, b)


def _in(a, b):
    if a in b:
        return True
    if isinstance(b, str) and isinstance(a, str):
        return norm_text(a) in norm_text(b)
    try:
        na = norm(a)
        return any(na == norm(x) for x in b)
    except TypeError:
        return False


class Loosen(ast.NodeTransformer):
    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) != 1:
            return node
        op = node.ops[0]
        fn = {ast.Eq: "_eq", ast.NotEq: "_ne", ast.In: "_in"}.get(type(op))
        if fn is None:
            return node
        return ast.copy_location(
            ast.Call(func=ast.Name(id=fn, ctx=ast.Load()), args=[node.left, node.comparators[0]],
                     keywords=[]),
            node,
        )


def evaluate(expect, parsed):
    for e in parsed.entries:
        # Atom 1.0 and RSS 2.0 have one publication date: an Atom 0.3 `created` republishes
        # as it.
        for k in ("created", "created_parsed"):
            alias = k.replace("created", "published")
            if k not in e and alias in e:
                e[k] = e[alias]
    # `bozo` says the source document was broken: it is about the source, not our output (which
    # must never be bozo, and `not bozo` still requires that).
    expect = re.sub(r"^bozo and ", "", expect)
    env = dict(parsed)
    glb = {"_eq": _eq, "_ne": _ne, "_in": _in, "time": time}
    try:
        if eval(expect, glb, env):
            return True
    except Exception:
        pass
    try:
        tree = ast.fix_missing_locations(Loosen().visit(ast.parse(expect, mode="eval")))
        return bool(eval(compile(tree, "<expect>", "eval"), glb, env))
    except Exception:
        return False


# ------------------------------------------------------------- running one case

CONFIG = """\
[storage]
path = "{db}"
[fetch]
timeout = "10s"
[server]
base_url = "http://aggregate.test"
[[feed]]
url = "{url}"
title = "conformance"
[[output]]
name = "rss"
path = "{dir}/out.rss"
limit = 200
[[output]]
name = "atom"
path = "{dir}/out.atom"
limit = 200
[[output]]
name = "json"
path = "{dir}/out.json"
limit = 200
"""


TITLE_PATHS = {("title",), ("title_detail", "value")}


def read_source(path):
    import feedparser
    return feedparser.parse(str(path), sanitize_html=False, resolve_relative_uris=False)


def html_title(src):
    """Is the source's first entry title HTML (so that a plain-text title shows the same)?"""
    if not src.entries or "title_detail" not in src.entries[0]:
        return False
    return src.entries[0].title_detail.get("type") != "text/plain"


def source_tag_order(ours, src):
    """Our entries' tags in the order the source gave them: tags are a set to a republisher
    (ours come sorted), so an expectation that indexes tags compares the same set."""
    for mine, theirs in zip(ours.entries, src.entries):
        order = [t.get("term") for t in theirs.get("tags", [])]
        if mine.get("tags"):
            mine["tags"].sort(key=lambda t: order.index(t.get("term"))
                              if t.get("term") in order else len(order))
        # Links likewise: an entry's links are a set in Atom (RFC 4287 gives order no meaning).
        links = [(l.get("rel"), l.get("href")) for l in theirs.get("links", [])]
        if mine.get("links"):
            mine["links"].sort(key=lambda l: links.index((l.get("rel"), l.get("href")))
                               if (l.get("rel"), l.get("href")) in links else len(links))


def run_case(case, binary, base_url, port, work, tests_root):
    import feedparser
    d = Path(tempfile.mkdtemp(dir=work))
    cfg = d / "config.toml"
    url = base_url + "/" + case["file"]
    cfg.write_text(CONFIG.format(db=d / "db.sqlite", url=url, dir=d))
    proc = subprocess.run([binary, "--once", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=60)
    result = {"file": case["file"], "expect": case["expect"], "status": proc.returncode,
              "stderr": proc.stderr.strip()[-400:]}
    expect = case["expect"].replace("127.0.0.1:8097", "127.0.0.1:%d" % port)
    outcome = {}
    # Whatever the expectation, every output must read back without error: RSS and Atom in
    # feedparser (bozo), JSON Feed as JSON with the 1.1 version and a list of items.
    broken = []
    jf = d / "out.json"
    try:
        import json
        doc = json.loads(jf.read_text())
        if doc.get("version") != "https://jsonfeed.org/version/1.1" or not isinstance(doc.get("items"), list):
            broken.append("json: not JSON Feed 1.1")
    except Exception as e:  # noqa: BLE001 - any failure to read is the finding
        broken.append("json: %s" % e)
    for fmt in ("atom", "rss"):
        out = d / ("out." + fmt)
        if not out.exists():
            outcome[fmt] = False
            continue
        raw = out.read_bytes()
        parsed = feedparser.parse(raw, sanitize_html=False, resolve_relative_uris=False)
        if parsed.bozo:
            broken.append("%s: %s" % (fmt, parsed.bozo_exception))
        if case["sanitize"]:
            outcome[fmt] = sanitize_ok(case["expect"], parsed)
        else:
            paths = entry_paths(case["expect"])
            src = read_source(tests_root / case["file"])
            source_tag_order(parsed, src)
            TITLE_AS_TEXT.on = bool(paths) and paths <= TITLE_PATHS and html_title(src)
            outcome[fmt] = evaluate(expect, parsed)
            TITLE_AS_TEXT.on = False
        if fmt == "atom":
            result["got"] = [{k: e.get(k) for k in ("title", "link", "summary", "content", "tags",
                                                   "author", "published", "updated", "enclosures")
                              if e.get(k)} for e in parsed.entries][:2]
    result.update(outcome)
    result["broken"] = broken
    result["pass"] = outcome.get("atom", False) or outcome.get("rss", False)
    shutil.rmtree(d, ignore_errors=True)
    return result


TAG = re.compile(r"<[^>]*>")
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE = re.compile(r"[{};]|\w\(\)|/\*|\*/")


def sanitize_ok(expect, parsed):
    """Nothing dangerous in any entry, and the text of what feedparser's sanitiser keeps is
    still there (the expectation's literal, markup stripped)."""
    if parsed.bozo:
        return False
    bodies = " ".join(
        "%s %s %s" % (e.get("title", ""), e.get("summary", ""),
                      " ".join(c.get("value", "") for c in e.get("content", [])))
        for e in parsed.entries
    )
    if DANGER.search(bodies):
        return False
    literals = []
    for n in ast.walk(ast.parse(expect, mode="eval")):
        if isinstance(n, ast.Compare):
            for side in n.comparators:
                try:
                    value = eval(compile(ast.Expression(side), "<expect>", "eval"),
                                 {"__builtins__": {}})
                except Exception:
                    continue
                if isinstance(value, str):
                    literals.append(value)
    # Comments are not text a reader sees: a sanitiser may drop them with what they hold.
    literals = [COMMENT.sub(" ", l) for l in literals]
    # The safe text is the text runs between tags; a run that reads as script code (braces,
    # a call, comment markers) is the body of a script feedparser's sanitiser let through,
    # and one that drops the script drops it too.
    runs = [r for l in literals for r in TAG.split(l)]
    literals = [r for r in runs if not CODE.search(r)]
    wanted = [norm_text(l) for l in literals if l not in ("description", "summary",
              "title", "value", "content")]
    text = norm_text(TAG.sub(" ", bodies))
    return all(w in text for w in wanted if w)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=str(ROOT / "target" / "debug" / "aggregate"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--min-rate", type=float, default=0.0,
                    help="fail (exit 1) below this percentage of entry-level cases")
    ap.add_argument("--min-sanitize", type=float, default=0.0,
                    help="fail (exit 1) below this percentage of sanitize cases")
    ap.add_argument("--report", help="write every failure here")
    ap.add_argument("--only", help="run only cases whose path contains this")
    args = ap.parse_args()

    tests = fetch_feedparser()
    cases = load_cases(tests)
    if args.only:
        cases = [c for c in cases if args.only in c["file"]]
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: Handler(*a, directory=str(tests.parent)))
    port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="aggregate-conformance-")
    base = "http://127.0.0.1:%d" % port
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: run_case(c, args.binary, base, port, work, tests.parent), cases))
    httpd.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    def folder(f):
        parts = f.split("/")
        return "/".join(parts[1:3]) if len(parts) > 3 else parts[1]

    by = {}
    for r in results:
        by.setdefault(folder(r["file"]), []).append(r)
    print("%-28s %6s %6s %6s %6s" % ("folder", "cases", "pass", "atom", "rss"))
    for k in sorted(by):
        rs = by[k]
        print("%-28s %6d %6d %6d %6d" % (k, len(rs), sum(r["pass"] for r in rs),
                                         sum(r.get("atom", False) for r in rs),
                                         sum(r.get("rss", False) for r in rs)))
    # Entry-level cases are all of them, sanitize ones included (their expectations are about
    # entry bodies too); the rate outside wellformed/sanitize is printed beside it.
    entry = [r for r in results if "/sanitize/" not in r["file"]]
    san = [r for r in results if "/sanitize/" in r["file"]]
    rate = 100.0 * sum(r["pass"] for r in results) / max(1, len(results))
    srate = 100.0 * sum(r["pass"] for r in san) / max(1, len(san))
    failures = [r for r in results if not r["pass"]]
    if args.report:
        with open(args.report, "w") as f:
            for r in failures:
                f.write("%s\n  expect: %s\n  exit %s atom=%s rss=%s\n  got: %s\n  %s\n" % (
                    r["file"], r["expect"], r["status"], r.get("atom"), r.get("rss"),
                    r.get("got"), r["stderr"].replace("\n", "\n  ")))
    for r in failures[:60]:
        print("FAIL", r["file"], "::", r["expect"][:160])
    print("entry-level cases: %d of %d pass (%.2f%%); outside sanitize: %d of %d (%.1f%%); "
          "sanitize: %d of %d (%.1f%%)" % (
              sum(r["pass"] for r in results), len(results), rate,
              sum(r["pass"] for r in entry), len(entry),
              100.0 * sum(r["pass"] for r in entry) / max(1, len(entry)),
              sum(r["pass"] for r in san), len(san), srate))
    broken = [r for r in results if r.get("broken")]
    for r in broken:
        print("BROKEN OUTPUT", r["file"], "::", "; ".join(r["broken"]))
    print("outputs that read back with an error: %d of %d cases" % (len(broken), len(results)))
    below = rate < args.min_rate or srate < args.min_sanitize or bool(broken)
    if below:
        print("below the required rate (entries %.1f%% < %.1f%% or sanitize %.1f%% < %.1f%%)" % (
            rate, args.min_rate, srate, args.min_sanitize))
    print("conformance: %d passed, %d failed" % (len(results) - len(failures), len(failures)))
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
