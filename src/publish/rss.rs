//! RSS 2.0 with the `rss` crate: atom:link rel=self, a link on every item (the article, else
//! its story page), a non-permalink guid that never changes,
//! `<source url>` naming the origin feed, a `<category>` per tag, dc:creator for authors
//! (RSS's own `<author>` must be an e-mail address), the first enclosure.

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::{Category, Channel as RssChannel, Enclosure, Guid, Item, Source};

use chrono::{DateTime, Utc};

use super::{Channel, bodies, item_link};
use crate::model::Story;

pub fn render(channel: &Channel, stories: &[Story], updated: Option<DateTime<Utc>>) -> String {
    let mut ch = RssChannel {
        title: channel.title.clone(),
        link: channel.home_url.clone(),
        description: channel.description.clone(),
        generator: Some(format!("aggregate {}", env!("CARGO_PKG_VERSION"))),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        items: stories.iter().map(|s| item(channel, s)).collect(),
        ..Default::default()
    };
    ch.last_build_date = updated.map(|u| u.to_rfc2822());
    let links = channel
        .paging_links()
        .into_iter()
        .map(|(rel, href)| {
            let mut l = Link::default();
            l.set_href(href);
            l.set_rel(rel);
            if rel != "hub" {
                l.set_mime_type(Some("application/rss+xml".to_string()));
            }
            l
        })
        .collect();
    ch.atom_ext = Some(AtomExtension { links });
    ch.to_string()
}

fn item(channel: &Channel, story: &Story) -> Item {
    let p = &story.primary;
    let e = &p.entry;
    let (summary, content) = bodies(story);
    let dc = (!e.authors.is_empty()).then(|| DublinCoreExtension {
        creators: e.authors.clone(),
        ..Default::default()
    });
    Item {
        title: Some(e.title.clone()),
        link: Some(item_link(channel, story)),
        description: summary,
        content,
        guid: Some(Guid {
            value: story.guid.clone(),
            permalink: false,
        }),
        pub_date: Some(p.date.to_rfc2822()),
        categories: story
            .tags
            .iter()
            .map(|t| Category {
                name: t.0.clone(),
                domain: None,
            })
            .collect(),
        enclosure: e.enclosures.first().map(|x| Enclosure {
            url: x.url.clone(),
            length: x.length.to_string(),
            mime_type: x.mime_type.clone(),
        }),
        source: p.source.public_url().map(|url| Source {
            url: url.to_string(),
            title: Some(p.source.public_title().to_string()),
        }),
        dublin_core_ext: dc,
        ..Default::default()
    }
}
