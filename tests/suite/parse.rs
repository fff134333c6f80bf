//! The parse stage on the fixtures' real-world quirks, through the public API.

use aggregate::dedup;
use aggregate::model::{Entry, effective_date};
use aggregate::parse::{Limits, ParseError, ParsedFeed};
use chrono::{TimeZone, Utc};
use url::Url;

fn parse(body: &[u8], content_type: Option<&str>, url: &Url) -> Result<ParsedFeed, ParseError> {
    aggregate::parse::parse(body, content_type, url, &Limits::default())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/feeds/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn parse_fixture(name: &str, feed_url: &str) -> ParsedFeed {
    parse(&fixture(name), None, &Url::parse(feed_url).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn by_title<'a>(feed: &'a ParsedFeed, prefix: &str) -> &'a Entry {
    feed.entries
        .iter()
        .find(|e| e.title.starts_with(prefix))
        .unwrap_or_else(|| panic!("no entry {prefix}"))
}

#[test]
fn latin1_declared_in_the_prolog_is_decoded() {
    let feed = parse_fixture(
        "bitcoinmagazine.rss",
        "https://bitcoinmagazine.com/.rss/full/",
    );
    assert_eq!(
        feed.entries[1].title,
        "Café in Zürich Accepts Bitcoin for Every Order » Interview"
    );
    // RFC 822 with a named zone: 13:00 EST is 18:00 UTC.
    assert_eq!(
        feed.entries[0].published,
        Some(Utc.with_ymd_and_hms(2026, 11, 22, 18, 0, 0).unwrap())
    );
}

#[test]
fn charset_only_in_the_http_header_is_honoured() {
    let body = b"<rss version=\"2.0\"><channel><title>t</title><item><title>\x93Smart\x94 quotes \x96 dash</title><guid>1</guid></item></channel></rss>";
    let feed = parse(
        body,
        Some("application/rss+xml; charset=windows-1252"),
        &Url::parse("https://x.example/rss").unwrap(),
    )
    .unwrap();
    assert_eq!(
        feed.entries[0].title,
        "\u{201c}Smart\u{201d} quotes \u{2013} dash"
    );
}

#[test]
fn utf16_with_a_bom_is_decoded() {
    let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><rss version=\"2.0\"><channel><title>t</title><item><title>Ünïcode</title><guid>1</guid></item></channel></rss>";
    let mut body = vec![0xFF, 0xFE];
    body.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    let feed = parse(&body, None, &Url::parse("https://x.example/rss").unwrap()).unwrap();
    assert_eq!(feed.entries[0].title, "Ünïcode");
}

#[test]
fn feedburner_orig_link_entities_and_missing_ids() {
    let feed = parse_fixture(
        "cryptoslate.rss",
        "https://feeds.feedburner.com/cryptoslate",
    );
    let e = &feed.entries[0];
    assert_eq!(
        e.title, "Binance\u{a0}and OKX see record derivatives open interest",
        "&nbsp; without a DTD is read, and stays a non-breaking space"
    );
    assert_eq!(
        e.link.as_deref(),
        Some("https://cryptoslate.com/binance-okx-record-open-interest/"),
        "origLink, trackers dropped"
    );
    let summary = e.summary.as_deref().unwrap();
    assert!(!summary.contains("javascript"), "{summary}");
    assert!(
        summary.contains("href=\"https://twitter.com/intent/tweet?url=x\""),
        "protocol-relative resolved: {summary}"
    );

    let no_ids = by_title(&feed, "Market wrap");
    assert_eq!(no_ids.source_id, None);
    assert_eq!(no_ids.link, None);
    let key = dedup::entry_key(no_ids);
    assert!(key.starts_with("hash:"), "{key}");
    let again = parse_fixture(
        "cryptoslate.rss",
        "https://feeds.feedburner.com/cryptoslate",
    );
    assert_eq!(
        dedup::entry_key(by_title(&again, "Market wrap")),
        key,
        "the fallback identity is stable"
    );
}

#[test]
fn a_future_date_is_replaced_by_first_seen() {
    let feed = parse_fixture("cryptoslate.rss", "https://cryptoslate.com/feed/");
    let future = by_title(&feed, "Scheduled");
    let seen = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    assert_eq!(effective_date(future.published, seen), seen);
    let past = &feed.entries[0];
    assert_eq!(
        effective_date(past.published, seen),
        past.published.unwrap()
    );
}

#[test]
fn atom_xml_base_html_and_xhtml_content() {
    let feed = parse_fixture(
        "coindesk.atom",
        "https://www.coindesk.com/arc/outboundfeeds/atom/",
    );
    let etf = by_title(&feed, "Bitcoin ETFs");
    assert_eq!(
        etf.title, "Bitcoin ETFs Record $1.2B Inflows as BTC Tops $97K",
        "type=html titles lose their markup"
    );
    // `ref` is a generic name: the published link keeps it, identity ignores it.
    assert_eq!(
        etf.link.as_deref(),
        Some("https://www.coindesk.com/markets/2026/11/23/bitcoin-etfs-record-inflows/?ref=rss")
    );
    assert_eq!(
        dedup::story_key(etf.link.as_deref().unwrap()),
        dedup::story_key(
            "https://www.coindesk.com/markets/2026/11/23/bitcoin-etfs-record-inflows/"
        )
    );
    let content = etf.content.as_deref().unwrap();
    assert!(
        content.contains("href=\"https://www.coindesk.com/price/bitcoin\""),
        "{content}"
    );
    assert!(!content.contains("iframe"), "{content}");
    assert_eq!(
        etf.summary.as_deref(),
        Some("Spot bitcoin ETFs in the U.S. drew their largest daily inflows since March.")
    );
    let xhtml = by_title(&feed, "Ether Staking");
    assert!(
        xhtml.content.as_deref().unwrap().contains("<em>ETH</em>"),
        "{:?}",
        xhtml.content
    );
    assert_eq!(feed.site_link.as_deref(), Some("https://www.coindesk.com/"));
}

#[test]
fn json_feed_text_content_tags_and_attachments() {
    let feed = parse_fixture("decrypt.json", "https://decrypt.co/feed.json");
    let burn = &feed.entries[0];
    assert_eq!(burn.categories, ["Binance", "News", "exchanges"]);
    assert_eq!(
        burn.enclosures[0].url,
        "https://decrypt.co/podcast/ep-212.mp3"
    );
    assert_eq!(burn.enclosures[0].length, 31_415_926);
    assert_eq!(
        burn.published,
        Some(Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap())
    );
    assert!(
        burn.content
            .as_deref()
            .unwrap()
            .contains("src=\"https://decrypt.co/wp-content/uploads/bnb.png\"")
    );
    assert!(!burn.content.as_deref().unwrap().contains("onerror"));
    let text = by_title(&feed, "EU Regulators");
    let body = text.summary.as_deref().or(text.content.as_deref()).unwrap();
    assert!(body.contains("MiCA license"), "{body}");
}

#[test]
fn rss1_dates_and_subjects() {
    let feed = parse_fixture("theblock.rdf", "https://www.theblock.co/rss.xml");
    assert_eq!(feed.entries.len(), 2);
    assert_eq!(
        feed.entries[0].published,
        Some(Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap())
    );
    assert_eq!(feed.entries[0].categories, ["Tokenization"]);
    assert_eq!(
        feed.entries[0].link.as_deref(),
        Some("https://www.theblock.co/post/330001/tokenized-treasuries-blockchain")
    );
}

#[test]
fn an_edited_title_keeps_the_identity() {
    let original = parse_fixture("cointelegraph.rss", "https://cointelegraph.com/rss");
    let text = String::from_utf8(fixture("cointelegraph.rss"))
        .unwrap()
        .replace("Hong Kong lawmakers", "HK lawmakers");
    let edited = parse(
        text.as_bytes(),
        None,
        &Url::parse("https://cointelegraph.com/rss").unwrap(),
    )
    .unwrap();
    let (a, b) = (&original.entries[4], &edited.entries[4]);
    assert_ne!(a.title, b.title);
    assert_eq!(dedup::entry_key(a), dedup::entry_key(b));
}

#[test]
fn control_characters_are_dropped_not_fatal() {
    let body = b"<rss version=\"2.0\"><channel><title>t</title><item><title>Bell\x07 and\x0b tab</title><guid>1</guid></item></channel></rss>";
    let feed = parse(body, None, &Url::parse("https://x.example/rss").unwrap()).unwrap();
    assert_eq!(feed.entries[0].title, "Bell and tab");
}

#[test]
fn non_feeds_are_named_for_what_they_are() {
    let url = Url::parse("https://x.example/rss").unwrap();
    let html = parse(&fixture("not-a-feed.html"), Some("text/html"), &url).unwrap_err();
    assert!(matches!(html, ParseError::HtmlPage(_)));
    assert_eq!(
        html.to_string(),
        "the server sent an HTML page, not a feed (Content-Type: text/html)"
    );
    assert!(matches!(
        parse(b"   ", None, &url).unwrap_err(),
        ParseError::Empty
    ));
    assert!(matches!(
        parse(b"<note>hi</note>", None, &url).unwrap_err(),
        ParseError::NotAFeed(_)
    ));
    assert!(matches!(
        parse(&fixture("malformed.xml"), None, &url).unwrap_err(),
        ParseError::Malformed(_)
    ));
}

#[test]
fn encodings_that_lie_or_break_never_crash_or_garble_a_declared_encoding() {
    let url = Url::parse("https://x.example/rss").unwrap();
    let doc = |decl: &str, title: &[u8]| {
        let mut b = format!(
            "{decl}<rss version=\"2.0\"><channel><title>t</title><item><guid>1</guid><title>"
        )
        .into_bytes();
        b.extend_from_slice(title);
        b.extend_from_slice(b"</title></item></channel></rss>");
        b
    };
    // Declared Latin-1, served with a lying "charset=utf-8" header: the bytes are not UTF-8, so
    // the declaration is believed.
    let latin1 = doc(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        b"caf\xe9 cr\xe8me",
    );
    assert_eq!(
        parse(&latin1, Some("text/xml; charset=utf-8"), &url)
            .unwrap()
            .entries[0]
            .title,
        "café crème"
    );
    // Declared UTF-8 with a stray byte: replaced, the rest intact.
    let stray = doc(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        b"na\xefve \xe2\x82\xac5",
    );
    let stray = parse(&stray, None, &url).unwrap();
    assert_eq!(stray.entries[0].title, "na\u{fffd}ve €5");
    assert_eq!(
        stray.notes,
        ["replaced bytes that are not valid UTF-8 with U+FFFD"],
        "what was lost is said"
    );
    // Undeclared 8-bit text: windows-1252, the web's default.
    let undeclared = doc("", b"\x93quoted\x94");
    assert_eq!(
        parse(&undeclared, None, &url).unwrap().entries[0].title,
        "\u{201c}quoted\u{201d}"
    );
    // A UTF-8 BOM with a declaration that says otherwise: the BOM wins.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(doc(
        "<?xml version=\"1.0\" encoding=\"windows-1252\"?>",
        "Zürich".as_bytes(),
    ));
    assert_eq!(parse(&bom, None, &url).unwrap().entries[0].title, "Zürich");
    // An unknown encoding name falls back instead of failing.
    let unknown = doc("<?xml version=\"1.0\" encoding=\"x-klingon\"?>", b"plain");
    assert_eq!(
        parse(&unknown, None, &url).unwrap().entries[0].title,
        "plain"
    );
}
