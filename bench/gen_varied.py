#!/usr/bin/env python3
"""A second benchmark corpus, of another shape than gen_corpus.py's, so that no figure depends on
one generator: more JSON Feed and RSS 1.0; feeds from 3 to 300 entries (about 50 on average);
entries from a bare headline to 40 KB reads with tables, lists, embeds and scripts to
sanitize; 3 to 15 categories an entry (RSS 1.0 as dc:subject, JSON Feed as tags); Media RSS
(media:content, media:thumbnail, media:group); 15% of stories cross-posted under other titles
with other tracking parameters; Windows-1252 and ISO-8859-1 feeds among the UTF-8 ones.

    gen_varied.py DIR --feeds 1000                   # fresh corpus
    gen_varied.py DIR --feeds 1000 --update 0.1 --round 1
        # edits 10% of the feeds: two new entries prepended, one title edited

Deterministic: the same arguments give the same bytes. File names: varied-NNNNN.EXT.
"""
import argparse
import datetime as dt
import json
import os
import random
from html import escape

COINS = ["Bitcoin", "Ether", "Solana", "XRP", "Cardano", "Dogecoin", "Toncoin", "Avalanche", "Polkadot",
         "Chainlink", "Litecoin", "Tron", "Polygon", "Arbitrum", "Optimism", "Aptos", "Sui", "Near"]
ACTORS = ["Binance", "Coinbase", "Kraken", "OKX", "Bybit", "BlackRock", "Fidelity", "Grayscale", "Tether",
          "Circle", "the SEC", "the CFTC", "the ECB", "MicroStrategy", "Ripple", "a16z", "Uniswap", "Lido"]
VERBS = ["files for", "launches", "delays", "rejects", "approves", "settles over", "invests in", "lists",
         "delists", "pauses", "expands", "cuts fees on", "reports record", "is fined over", "backs"]
NOUNS = ["spot ETF", "staking product", "stablecoin", "custody service", "layer-2 network", "lawsuit",
         "token unlock", "bridge exploit", "airdrop", "treasury purchase", "derivatives desk", "DAO vote"]
CATEGORIES = (["News", "Markets", "Policy", "Regulation", "DeFi", "NFTs", "Mining", "Web3", "Business",
               "Technology", "Opinion", "Analysis", "Price", "Exchanges", "Security", "Asia", "Europe",
               "US", "Layer 2", "Stablecoins", "ETF", "Blockchain", "Altcoins", "Gaming", "AI"]
              + COINS + [a.replace("the ", "") for a in ACTORS])
PROSE = ("the move follows months of talks with regulators while traders weigh fresh inflows and the "
         "broader market steadies after a volatile week analysts said liquidity remains thin on weekends "
         "and the order books show heavy selling above recent highs according to data compiled by "
         "researchers the firm declined to comment on the timing but people familiar with the matter "
         "said an announcement could come as soon as next month").split()
PEOPLE = ["Changpeng Zhao", "Richard Teng", "Brian Armstrong", "Gary Gensler", "Paul Atkins",
          "Vitalik Buterin", "Michael Saylor", "Larry Fink", "Paolo Ardoino", "Jeremy Allaire"]
BASE = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.timezone.utc)
# (extension, share): JSON Feed and RSS 1.0 weigh more here than in gen_corpus.py.
SHARES = [("json", 3), ("rdf", 3), ("rss", 2), ("atom", 2)]
WHEEL = [ext for ext, share in SHARES for _ in range(share)]
ENCODINGS = ["utf-8"] * 18 + ["windows-1252", "iso-8859-1"]


def feed_file(n):
    return f"varied-{n:05d}.{WHEEL[n % len(WHEEL)]}"


def feed_length(r):
    """3 to 300 entries, most short, a few very long: a mean near 50."""
    return max(3, min(300, int(r.lognormvariate(3.4, 0.9))))


def words(r, k):
    return " ".join(r.choice(PROSE) for _ in range(k))


