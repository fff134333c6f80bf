//! What the real web serves and lenient readers read, one fixture per class of breakage
//! (fixtures/fidelity/). Each test is named after what used to go wrong.

use crate::common::{FixtureServer, Workdir, assert_ok, config_with, line_about, stderr, stdout};
use aggregate::model::Entry;
use aggregate::parse::{Limits, ParseError, ParsedFeed};
use chrono::{TimeZone, Utc};
use url::Url;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/fidelity/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn try_parse(name: &str, url: &str) -> Result<ParsedFeed, ParseError> {
    aggregate::parse::parse(
        &fixture(name),
        None,
        &Url::parse(url).unwrap(),
        &Limits::default(),
    )
}

fn parse(name: &str, url: &str) -> ParsedFeed {
    try_parse(name, url).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn titled<'a>(feed: &'a ParsedFeed, title: &str) -> &'a Entry {
    feed.entries
        .iter()
        .find(|e| e.title == title)
        .unwrap_or_else(|| panic!("no entry {title:?} in {:#?}", feed.entries))
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Option<chrono::DateTime<Utc>> {
    Some(Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap())
}

#[test]
fn atom_0_3_was_read_as_a_feed_with_no_entries() {
    let feed = parse("atom03.xml", "https://atom03.example/atom.xml");
    assert_eq!(feed.entries.len(), 3);
    let escaped = titled(&feed, "Escaped title");
    assert_eq!(escaped.published, utc(2026, 11, 20, 9, 0), "issued");
    assert_eq!(escaped.updated, utc(2026, 11, 20, 9, 30), "modified");
    assert_eq!(
        escaped.content.as_deref(),
        Some("<p>Escaped <em>HTML</em> content.</p>")
    );
    let xml = titled(&feed, "Inline XML content");
    assert_eq!(xml.published, utc(2026, 11, 19, 8, 0), "created stands in");
    assert!(
        xml.content
            .as_deref()
            .unwrap()
            .contains("Inline <strong>XHTML</strong>."),
        "{xml:?}"
    );
    let b64 = titled(&feed, "Base64 content");
    assert_eq!(b64.summary.as_deref(), Some("A plain &lt;summary&gt;"));
    assert_eq!(b64.content.as_deref(), Some("<p>Base64 <b>body</b></p>"));
    assert!(
        feed.notes.iter().any(|n| n.contains("Atom 0.3")),
        "{:?}",
        feed.notes
    );
}

#[test]
fn rss_0_90_and_namespaced_rss_were_empty_with_no_error() {
    let old = parse("rss090.rdf", "https://rss090.example/rss");
    let titles: Vec<_> = old.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, ["First 0.90 item", "Second 0.90 item"]);
    let ns = parse("rss-default-namespace.xml", "https://ns.example/rss");
    assert_eq!(ns.entries.len(), 1);
    assert_eq!(ns.entries[0].link.as_deref(), Some("https://ns.example/a"));
}

#[test]
fn rss_with_no_version_was_not_a_feed() {
    let feed = parse("rss-no-version.xml", "https://noversion.example/rss");
    assert_eq!(feed.entries[0].title, "Version-less item");
    assert_eq!(feed.entries[0].published, utc(2026, 11, 23, 10, 0));
}

#[test]
fn one_stray_ampersand_or_html_entity_failed_the_whole_document() {
    let feed = parse(
        "stray-ampersands-and-entities.xml",
        "https://amp.example/rss",
    );
    let e = &feed.entries[0];
    assert_eq!(e.title, "Q&A: cafés accept bitcoin\u{a0}now");
    assert_eq!(
        e.link.as_deref(),
        Some("https://amp.example/story?id=1&section=markets")
    );
    assert_eq!(
        e.summary.as_deref(),
        Some("Prices — up &amp; down &amp; sideways")
    );
    assert_eq!(feed.title.as_deref(), Some("AT&T & friends"));
    assert!(
        feed.notes
            .iter()
            .any(|n| n.starts_with("repaired: escaped 5 stray '&'")),
        "{:?}",
        feed.notes
    );
}

#[test]
fn an_empty_media_description_failed_the_whole_document() {
    let feed = parse("empty-media-description.xml", "https://news.example/rss");
    assert_eq!(feed.entries.len(), 2);
    assert_eq!(feed.entries[0].enclosures.len(), 1, "the image is kept");
    assert!(
        feed.notes.iter().any(|n| n.contains("media:description")),
        "{:?}",
        feed.notes
    );
}

#[test]
fn an_atom_text_typed_with_a_mime_type_was_unsupported() {
    let feed = parse("atom-mime-text-types.xml", "https://mime.example/atom");
    let blink = titled(&feed, "History of the <blink> tag");
    assert_eq!(
        blink.summary.as_deref(),
        Some("<p>An <b>XHTML</b> summary</p>")
    );
    let empty = titled(&feed, "Empty type");
    assert_eq!(empty.content.as_deref(), Some("<p>Base64 body</p>"));
}

