use chrono::{TimeZone, Utc};

use super::*;
use crate::model::{Enclosure, Entry, Source, StoredEntry, Story, Tag};

fn story(id: i64, also: bool) -> Story {
    let date = Utc
        .with_ymd_and_hms(2026, 11, 20, 10, 0, id as u32)
        .unwrap();
    let source = Source {
        title: "CoinDesk".into(),
        feed_url: "https://coindesk.example/rss".into(),
        link: None,
        site: None,
    };
    Story {
        id: crate::model::StoryId::Story(id),
        guid: format!("urn:uuid:00000000-0000-0000-0000-{id:012}"),
        updated: date,
        changed: date,
        primary: StoredEntry {
            id,
            guid: format!("urn:uuid:00000000-0000-0000-0000-{id:012}"),
            entry: Entry {
                source_id: Some(format!("{id}")),
                title: format!("Binance & friends <{id}>"),
                link: Some(format!("https://coindesk.example/a/{id}")),
                summary: Some("<p>Summary</p>".into()),
                content: Some("<p>Full <b>text</b></p>".into()),
                authors: vec!["Jane Doe".into()],
                categories: vec!["Markets".into()],
                category_labels: vec![],
                published: Some(date),
                updated: None,
                enclosures: vec![Enclosure {
                    url: "https://cdn.example/a.mp3".into(),
                    mime_type: "audio/mpeg".into(),
                    length: 42,
                }],
            },
            date,
            first_seen: date,
            source,
            tags: vec![],
        },
        also: if also {
            vec![Source {
                title: "Decrypt".into(),
                feed_url: "https://decrypt.example/feed".into(),
                link: Some("https://decrypt.example/x".into()),
                site: None,
            }]
        } else {
            vec![]
        },
        tags: vec![Tag("Binance".into()), Tag("Markets".into())],
    }
}

fn channel() -> Channel {
    Channel {
        title: "Binance news".into(),
        description: "Merged".into(),
        self_url: "http://127.0.0.1:8080/feeds/binance.rss".into(),
        page_url: None,
        next_url: None,
        hub: None,
        home_url: "http://127.0.0.1:8080/".into(),
    }
}

#[test]
fn every_format_reads_back_in_a_real_parser() {
    let stories = vec![story(2, true), story(1, false)];
    for format in [Format::Rss, Format::Atom, Format::Json] {
        let body = render(format, &channel(), &stories);
        let feed = feed_rs::parser::parse(body.as_bytes())
            .unwrap_or_else(|e| panic!("{format:?}: {e}\n{body}"));
        assert_eq!(feed.entries.len(), 2, "{format:?}");
        let first = &feed.entries[0];
        assert_eq!(
            first.id, "urn:uuid:00000000-0000-0000-0000-000000000002",
            "{format:?}"
        );
        assert_eq!(
            first.title.as_ref().unwrap().content,
            "Binance & friends <2>",
            "{format:?}"
        );
        assert_eq!(
            first.links[0].href, "https://coindesk.example/a/2",
            "{format:?}"
        );
        let cats: Vec<_> = first.categories.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(cats, ["Binance", "Markets"], "{format:?}");
        assert!(body.contains("Also reported by"), "{format:?}");
        assert!(body.contains("decrypt.example/x"), "{format:?}");
    }
}

#[test]
fn outputs_read_back_in_the_format_crates_own_parsers() {
    let stories = vec![story(2, true), story(1, false)];
    let rss = render(Format::Rss, &channel(), &stories);
    let ch = ::rss::Channel::read_from(rss.as_bytes()).unwrap();
    assert_eq!(ch.items().len(), 2);
    assert_eq!(
        ch.items()[0].source().unwrap().url(),
        "https://coindesk.example/rss"
    );
    let atom = render(Format::Atom, &channel(), &stories);
    let feed = atom_syndication::Feed::read_from(atom.as_bytes()).unwrap();
    assert_eq!(feed.entries().len(), 2);
    assert_eq!(
        feed.entries()[0].source().unwrap().title().as_str(),
        "CoinDesk"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render(Format::Json, &channel(), &stories)).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["items"][0]["attachments"][0]["size_in_bytes"], 42);
    assert_eq!(
        json["items"][0]["_aggregate"]["also"][0]["title"],
        "Decrypt"
    );
}