def body(r, link, size):
    """Article HTML of about `size` bytes, with what real feeds carry and a sanitizer must remove."""
    parts = []
    while sum(map(len, parts)) < size:
        kind = r.random()
        if kind < 0.55:
            parts.append(f"<p>{escape(words(r, r.randint(25, 70)).capitalize())}. "
                         f"{r.choice(PEOPLE)} said the {r.choice(COINS)} price was "
                         f"${r.randint(1, 99_999):,}.{r.randint(0, 99):02d} at the close.</p>")
        elif kind < 0.65:
            rows = "".join(f"<tr><td>{c}</td><td>${r.randint(1, 70_000):,}</td><td>{r.uniform(-9, 9):+.2f}%</td></tr>"
                           for c in r.sample(COINS, 5))
            parts.append(f'<table class="prices"><thead><tr><th>Coin</th><th>Price</th><th>24h</th></tr></thead>'
                         f"<tbody>{rows}</tbody></table>")
        elif kind < 0.75:
            items = "".join(f"<li>{escape(words(r, 9))}</li>" for _ in range(r.randint(3, 7)))
            parts.append(f"<ul>{items}</ul>")
        elif kind < 0.82:
            parts.append(f'<blockquote class="twitter-tweet"><p>{escape(words(r, 20))}</p>&mdash; '
                         f'<a href="https://twitter.com/x/status/{r.randint(10**17, 10**18)}">@x</a></blockquote>'
                         '<script async src="https://platform.twitter.com/widgets.js"></script>')
        elif kind < 0.88:
            parts.append(f'<figure><img src="https://img.example.net/{r.randint(1, 10**8)}.webp" '
                         f'srcset="https://img.example.net/s.webp 480w" loading="lazy" style="width:100%" '
                         f'onerror="this.remove()"><figcaption>{escape(words(r, 8))}</figcaption></figure>')
        elif kind < 0.93:
            parts.append(f'<iframe src="https://www.youtube.com/embed/{r.randint(10**6, 10**7)}" width="560" '
                         'height="315" allowfullscreen></iframe>')
        else:
            parts.append(f'<p>Related: <a href="{link}?utm_campaign=related&amp;utm_source=rss">'
                         f"{escape(words(r, 6))}</a> &middot; <a href=\"javascript:void(0)\">share</a></p>")
    return "\n".join(parts)


def article_size(r):
    roll = r.random()
    if roll < 0.15:
        return 0                      # headline and summary only
    if roll < 0.55:
        return r.randint(300, 1500)   # a short brief
    if roll < 0.97:
        return r.randint(1500, 5000)  # a normal article
    return r.randint(12_000, 40_000)  # a long read


def story(r, feed_no, i, round_no):
    cross = r.random() < 0.15
    if cross:
        k = r.randint(0, 1500)
        sr = random.Random(k)
        head = f"{sr.choice(ACTORS)} {sr.choice(VERBS)} {sr.choice(COINS)} {sr.choice(NOUNS)}"
        link = f"https://news.example.org/{k}/{head.lower().replace(' ', '-')}?utm_source=rss&src={feed_no}"
        title = r.choice(["{}", "{}, sources say", "Report: {}", "{} as markets react"]).format(head)
        guid = f"cross-{k}"
    else:
        head = f"{r.choice(ACTORS)} {r.choice(VERBS)} {r.choice(COINS)} {r.choice(NOUNS)}"
        link = f"https://outlet{feed_no}.example.org/{round_no}/{i}/{r.randint(1, 10**9)}"
        title, guid = head, f"{feed_no}/{round_no}/{i}"
    when = BASE + dt.timedelta(hours=round_no) - dt.timedelta(minutes=r.randint(5, 90) * i + feed_no % 97)
    media = []
    if r.random() < 0.5:
        media.append({"url": f"https://img.example.net/{r.randint(1, 10**8)}.jpg", "type": "image/jpeg",
                      "width": 1200, "height": 675})
    if r.random() < 0.08:
        media.append({"url": f"https://cdn.example.net/pod/{feed_no}-{i}.mp3", "type": "audio/mpeg",
                      "length": r.randint(10**6, 10**8)})
    return {"guid": guid, "title": title.capitalize() if r.random() < 0.2 else title, "link": link,
            "summary": words(r, r.randint(12, 40)).capitalize() + ".",
            "html": body(r, link.split("?")[0], article_size(r)),
            "author": r.choice(["Staff", "Reuters", "Ana Ruiz", "Kenji Ito", "Lena Vogt", "Femi Okoro"]),
            "categories": r.sample(CATEGORIES, r.randint(3, 15)), "when": when, "media": media}


def rfc822(t):
    return t.strftime("%a, %d %b %Y %H:%M:%S +0000")


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def media_rss(e):
    out = []
    for m in e["media"]:
        if m["type"].startswith("image"):
            out.append(f'<media:content url="{m["url"]}" medium="image" type="{m["type"]}" width="{m["width"]}" '
                       f'height="{m["height"]}"><media:title>{escape(e["title"])}</media:title></media:content>'
                       f'<media:thumbnail url="{m["url"]}?w=300" width="300" height="169"/>')
        else:
            out.append(f'<media:group><media:content url="{m["url"]}" type="{m["type"]}" fileSize="{m["length"]}"/>'
                       f'<media:description>{escape(e["summary"])}</media:description></media:group>')
    return "".join(out)


def rss2(n, es):
    items = "".join(
        f"<item><title>{escape(e['title'])}</title><link>{escape(e['link'])}</link>"
        f"<guid isPermaLink=\"false\">{e['guid']}</guid><pubDate>{rfc822(e['when'])}</pubDate>"
        f"<author>news@outlet{n}.example.org ({e['author']})</author>"
        + "".join(f"<category>{escape(c)}</category>" for c in e["categories"])
        + f"<description>{escape(e['html'] or e['summary'])}</description>{media_rss(e)}</item>\n"
        for e in es)
    return (f'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Outlet {n}</title>'
            f"<link>https://outlet{n}.example.org/</link><description>Outlet {n} headlines</description>"
            f"<ttl>15</ttl>\n{items}</channel></rss>\n")