#[test]
fn a_truncated_document_keeps_its_complete_entries_and_says_so() {
    let feed = parse("truncated.xml", "https://cut.example/rss");
    let titles: Vec<_> = feed.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, ["Complete one", "Complete two"]);
    assert!(
        feed.notes
            .iter()
            .any(|n| n.contains("cut short: kept its 2 complete entries")),
        "{:?}",
        feed.notes
    );
    // Cut before its first entry ends: nothing in it is whole, and that is the feed's error.
    let err = aggregate::parse::parse(
        b"<rss version=\"2.0\"><channel><item><title>cut off",
        None,
        &Url::parse("https://cut.example/rss").unwrap(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
}

#[test]
fn a_json_feed_versioned_with_http_was_refused() {
    let feed = parse(
        "jsonfeed-http-version.json",
        "https://json.example/feed.json",
    );
    assert_eq!(feed.entries[0].title, "Old-version JSON item");
}

#[test]
fn rss_1_0_items_with_only_a_description_were_dropped() {
    let feed = parse("rss1-description-only.rdf", "https://rdf.example/index.rdf");
    assert_eq!(feed.entries.len(), 2);
    let first = &feed.entries[0];
    assert_eq!(first.link.as_deref(), Some("https://rdf.example/1"));
    assert_eq!(
        first.summary.as_deref(),
        Some("<p>Only a <b>description</b>, in CDATA HTML</p>"),
        "CDATA HTML is HTML, not escaped text"
    );
    assert_eq!(first.published, utc(2026, 11, 20, 10, 0));
    assert_eq!(
        feed.entries[1].link, None,
        "no link is no link, not a placeholder"
    );
}

#[test]
fn dublin_core_itunes_and_rss_authors_were_lost() {
    let feed = parse("dublin-core-and-people.xml", "https://dc.example/rss");
    let dc = titled(&feed, "Title from dc:title");
    assert_eq!(dc.authors, ["Ada Lovelace"]);
    assert_eq!(dc.published, utc(2026, 11, 20, 10, 0));
    let terms = titled(&feed, "Issued and modified");
    assert_eq!(terms.published, utc(2026, 11, 19, 8, 0));
    assert_eq!(terms.updated, utc(2026, 11, 19, 9, 0));
    assert_eq!(terms.authors, ["Grace Hopper"]);
    let named = titled(&feed, "Author with a name child");
    assert_eq!(named.authors, ["Alan Turing"]);
    assert_eq!(named.published, utc(2026, 11, 18, 15, 30), "SQL-style date");
    let email = titled(&feed, "Author as email (Name)");
    assert_eq!(email.authors, ["Edith Editor"]);
    assert_eq!(
        email.published,
        utc(2018, 1, 6, 8, 0),
        "ISO 8601 without seconds"
    );
    let guid = titled(&feed, "Guid that is the link");
    assert_eq!(guid.link.as_deref(), Some("https://dc.example/5"));
    assert_eq!(guid.authors, ["Dora Author"], "dc:author");
}

#[test]
fn enclosures_beyond_the_first_or_behind_a_media_player_were_lost() {
    let feed = parse("enclosures-and-media.xml", "https://media.example/rss");
    let two = titled(&feed, "Two enclosures");
    let urls: Vec<_> = two.enclosures.iter().map(|e| e.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://media.example/ep1.mp3",
            "https://media.example/ep1.ogg"
        ],
        "one enclosure has the article's own address: it is still the file"
    );
    assert_eq!(two.enclosures[1].mime_type, "audio/ogg");
    assert_eq!(
        two.categories,
        ["Technology", "Gadgets"],
        "nested iTunes categories"
    );
    let player = titled(&feed, "Player inside content");
    assert_eq!(player.enclosures.len(), 1);
    assert_eq!(
        player.enclosures[0].url,
        "https://cdn.media.example/video.mp4"
    );
    assert_eq!(player.enclosures[0].length, 5000);
    assert_eq!(
        player.summary.as_deref(),
        Some("From media:description only")
    );
    assert_eq!(player.categories, ["Video news"]);
}

#[test]
fn youtube_descriptions_and_atom_category_text_were_lost() {
    let feed = parse("youtube.atom", "https://www.youtube.com/feeds/videos.xml");
    let video = titled(&feed, "Weekly market update");
    assert_eq!(
        video.summary.as_deref(),
        Some("This week: bitcoin, ether and the ETF flows.")
    );
    assert_eq!(
        video.categories,
        ["markets", "Crypto"],
        "a term, then a text category"
    );
    assert_eq!(
        video.category_labels,
        [("markets".to_string(), "Markets".to_string())],
        "the label is how the source shows the term"
    );
    let enclosure = &titled(&feed, "Atom link enclosure").enclosures[0];
    assert_eq!(enclosure.url, "https://cdn.example/base.mp4");
    assert_eq!(
        (enclosure.mime_type.as_str(), enclosure.length),
        ("video/mp4", 42301)
    );
}

