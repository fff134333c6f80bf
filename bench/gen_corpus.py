#!/usr/bin/env python3
"""Generates a benchmark corpus: N source feeds x M entries in every format aggregate reads
(RSS 2.0 with content:encoded, Atom, RSS 1.0, JSON Feed), with realistic crypto-news HTML,
categories, authors, enclosures and stories duplicated across sources (wire copy with
different tracking parameters).

    gen_corpus.py DIR --feeds 1000 --entries 50            # fresh corpus
    gen_corpus.py DIR --feeds 1000 --entries 50 --update 0.1 --round 1
        # edits 10% of the feeds: two new entries prepended, one title edited

Deterministic: the same arguments give the same bytes.
"""
import argparse
import datetime as dt
import html
import json
import os
import random

TOPICS = [
    ("Bitcoin", ["Bitcoin", "BTC", "Lightning Network", "miners", "halving"]),
    ("Ethereum", ["Ethereum", "Ether", "ETH", "validators", "rollups"]),
    ("Binance", ["Binance", "BNB", "BNB Chain", "Richard Teng"]),
    ("Regulation", ["SEC", "regulators", "MiCA", "CFTC", "lawsuit"]),
    ("Stablecoins", ["USDC", "Tether", "stablecoin", "reserves"]),
    ("DeFi", ["DeFi", "liquidity", "lending protocol", "DEX"]),
    ("Solana", ["Solana", "SOL", "memecoins", "validators"]),
    ("ETF", ["ETF", "spot ETF", "inflows", "BlackRock"]),
]
WORDS = ("market traders analysts price volume exchange network developers upgrade token supply "
         "demand funds institutional investors report data week month quarter record high low "
         "rally decline volatility liquidity custody wallet protocol governance proposal vote").split()
AUTHORS = ["Omkar Godbole", "Helen Partz", "Sam Reynolds", "Margaux Nijkerk", "Turner Wright",
           "Ciaran Lyons", "Danny Park", "Vishal Chawla", "Mat Di Salvo", "Andrew Hayward"]
BASE = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


def sentence(r, topic_words):
    words = [r.choice(WORDS) for _ in range(r.randint(10, 22))]
    words.insert(r.randint(0, len(words)), r.choice(topic_words))
    return " ".join(words).capitalize() + "."


def article_html(r, topic_words, link):
    paras = []
    for i in range(r.randint(3, 5)):
        text = " ".join(sentence(r, topic_words) for _ in range(r.randint(1, 3)))
        if i == 1:
            text += f' <a href="{link}?utm_source=feed&amp;ref=rss">Read more</a>.'
        if i == 2 and r.random() < 0.5:
            paras.append(f'<figure><img src="https://cdn.example.com/img/{r.randint(1, 10**6)}.jpg" alt="chart" width="800" height="450"><figcaption>{html.escape(sentence(r, topic_words))}</figcaption></figure>')
        paras.append(f"<p>{html.escape(text, quote=False).replace('&lt;a', '<a').replace('&gt;Read', '>Read').replace('&lt;/a&gt;', '</a>')}</p>")
    if r.random() < 0.3:
        paras.append('<p class="share"><a href="https://twitter.com/intent/tweet">Share</a></p>')
    return "\n".join(paras)


def entry(r, feed_no, i, round_no):
    topic, words = r.choice(TOPICS)
    wire = r.random() < 0.1  # wire copy: the same story in several feeds
    if wire:
        story = r.randint(0, 400)
        link = f"https://wire.example.com/story/{story}?utm_source=feed{feed_no}&utm_medium=rss"
        title = f"Wire: {topic} story {story} moves markets"
    else:
        link = f"https://site{feed_no}.example.com/news/{round_no}-{i}-{r.randint(1, 10**9)}"
        title = f"{r.choice(words)} {r.choice(WORDS)} {r.choice(WORDS)} as {r.choice(WORDS)} {r.choice(WORDS)}".capitalize()
    published = BASE - dt.timedelta(minutes=37 * i + feed_no % 60) + dt.timedelta(hours=round_no)
    return {
        "guid": f"site{feed_no}-{round_no}-{i}" if not wire else f"site{feed_no}-wire-{story}",
        "title": title,
        "link": link,
        "summary": sentence(r, words),
        "html": article_html(r, words, link.split("?")[0]),
        "author": r.choice(AUTHORS),
        "categories": [topic] + ([r.choice(TOPICS)[0]] if r.random() < 0.4 else []),
        "published": published,
        "enclosure": f"https://cdn.example.com/audio/{feed_no}-{i}.mp3" if r.random() < 0.05 else None,
    }