def atom(n, es):
    entries = "".join(
        f"<entry><id>tag:outlet{n}.example.org,2026:{e['guid']}</id><title>{escape(e['title'])}</title>"
        f'<link href="{escape(e["link"])}"/><updated>{iso(e["when"])}</updated>'
        f"<author><name>{e['author']}</name></author>"
        + "".join(f'<category term="{escape(c)}" label="{escape(c)}"/>' for c in e["categories"])
        + f"<summary>{escape(e['summary'])}</summary>"
        + (f'<content type="html">{escape(e["html"])}</content>' if e["html"] else "")
        + f"{media_rss(e)}</entry>\n"
        for e in es)
    return (f'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">'
            f"<title>Outlet {n}</title><id>tag:outlet{n}.example.org,2026:feed</id>"
            f'<link rel="self" href="https://outlet{n}.example.org/atom"/><updated>{iso(BASE)}</updated>\n{entries}</feed>\n')


def rss1(n, es):
    seq = "".join(f'<rdf:li resource="{escape(e["link"])}"/>' for e in es)
    items = "".join(
        f'<item rdf:about="{escape(e["link"])}"><title>{escape(e["title"])}</title><link>{escape(e["link"])}</link>'
        f"<dc:date>{iso(e['when'])}</dc:date><dc:creator>{e['author']}</dc:creator>"
        + "".join(f"<dc:subject>{escape(c)}</dc:subject>" for c in e["categories"])
        + f"<description>{escape(e['summary'])}</description>"
        + (f"<content:encoded><![CDATA[{e['html']}]]></content:encoded>" if e["html"] else "")
        + "</item>\n"
        for e in es)
    return ('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f'<channel rdf:about="https://outlet{n}.example.org/rdf"><title>Outlet {n}</title>'
            f"<link>https://outlet{n}.example.org/</link><description>Outlet {n}</description>"
            f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>\n{items}</rdf:RDF>\n")


def jsonfeed(n, es):
    items = []
    for e in es:
        item = {"id": e["guid"], "url": e["link"], "title": e["title"], "summary": e["summary"],
                "date_published": iso(e["when"]), "authors": [{"name": e["author"]}], "tags": e["categories"]}
        if e["html"]:
            item["content_html"] = e["html"]
        else:
            item["content_text"] = e["summary"]
        if e["media"]:
            item["image"] = e["media"][0]["url"]
            item["attachments"] = [{"url": m["url"], "mime_type": m["type"]} for m in e["media"]]
        items.append(item)
    return json.dumps({"version": "https://jsonfeed.org/version/1", "title": f"Outlet {n}",
                       "home_page_url": f"https://outlet{n}.example.org/",
                       "feed_url": f"https://outlet{n}.example.org/feed.json", "items": items},
                      ensure_ascii=False, separators=(",", ":"))


def write(directory, n, round_no):
    r = random.Random(n)
    length = feed_length(r)
    first = random.Random(n * 104_729)
    entries = [story(first, n, i, 0) for i in range(length)]
    for rnd in range(1, round_no + 1):
        later = random.Random(n * 104_729 + rnd)
        entries = [story(later, n, i, rnd) for i in range(2)] + entries
    entries = entries[:length]
    if round_no and len(entries) > 3:
        entries[3]["title"] += " (updated)"
    name = feed_file(n)
    text = RENDER[WHEEL[n % len(WHEEL)]](n, entries)
    encoding = "utf-8" if name.endswith(".json") else ENCODINGS[n % len(ENCODINGS)]
    if encoding != "utf-8":
        text = text.replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>', 1)
        if not text.startswith("<?xml"):
            text = f'<?xml version="1.0" encoding="{encoding}"?>\n' + text
    with open(os.path.join(directory, name), "wb") as f:
        f.write(text.encode(encoding, errors="xmlcharrefreplace"))
    return len(entries)


RENDER = {"json": jsonfeed, "rdf": rss1, "rss": rss2, "atom": atom}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--update", type=float, default=0.0, help="fraction of feeds to edit")
    ap.add_argument("--round", type=int, default=1, help="update round (each round adds entries)")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    if a.update > 0:
        chosen = random.Random(a.round).sample(range(a.feeds), max(1, int(a.feeds * a.update)))
        for n in chosen:
            write(a.dir, n, a.round)
        print(f"updated {len(chosen)} feeds")
        return
    total = sum(write(a.dir, n, 0) for n in range(a.feeds))
    size = sum(os.path.getsize(os.path.join(a.dir, feed_file(n))) for n in range(a.feeds))
    print(f"{a.feeds} feeds, {total} entries, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
