//! The whole content path without a store: parse → tag → dedup → publish, through the public
//! API, so a hostile document can be checked in every output format in microseconds. Shared
//! with the fuzz target (fuzz/fuzz_targets/pipeline.rs includes this file).
#![allow(dead_code)]

use aggregate::model::{Source, StoredEntry, Story};
use aggregate::parse::ParseError;
use aggregate::pipeline::prepare;
use aggregate::publish::{Channel, Format, render};
use chrono::{TimeZone, Utc};

/// Renders `body`, parsed as a feed fetched from `url`, in every output format.
pub fn render_all(
    body: &[u8],
    content_type: Option<&str>,
    url: &str,
) -> Result<Vec<(Format, String)>, ParseError> {
    let url = url::Url::parse(url).expect("a valid test URL");
    // The production path: the same function every poll calls (parse, tag, identify, one
    // entry per key), on a config with one rule.
    let config = aggregate::config::Config::from_toml(
        &format!(
            "[[feed]]\nurl = \"{url}\"\n\n[[tag]]\nname = \"Binance\"\nkeywords = [\"Binance\"]\n"
        ),
        std::path::Path::new("render.toml"),
    )
    .expect("a valid test config");
    let held = aggregate::store::Held::default();
    let prepared = prepare(&config.feeds[0], &config, body, content_type, (&url, &held))?;
    let seen = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
    let stories: Vec<Story> = prepared
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, prepared)| {
            let tags = prepared.tags.clone();
            let date = aggregate::model::effective_date(prepared.entry.published, seen);
            Story {
                id: aggregate::model::StoryId::Entry(0),
                guid: prepared.guid.clone(),
                updated: date,
                changed: seen,
                primary: StoredEntry {
                    id: i as i64,
                    guid: prepared.guid,
                    date,
                    first_seen: seen,
                    source: Source {
                        title: "Source".into(),
                        feed_url: url.to_string(),
                        link: prepared.entry.link.clone(),
                        site: None,
                    },
                    tags: tags.clone(),
                    entry: prepared.entry,
                },
                also: vec![],
                tags,
            }
        })
        .collect();
    let channel = Channel {
        title: "Test".into(),
        description: "Test".into(),
        self_url: "https://out.example/feeds/x.rss".into(),
        page_url: None,
        next_url: None,
        hub: None,
        home_url: "https://out.example/".into(),
    };
    Ok([Format::Rss, Format::Atom, Format::Json]
        .into_iter()
        .map(|f| (f, render(f, &channel, &stories)))
        .collect())
}