#[test]
fn rss_has_self_link_source_and_guid() {
    let body = render(Format::Rss, &channel(), &[story(1, false)]);
    assert!(
        body.contains(r#"<atom:link href="http://127.0.0.1:8080/feeds/binance.rss" rel="self""#),
        "{body}"
    );
    assert!(
        body.contains(r#"<source url="https://coindesk.example/rss">CoinDesk</source>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<guid isPermaLink="false">urn:uuid:"#),
        "{body}"
    );
    assert!(
        body.contains(
            r#"<enclosure url="https://cdn.example/a.mp3" length="42" type="audio/mpeg""#
        ),
        "{body}"
    );
    assert!(body.contains("<dc:creator>Jane Doe</dc:creator>"), "{body}");
}

#[test]
fn rendering_is_deterministic() {
    let stories = vec![story(3, true)];
    for format in [Format::Rss, Format::Atom, Format::Json] {
        assert_eq!(
            render(format, &channel(), &stories),
            render(format, &channel(), &stories)
        );
    }
}

#[test]
fn formats_from_paths() {
    assert_eq!(
        Format::from_path(Path::new("public/x.xml")),
        Some(Format::Rss)
    );
    assert_eq!(Format::from_path(Path::new("x.atom")), Some(Format::Atom));
    assert_eq!(Format::from_path(Path::new("x.JSON")), Some(Format::Json));
    assert_eq!(Format::from_path(Path::new("x.html")), None);
}

#[test]
fn an_atom_entry_without_a_link_carries_content() {
    let mut summary_only = story(1, false);
    summary_only.primary.entry.link = None;
    summary_only.primary.entry.content = None;
    let mut title_only = story(2, false);
    title_only.primary.entry.link = None;
    title_only.primary.entry.content = None;
    title_only.primary.entry.summary = None;
    let body = render(Format::Atom, &channel(), &[title_only, summary_only]);
    let feed = atom_syndication::Feed::read_from(body.as_bytes()).unwrap();
    for e in feed.entries() {
        // RFC 4287 §4.1.1 asks one or the other; each has both: its story page, and its text.
        let alternate: Vec<&str> = e
            .links()
            .iter()
            .filter(|l| l.rel() == "alternate")
            .map(|l| l.href())
            .collect();
        assert_eq!(alternate.len(), 1, "{body}");
        assert!(
            alternate[0].starts_with("http://127.0.0.1:8080/stories/"),
            "{body}"
        );
        assert!(e.content().is_some(), "RFC 4287 §4.1.1: {body}");
    }
    assert_eq!(
        feed.entries()[0].content().unwrap().value(),
        Some("Binance &amp; friends &lt;2&gt;")
    );
    assert_eq!(
        feed.entries()[1].content().unwrap().value(),
        Some("<p>Summary</p>")
    );
}

#[test]
fn a_later_page_links_its_neighbours_and_the_hub_in_every_format() {
    let channel = Channel {
        page_url: Some("http://127.0.0.1:8080/feeds/binance.rss?before=9.9".into()),
        next_url: Some("http://127.0.0.1:8080/feeds/binance.rss?before=5.5".into()),
        hub: Some("https://hub.example/".into()),
        ..channel()
    };
    let stories = vec![story(1, false)];
    for format in [Format::Rss, Format::Atom] {
        let body = render(format, &channel, &stories);
        feed_rs::parser::parse(body.as_bytes())
            .unwrap_or_else(|e| panic!("{format:?}: {e}\n{body}"));
        for (rel, href) in [
            ("self", "http://127.0.0.1:8080/feeds/binance.rss?before=9.9"),
            ("first", "http://127.0.0.1:8080/feeds/binance.rss"),
            ("next", "http://127.0.0.1:8080/feeds/binance.rss?before=5.5"),
            ("hub", "https://hub.example/"),
        ] {
            let tag = format!(r#"href="{}" rel="{rel}""#, href.replace('&', "&amp;"));
            assert!(body.contains(&tag), "{format:?} lacks {tag}:\n{body}");
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&render(Format::Json, &channel, &stories)).unwrap();
    assert_eq!(
        json["next_url"],
        "http://127.0.0.1:8080/feeds/binance.rss?before=5.5"
    );
    assert_eq!(json["feed_url"], "http://127.0.0.1:8080/feeds/binance.rss");
    assert_eq!(json["hubs"][0]["type"], "WebSub");
    assert_eq!(json["hubs"][0]["url"], "https://hub.example/");
    // The first page names neither a first page nor a next one it does not have.
    let first = render(Format::Atom, &super::tests::channel(), &stories);
    assert!(!first.contains(r#"rel="first""#) && !first.contains(r#"rel="next""#));
}

#[test]
fn an_item_without_a_link_links_its_story_page_in_every_format() {
    let mut s = story(7, false);
    s.primary.entry.link = None;
    s.primary.entry.content = None;
    let page = "http://127.0.0.1:8080/stories/7";
    for format in [Format::Rss, Format::Atom, Format::Json] {
        let body = render(format, &channel(), std::slice::from_ref(&s));
        let feed = feed_rs::parser::parse(body.as_bytes())
            .unwrap_or_else(|e| panic!("{format:?}: {e}\n{body}"));
        let links: Vec<&str> = feed.entries[0]
            .links
            .iter()
            .map(|l| l.href.as_str())
            .collect();
        assert!(links.contains(&page), "{format:?}: {links:?}\n{body}");
    }
    // Atom (RFC 4287 §4.1.1): the alternate link is there, and the text as content too.
    let atom = render(Format::Atom, &channel(), std::slice::from_ref(&s));
    assert!(
        atom.contains(&format!(r#"<link href="{page}" rel="alternate""#)),
        "{atom}"
    );
    assert!(atom.contains("<content type=\"html\">"), "{atom}");
}

#[test]
fn a_document_rendered_in_parts_reads_as_the_whole() {
    let stories: Vec<Story> = (1..=7).rev().map(|i| story(i, i % 2 == 0)).collect();
    for format in [Format::Rss, Format::Atom, Format::Json] {
        let whole = render(format, &channel(), &stories);
        let frame = frame(format, &channel(), last_updated(&stories));
        let mut parts = frame.head.clone();
        for (i, chunk) in stories.chunks(3).enumerate() {
            parts.push_str(&items(format, &channel(), chunk, i == 0));
        }
        parts.push_str(&frame.tail);
        let (a, b) = (
            feed_rs::parser::parse(whole.as_bytes()).unwrap(),
            feed_rs::parser::parse(parts.as_bytes())
                .unwrap_or_else(|e| panic!("{format:?}: {e}\n{parts}")),
        );
        let ids =
            |f: &feed_rs::model::Feed| f.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b), "{format:?}");
        assert_eq!(a.updated, b.updated, "{format:?}");
        assert_eq!(a.title.map(|t| t.content), b.title.map(|t| t.content));
        if format == Format::Json {
            let (x, y): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(&whole).unwrap(),
                serde_json::from_str(&parts).unwrap(),
            );
            assert_eq!(x, y, "the same JSON");
        }
    }
    // No stories: the frame alone is the document.
    for format in [Format::Rss, Format::Atom, Format::Json] {
        let f = frame(format, &channel(), None);
        let doc = format!("{}{}", f.head, f.tail);
        assert_eq!(doc, render(format, &channel(), &[]), "{format:?}");
    }
}
