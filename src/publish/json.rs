//! JSON Feed 1.1 (https://jsonfeed.org/version/1.1). Origin and other sources go in an
//! `_aggregate` extension object, as the spec asks of extensions.

use serde_json::{Value, json};

use super::{Channel, bodies, item_link};
use crate::model::{Source, Story};
use crate::normalize::plain_text;

pub fn render(channel: &Channel, stories: &[Story]) -> String {
    let mut feed = json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": channel.title,
        "description": channel.description,
        "home_page_url": channel.home_url,
        "feed_url": channel.self_url,
        "items": stories.iter().map(|s| item(channel, s)).collect::<Vec<_>>(),
    });
    let obj = feed.as_object_mut().expect("built as an object");
    if let Some(next) = &channel.next_url {
        obj.insert("next_url".into(), json!(next));
    }
    if let Some(hub) = &channel.hub {
        obj.insert("hubs".into(), json!([{ "type": "WebSub", "url": hub }]));
    }
    serde_json::to_string_pretty(&feed).expect("JSON values always serialise")
}

/// The items alone, as the JSON list `render` would hold.
pub(super) fn items(channel: &Channel, stories: &[Story]) -> String {
    let items: Vec<Value> = stories.iter().map(|s| item(channel, s)).collect();
    serde_json::to_string_pretty(&items).expect("JSON values always serialise")
}

fn source(s: &Source) -> Value {
    json!({ "title": s.public_title(), "feed_url": s.public_url(), "url": s.link })
}

fn item(channel: &Channel, story: &Story) -> Value {
    let p = &story.primary;
    let e = &p.entry;
    let (summary, content) = bodies(story);
    let mut item = json!({
        "id": story.guid,
        "title": e.title,
        "content_html": content.as_ref().or(summary.as_ref()).cloned().unwrap_or_default(),
        "date_published": p.date.to_rfc3339(),
        "tags": story.tags.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
        "_aggregate": {
            "source": source(&p.source),
            "also": story.also.iter().map(source).collect::<Vec<_>>(),
        },
    });
    let obj = item.as_object_mut().expect("built as an object");
    if story.updated > p.date {
        obj.insert("date_modified".into(), json!(story.updated.to_rfc3339()));
    }
    obj.insert("url".into(), json!(item_link(channel, story)));
    if let (Some(s), Some(_)) = (&summary, &content) {
        // JSON Feed's summary is plain text: no markup, even decoded from entities.
        obj.insert("summary".into(), json!(plain_text(s)));
    }
    if !e.authors.is_empty() {
        obj.insert(
            "authors".into(),
            e.authors.iter().map(|a| json!({ "name": a })).collect(),
        );
    }
    if !e.enclosures.is_empty() {
        let att: Vec<Value> = e
            .enclosures
            .iter()
            .map(|x| {
                let mut a = json!({ "url": x.url, "mime_type": x.mime_type });
                if x.length > 0 {
                    a["size_in_bytes"] = json!(x.length);
                }
                a
            })
            .collect();
        obj.insert("attachments".into(), Value::Array(att));
    }
    item
}