def rss2(feed_no, entries):
    items = []
    for e in entries:
        cats = "".join(f"<category><![CDATA[{c}]]></category>" for c in e["categories"])
        enc = f'<enclosure url="{e["enclosure"]}" length="12345678" type="audio/mpeg"/>' if e["enclosure"] else ""
        items.append(f"""<item><title><![CDATA[{e['title']}]]></title><link>{html.escape(e['link'])}</link>
<guid isPermaLink="false">{e['guid']}</guid><dc:creator><![CDATA[{e['author']}]]></dc:creator>
<pubDate>{e['published'].strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>{cats}{enc}
<description><![CDATA[<p>{e['summary']}</p>]]></description>
<content:encoded><![CDATA[{e['html']}]]></content:encoded></item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Crypto Site {feed_no}</title><link>https://site{feed_no}.example.com/</link>
<description>News from site {feed_no}</description>
{''.join(items)}
</channel></rss>
"""


def atom(feed_no, entries):
    items = []
    for e in entries:
        cats = "".join(f'<category term="{c}"/>' for c in e["categories"])
        enc = f'<link rel="enclosure" href="{e["enclosure"]}" type="audio/mpeg" length="12345678"/>' if e["enclosure"] else ""
        ts = e["published"].strftime("%Y-%m-%dT%H:%M:%SZ")
        items.append(f"""<entry><title type="html">{html.escape(e['title'])}</title><id>urn:site{feed_no}:{e['guid']}</id>
<link rel="alternate" href="{html.escape(e['link'])}"/>{enc}<published>{ts}</published><updated>{ts}</updated>
<author><name>{e['author']}</name></author>{cats}<summary type="text">{html.escape(e['summary'])}</summary>
<content type="html">{html.escape(e['html'])}</content></entry>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Crypto Site {feed_no}</title><id>urn:site{feed_no}</id>
<link rel="alternate" href="https://site{feed_no}.example.com/"/><updated>2026-11-20T12:00:00Z</updated>
{''.join(items)}
</feed>
"""


def rss1(feed_no, entries):
    seq = "".join(f'<rdf:li rdf:resource="{html.escape(e["link"])}"/>' for e in entries)
    items = []
    for e in entries:
        subjects = "".join(f"<dc:subject>{c}</dc:subject>" for c in e["categories"])
        items.append(f"""<item rdf:about="{html.escape(e['link'])}"><title>{html.escape(e['title'])}</title>
<link>{html.escape(e['link'])}</link><description>{html.escape(e['html'])}</description>
<dc:creator>{e['author']}</dc:creator><dc:date>{e['published'].strftime('%Y-%m-%dT%H:%M:%S+00:00')}</dc:date>{subjects}</item>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://site{feed_no}.example.com/rss"><title>Crypto Site {feed_no}</title>
<link>https://site{feed_no}.example.com/</link><description>News</description><items><rdf:Seq>{seq}</rdf:Seq></items></channel>
{''.join(items)}
</rdf:RDF>
"""


def jsonfeed(feed_no, entries):
    items = []
    for e in entries:
        item = {"id": e["guid"], "url": e["link"], "title": e["title"], "content_html": e["html"],
                "summary": e["summary"], "date_published": e["published"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "authors": [{"name": e["author"]}], "tags": e["categories"]}
        if e["enclosure"]:
            item["attachments"] = [{"url": e["enclosure"], "mime_type": "audio/mpeg", "size_in_bytes": 12345678}]
        items.append(item)
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": f"Crypto Site {feed_no}",
                       "home_page_url": f"https://site{feed_no}.example.com/", "items": items}, indent=1)


FORMATS = [("xml", rss2)] * 10 + [("atom", atom)] * 4 + [("rdf", rss1)] * 3 + [("json", jsonfeed)] * 3


def feed_file(feed_no):
    ext, _ = FORMATS[feed_no % len(FORMATS)]
    return f"feed-{feed_no:05d}.{ext}"


def write_feed(directory, feed_no, n_entries, round_no):
    r = random.Random(feed_no * 1_000_003 + round_no)
    entries = []
    for rnd in range(round_no + 1):
        rr = random.Random(feed_no * 7919 + rnd)
        count = n_entries if rnd == 0 else 2
        fresh = [entry(rr, feed_no, i, rnd) for i in range(count)]
        entries = fresh + entries
    entries = entries[:n_entries]
    if round_no > 0 and len(entries) > 3:
        entries[3]["title"] += " (updated)"
    _, render = FORMATS[feed_no % len(FORMATS)]
    with open(os.path.join(directory, feed_file(feed_no)), "w", encoding="utf-8") as f:
        f.write(render(feed_no, entries))
    del r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=50)
    ap.add_argument("--update", type=float, default=0.0, help="fraction of feeds to edit")
    ap.add_argument("--round", type=int, default=1, help="update round (each round adds entries)")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    if a.update > 0:
        r = random.Random(a.round)
        chosen = r.sample(range(a.feeds), max(1, int(a.feeds * a.update)))
        for n in chosen:
            write_feed(a.dir, n, a.entries, a.round)
        print(f"updated {len(chosen)} feeds")
    else:
        for n in range(a.feeds):
            write_feed(a.dir, n, a.entries, 0)
        total = sum(os.path.getsize(os.path.join(a.dir, feed_file(n))) for n in range(a.feeds))
        print(f"{a.feeds} feeds x {a.entries} entries, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