#[test]
fn bodies_in_xhtml_body_fullitem_or_naked_markup_were_lost() {
    let feed = parse("bodies.xml", "https://bodies.example/rss");
    assert!(
        titled(&feed, "XHTML body")
            .content
            .as_deref()
            .unwrap()
            .contains("Body in <b>xhtml:body</b>"),
        "{:?}",
        feed.entries[0]
    );
    assert_eq!(
        titled(&feed, "Full item").content.as_deref(),
        Some("<p>The <i>fullitem</i> body</p>")
    );
    assert_eq!(
        titled(&feed, "Naked markup").summary.as_deref(),
        Some("<p>Unescaped <b>HTML</b> in a description</p>")
    );
    let mojibake = titled(&feed, "la m\u{e0}gia del bitcoin");
    assert_eq!(mojibake.summary.as_deref(), Some("don\u{2019}t panic"));
}

#[test]
fn entries_out_of_place_are_counted_and_said() {
    let feed = parse(
        "atom-entries-out-of-place.xml",
        "https://nested.example/atom",
    );
    assert_eq!(feed.entries.len(), 1);
    assert!(
        feed.notes
            .iter()
            .any(|n| n == "1 of 2 entries could not be read: the parser skipped them"),
        "{:?}",
        feed.notes
    );
    let err = try_parse("atom-no-entry-readable.xml", "https://nested.example/atom").unwrap_err();
    assert!(matches!(err, ParseError::NoEntries { items: 2 }), "{err}");
}

#[test]
fn entries_of_one_feed_sharing_a_link_were_shown_as_one_story() {
    let server = FixtureServer::start();
    server.write("one-link.xml", &fixture("one-link-many-items.xml"));
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.feed("one-link.xml")], ""));
    assert_ok(&work.run_once());
    let feed = work.output("out/all.atom");
    let mut titles: Vec<_> = feed
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Anchor one",
            "Anchor two",
            "Episode with a generic parameter",
            "Maintenance on Saturday",
            "New listing: XYZ",
        ]
    );
    let link = |title: &str| {
        let e = feed
            .entries
            .iter()
            .find(|e| e.title.as_ref().unwrap().content == title)
            .unwrap();
        e.links[0].href.clone()
    };
    assert_eq!(
        link("Anchor two"),
        "https://blog.example/2008/06/26.html#a080606"
    );
    assert_eq!(
        link("Episode with a generic parameter"),
        "https://pod.example/ep/1?source=feed",
        "trackers go, generic parameters stay"
    );
    let json = work.read("out/all.json");
    assert!(
        json.contains("https://cdn.pod.example/ep1.mp3?source=feed"),
        "the enclosure keeps the parameter its host needs"
    );
}

#[test]
fn a_repaired_feed_says_so_in_its_status_and_the_summary() {
    let server = FixtureServer::start();
    server.write("cut.xml", &fixture("truncated.xml"));
    server.write("nested.xml", &fixture("atom-no-entry-readable.xml"));
    let work = Workdir::new();
    work.write_config(&config_with(
        &[&server.feed("cut.xml"), &server.feed("nested.xml")],
        "",
    ));
    let run = work.run_once();
    assert_ok(&run);
    let err = stderr(&run);
    assert!(
        line_about(&err, "note:").contains("cut short: kept its 2 complete entries"),
        "{err}"
    );
    assert!(
        line_about(&err, "nested.xml").contains("none of the document's 2 entries could be read"),
        "{err}"
    );
    assert!(
        stdout(&run).contains("feeds: 1 ok, 0 not modified, 1 failed; entries: 2 new"),
        "{}",
        stdout(&run)
    );
    let statuses = work.store().feed_statuses().unwrap();
    let cut = statuses
        .iter()
        .find(|s| s.url.ends_with("cut.xml"))
        .unwrap();
    assert!(
        cut.last_note
            .as_deref()
            .unwrap()
            .starts_with("repaired: the document was cut short"),
        "{cut:?}"
    );
    assert_eq!(cut.last_error, None);
    let nested = statuses
        .iter()
        .find(|s| s.url.ends_with("nested.xml"))
        .unwrap();
    assert!(
        nested.last_error.is_some(),
        "zero of two entries is an error: {nested:?}"
    );
}

#[test]
fn an_atom_category_label_was_replaced_by_its_term_or_lost() {
    let server = FixtureServer::start();
    server.write("youtube.atom", &fixture("youtube.atom"));
    let work = Workdir::new();
    work.write_config(&config_with(&[&server.feed("youtube.atom")], ""));
    assert_ok(&work.run_once());
    let atom = work.read("out/all.atom");
    assert!(
        atom.contains(r#"<category term="markets" label="Markets"/>"#),
        "stored and republished with its label: {atom}"
    );
    let feed = work.output("out/all.atom");
    let terms: Vec<_> = feed.entries[0]
        .categories
        .iter()
        .map(|c| c.term.as_str())
        .collect();
    assert!(
        terms.contains(&"markets") && terms.contains(&"Crypto"),
        "{terms:?}"
    );
}
