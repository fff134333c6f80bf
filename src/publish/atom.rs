//! Atom 1.0 with `atom_syndication`: each entry's `<source>` names its origin feed, other
//! outlets are `rel="related"` links, enclosures are `rel="enclosure"` links.

use atom_syndication::{
    Category, Content, Entry, Feed, FixedDateTime, Generator, Link, Person, Source, Text, TextType,
};

use chrono::{DateTime, Utc};

use super::{Channel, bodies, item_link};
use crate::model::Story;
use crate::normalize::escape_html;

fn link(href: &str, rel: &str, mime: Option<&str>) -> Link {
    Link {
        href: href.to_string(),
        rel: rel.to_string(),
        mime_type: mime.map(str::to_string),
        ..Default::default()
    }
}

fn html(value: String) -> Text {
    Text {
        value,
        r#type: TextType::Html,
        ..Default::default()
    }
}

pub fn render(channel: &Channel, stories: &[Story], updated: Option<DateTime<Utc>>) -> String {
    let feed = Feed {
        title: Text::plain(channel.title.clone()),
        subtitle: Some(Text::plain(channel.description.clone())),
        id: channel.self_url.clone(),
        updated: updated.unwrap_or(DateTime::UNIX_EPOCH).fixed_offset(),
        // Atom wants an author on every entry or on the feed; ours is the aggregator's output.
        authors: vec![Person {
            name: channel.title.clone(),
            ..Default::default()
        }],
        generator: Some(Generator {
            value: "aggregate".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            uri: None,
        }),
        links: channel
            .paging_links()
            .into_iter()
            .map(|(rel, href)| link(href, rel, (rel != "hub").then_some("application/atom+xml")))
            .chain([link(&channel.home_url, "alternate", Some("text/html"))])
            .collect(),
        entries: stories.iter().map(|s| entry(channel, s)).collect(),
        ..Default::default()
    };
    feed.to_string()
}

fn entry(channel: &Channel, story: &Story) -> Entry {
    let p = &story.primary;
    let e = &p.entry;
    let (mut summary, mut content) = bodies(story);
    // RFC 4287 §4.1.1: an entry with no alternate link must have content. Every entry links
    // (its story page when the source gave no link); a linkless one carries its text as
    // content too: the summary, else its title.
    if e.link.is_none() && content.is_none() {
        content = Some(summary.take().unwrap_or_else(|| escape_html(&e.title)));
    }
    let date: FixedDateTime = p.date.fixed_offset();
    Entry {
        title: Text::plain(e.title.clone()),
        id: story.guid.clone(),
        updated: story.updated.fixed_offset(),
        published: Some(date),
        authors: e
            .authors
            .iter()
            .map(|a| Person {
                name: a.clone(),
                ..Default::default()
            })
            .collect(),
        categories: categories(story),
        links: links(channel, story),
        summary: summary.map(html),
        content: content.map(|c| Content {
            value: Some(c),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        source: p.source.public_url().map(|url| Source {
            title: Text::plain(p.source.public_title().to_string()),
            id: url.to_string(),
            updated: date,
            links: vec![link(url, "self", None)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The article, its attachments, and the other outlets' copies.
fn links(channel: &Channel, story: &Story) -> Vec<Link> {
    let e = &story.primary.entry;
    let mut links = vec![link(
        &item_link(channel, story),
        "alternate",
        Some("text/html"),
    )];
    for x in &e.enclosures {
        let mut l = link(&x.url, "enclosure", Some(&x.mime_type));
        l.length = (x.length > 0).then(|| x.length.to_string());
        links.push(l);
    }
    for s in &story.also {
        let Some(href) = s.link.as_deref().or(s.public_url()) else {
            continue;
        };
        let mut l = link(href, "related", Some("text/html"));
        l.title = Some(s.public_title().to_string());
        links.push(l);
    }
    links
}

/// A category per tag, with the label its source showed it by, where it had one.
fn categories(story: &Story) -> Vec<Category> {
    let labels = &story.primary.entry.category_labels;
    story
        .tags
        .iter()
        .map(|t| Category {
            term: t.0.clone(),
            label: labels
                .iter()
                .find(|(term, _)| crate::model::tag_key(term) == t.key())
                .map(|(_, label)| label.clone()),
            ..Default::default()
        })
        .collect()
}
