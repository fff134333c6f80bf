//! The config file's syntax, as serde reads it, and its translation into the validated types.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::values::{feed_identity, parse_duration, parse_feed_url, parse_size};
use super::*;
use crate::dedup::cluster::Merge;
use crate::model::tag_key;
use crate::tag::TagRule;

/// A failed check: the key's path (`feed[2].url`) and what is wrong with its value.
type Invalid = (String, String);

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    fetch: RawFetch,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    dedup: RawDedup,
    #[serde(default)]
    feed: Vec<RawFeed>,
    #[serde(default)]
    tag: Vec<RawTag>,
    #[serde(default)]
    output: Vec<RawOutput>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: Option<String>,
    url: Option<String>,
    pool: Option<i64>,
    #[serde(default, deserialize_with = "duration_text")]
    lease: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    retention: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    #[serde(default, deserialize_with = "duration_text")]
    interval: Option<String>,
    concurrency: Option<i64>,
    per_host: Option<i64>,
    #[serde(default, deserialize_with = "duration_text")]
    timeout: Option<String>,
    #[serde(default, deserialize_with = "size_text")]
    max_body: Option<String>,
    user_agent: Option<String>,
    deny_private: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    base_url: Option<String>,
    control: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    header_timeout: Option<String>,
    per_address: Option<i64>,
    websub_hub: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDedup {
    merge: Option<String>,
    stories: Option<bool>,
    threshold: Option<f64>,
    #[serde(default, deserialize_with = "duration_text")]
    window: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    absorb: Option<String>,
    #[serde(default, deserialize_with = "duration_text")]
    settle: Option<String>,
    index_stories: Option<i64>,
    #[serde(default)]
    aliases: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_entries: Option<i64>,
    #[serde(default, deserialize_with = "size_text")]
    max_field: Option<String>,
    max_depth: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    url: String,
    title: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default, deserialize_with = "duration_text")]
    interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTag {
    name: String,
    #[serde(default)]
    keywords: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    name: String,
    title: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    exclude_tags: Vec<String>,
    limit: Option<i64>,
    path: Option<String>,
}

/// A duration's text. Its own reader, so that a wrong type is told as what would be right
/// ("expected a duration such as \"15m\""), not as serde's "a string".
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as \"15m\", \"2h\" or \"90d\" (a quoted string)")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_str(Text)
}

/// A size's text: "10MiB", or a number of bytes written as an integer.
fn size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a size such as \"10MiB\" or \"512KiB\", or a number of bytes")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_any(Text)
}

/// serde's words for a syntax error, in the config's terms: the section a type stands for
/// ("expected the [fetch] table", not "expected struct RawFetch"), and which `[[feed]]` (by
/// index, as the other errors count them) lacks a field.
pub fn explain(e: &toml::de::Error, text: &str) -> String {
    let mut message = e.to_string().trim_end().to_string();
    for (raw, said) in [
        (
            "struct RawConfig",
            "a config of tables such as [fetch] and [[feed]]",
        ),
        ("struct RawStorage", "the [storage] table"),
        ("struct RawFetch", "the [fetch] table"),
        ("struct RawServer", "the [server] table"),
        ("struct RawLimits", "the [limits] table"),
        ("struct RawDedup", "the [dedup] table"),
        ("struct RawFeed", "a [[feed]] table"),
        ("struct RawTag", "a [[tag]] table"),
        ("struct RawOutput", "an [[output]] table"),
        ("expected a sequence", "expected an array"),
    ] {
        message = message.replace(raw, said);
    }
    let Some(span) = e.span() else {
        return message;
    };
    // "missing field `url`" points at the table's header: name the table by its index.
    let header = text.get(span.clone()).unwrap_or("").trim();
    for section in ["feed", "tag", "output"] {
        let is_header = |line: &str| {
            let l = line.trim();
            l.starts_with("[[")
                && l.trim_start_matches("[[").split("]]").next().map(str::trim) == Some(section)
        };
        if is_header(header) {
            let before = text[..span.start].lines().filter(|l| is_header(l)).count();
            return format!("{section}[{before}]: {message}");
        }
    }
    message
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    (key.into(), message.into())
}

/// The longest a poll interval may be: a feed polled less than once a year is not followed.
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 86_400);
/// The longest any other duration may be (retention, windows): a century. Past it, dates
/// computed from it leave what clocks can represent.
const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);
/// The longest a fetch may take.
const MAX_TIMEOUT: Duration = Duration::from_secs(3_600);

fn duration_or(key: &str, value: &Option<String>, default: &str) -> Result<Duration, Invalid> {
    let max = if key.ends_with("interval") {
        MAX_INTERVAL
    } else if key.ends_with("timeout") {
        MAX_TIMEOUT
    } else {
        MAX_DURATION
    };
    let text = value.as_deref().unwrap_or(default);
    let d = parse_duration(text).map_err(|m| invalid(key, m))?;
    if d > max {
        return Err(invalid(
            key,
            format!(
                "{text:?} is too long: the largest accepted is {}",
                super::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

/// The most a count (concurrency, per host, pool, entries, depth) may be: each is a number of
/// things held at once, and past ten thousand the machine runs out before the setting binds.
const MAX_COUNT: i64 = 10_000;

fn count_or(key: &str, value: Option<i64>, default: usize) -> Result<usize, Invalid> {
    match value {
        None => Ok(default),
        Some(n) if (1..=MAX_COUNT).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(
            key,
            format!("{n} is out of range; give a number from 1 to {MAX_COUNT}"),
        )),
    }
}

/// A count with bounds of its own (not [`MAX_COUNT`]'s), the default named when refused.
fn count_between(
    key: &str,
    value: Option<i64>,
    default: usize,
    least: usize,
    most: usize,
) -> Result<usize, Invalid> {
    match value {
        None => Ok(default),
        Some(n) if (least as i64..=most as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(
            key,
            format!("{n} is not between {least} and {most} (the default is {default})"),
        )),
    }
}

impl RawConfig {
    pub fn build(self) -> Result<Config, Invalid> {
        let fetch = self.fetch.build()?;
        let feeds = self
            .feed
            .iter()
            .enumerate()
            .map(|(i, f)| f.build(i, fetch.interval))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = HashSet::new();
        for (i, f) in feeds.iter().enumerate() {
            if !seen.insert(feed_identity(&f.url)) {
                return Err(invalid(
                    format!("feed[{i}].url"),
                    format!(
                        "{} is subscribed twice (URLs that differ only in http/https, a trailing slash or a fragment are one feed)",
                        f.url
                    ),
                ));
            }
        }
        let rules = self
            .tag
            .iter()
            .enumerate()
            .map(|(i, t)| t.build(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = HashSet::new();
        for (i, r) in rules.iter().enumerate() {
            if !names.insert(tag_key(&r.name)) {
                return Err(invalid(
                    format!("tag[{i}].name"),
                    format!("{:?} is defined twice", r.name),
                ));
            }
        }
        let tags = TagRules::compile(rules)
            .map_err(|e| invalid(format!("tag[{}].keywords", e.rule), e.message))?;
        let outputs = build_outputs(&self.output)?;
        Ok(Config {
            storage: self.storage.build(&fetch)?,
            fetch,
            server: self.server.build()?,
            feeds,
            tags,
            outputs,
            limits: self.limits.build()?,
            dedup: self.dedup.build()?,
        })
    }
}

impl RawDedup {
    /// `merge`, or `stories = true | false` as configs written before it say it.
    fn merge(&self, default: Merge) -> Result<Merge, Invalid> {
        let named = match self.merge.as_deref().map(str::trim) {
            None => None,
            Some(name) => Some(
                [Merge::Links, Merge::Copies, Merge::Stories]
                    .into_iter()
                    .find(|m| m.name().eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        invalid(
                            "dedup.merge",
                            format!(
                                "{name:?} is not one of \"links\", \"copies\", \"stories\" (the default)"
                            ),
                        )
                    })?,
            ),
        };
        let said = self
            .stories
            .map(|on| if on { Merge::Stories } else { Merge::Copies });
        match (named, said) {
            (Some(m), Some(s)) if m != s => Err(invalid(
                "dedup.stories",
                format!(
                    "= {} contradicts dedup.merge = {:?}; remove stories, which merge replaces",
                    self.stories.unwrap_or_default(),
                    m.name()
                ),
            )),
            (m, s) => Ok(m.or(s).unwrap_or(default)),
        }
    }

    fn build(&self) -> Result<crate::dedup::cluster::Settings, Invalid> {
        let d = crate::dedup::cluster::Settings::default();
        let span = |key: &str, value: &Option<String>, default: chrono::Duration| match value {
            None => Ok(default),
            Some(_) => chrono::Duration::from_std(duration_or(key, value, "0s")?)
                .map_err(|_| invalid(key, "is too long")),
        };
        let threshold = match self.threshold {
            None => d.threshold,
            Some(t) if (0.0..=1.0).contains(&t) => t as f32,
            Some(t) => {
                return Err(invalid(
                    "dedup.threshold",
                    format!(
                        "{t} is not between 0 and 1 (higher merges less; the default is {})",
                        d.threshold
                    ),
                ));
            }
        };
        for (name, canonical) in &self.aliases {
            if name.trim().is_empty() || canonical.trim().is_empty() {
                return Err(invalid(
                    format!("dedup.aliases.{name:?}"),
                    "an alias and what it names must both be non-empty",
                ));
            }
            if name.split_whitespace().count() > 4 {
                return Err(invalid(
                    format!("dedup.aliases.{name:?}"),
                    "an alias may be at most four words",
                ));
            }
        }
        let max_stories = count_between(
            "dedup.index_stories",
            self.index_stories,
            d.max_stories,
            100,
            10_000_000,
        )?;
        let extra: Vec<(String, String)> = self.aliases.clone().into_iter().collect();
        Ok(crate::dedup::cluster::Settings {
            merge: self.merge(d.merge)?,
            threshold,
            window: span("dedup.window", &self.window, d.window)?,
            absorb: span("dedup.absorb", &self.absorb, d.absorb)?,
            settle: span("dedup.settle", &self.settle, d.settle)?,
            max_stories,
            aliases: crate::dedup::Aliases::with(&extra),
        })
    }
}

impl RawLimits {
    fn build(&self) -> Result<crate::parse::Limits, Invalid> {
        let d = crate::parse::Limits::default();
        let max_field = match &self.max_field {
            None => d.max_field,
            Some(text) => parse_size(text).map_err(|m| invalid("limits.max_field", m))? as usize,
        };
        Ok(crate::parse::Limits {
            max_entries: count_or("limits.max_entries", self.max_entries, d.max_entries)?,
            max_field,
            max_depth: count_or("limits.max_depth", self.max_depth, d.max_depth)?,
        })
    }
}

impl RawStorage {
    fn build(&self, fetch: &FetchConfig) -> Result<StorageConfig, Invalid> {
        let postgres = self.postgres(fetch)?;
        if postgres.is_some() && self.path.is_some() {
            return Err(invalid(
                "storage.url",
                "and storage.path are exclusive: give url for PostgreSQL or path for SQLite",
            ));
        }
        for (key, set) in [
            ("pool", self.pool.is_some()),
            ("lease", self.lease.is_some()),
        ] {
            if set && postgres.is_none() {
                return Err(invalid(
                    format!("storage.{key}"),
                    "applies to PostgreSQL only; give storage.url too, or remove it",
                ));
            }
        }
        let path = self.path.clone().unwrap_or_else(|| "aggregate.db".into());
        if path.trim().is_empty() {
            return Err(invalid(
                "storage.path",
                "is empty; give a file path such as \"aggregate.db\"",
            ));
        }
        Ok(StorageConfig {
            path: PathBuf::from(path),
            postgres,
            retention: duration_or("storage.retention", &self.retention, "90d")?,
        })
    }
}

/// A lease outlives the longest fetch by this much: the parse and the commit after it.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

impl RawStorage {
    fn postgres(&self, fetch: &FetchConfig) -> Result<Option<PostgresConfig>, Invalid> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        if let Err(e) = url.parse::<tokio_postgres::Config>() {
            // The parser's message never repeats the string, which may hold a password.
            return Err(invalid(
                "storage.url",
                format!(
                    "is not a PostgreSQL address ({e}); give \"postgres://user@host/db\" or \"host=/run/postgresql dbname=aggregate\""
                ),
            ));
        }
        Ok(Some(PostgresConfig {
            url: url.clone(),
            pool: count_or("storage.pool", self.pool, 8)?,
            lease: match &self.lease {
                Some(_) => duration_or("storage.lease", &self.lease, "")?,
                None => fetch.timeout + LEASE_MARGIN,
            },
        }))
    }
}

impl RawFetch {
    fn build(&self) -> Result<FetchConfig, Invalid> {
        let max_body = self.max_body.as_deref().unwrap_or("10MiB");
        let user_agent = self.user_agent.clone().unwrap_or_else(default_user_agent);
        if user_agent.trim().is_empty() || user_agent.contains(['\r', '\n']) {
            return Err(invalid("fetch.user_agent", "must be one non-empty line"));
        }
        Ok(FetchConfig {
            interval: duration_or("fetch.interval", &self.interval, "15m")?,
            concurrency: count_or("fetch.concurrency", self.concurrency, 16)?,
            per_host: count_or("fetch.per_host", self.per_host, 2)?,
            timeout: duration_or("fetch.timeout", &self.timeout, "30s")?,
            max_body: parse_size(max_body).map_err(|m| invalid("fetch.max_body", m))?,
            user_agent,
            deny_private: self.deny_private.unwrap_or(false),
        })
    }
}

impl RawServer {
    fn build(&self) -> Result<ServerConfig, Invalid> {
        let listen_text = self.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!("{listen_text:?} is not an address; write it like \"127.0.0.1:8080\""),
            )
        })?;
        let default_base = format!("http://{listen}");
        let base_text = self.base_url.as_deref().unwrap_or(&default_base);
        let mut base_url = Url::parse(base_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                invalid(
                    "server.base_url",
                    format!(
                        "{base_text:?} is not an http(s) URL such as \"https://news.example.org\""
                    ),
                )
            })?;
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        let control = match self.control.as_deref().map(str::trim) {
            None => PathBuf::from("aggregate.sock"),
            Some("") => {
                return Err(invalid(
                    "server.control",
                    "is empty; give the path of the control socket, such as \"aggregate.sock\"",
                ));
            }
            Some(p) => PathBuf::from(p),
        };
        let websub_hub = match self.websub_hub.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                Url::parse(text)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        invalid(
                            "server.websub_hub",
                            format!(
                                "{text:?} is not an http(s) URL such as \"https://pubsubhubbub.appspot.com/\""
                            ),
                        )
                    })?,
            ),
        };
        let per_address = count_between(
            "server.per_address",
            self.per_address,
            64,
            1,
            super::MAX_CONNECTIONS,
        )?;
        Ok(ServerConfig {
            listen,
            base_url,
            control,
            websub_hub,
            per_address,
            header_timeout: duration_or("server.header_timeout", &self.header_timeout, "10s")?,
        })
    }
}

impl RawFeed {
    fn build(&self, i: usize, default_interval: Duration) -> Result<FeedConfig, Invalid> {
        let url = parse_feed_url(&self.url).map_err(|m| invalid(format!("feed[{i}].url"), m))?;
        let interval = match &self.interval {
            None => default_interval,
            Some(_) => duration_or(&format!("feed[{i}].interval"), &self.interval, "")?,
        };
        let title = self
            .title
            .as_ref()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        Ok(FeedConfig {
            url,
            title,
            tags: self.tags.iter().filter_map(|t| Tag::new(t)).collect(),
            interval,
        })
    }
}

impl RawTag {
    fn build(&self, i: usize) -> Result<TagRule, Invalid> {
        let name = Tag::new(&self.name).ok_or_else(|| {
            invalid(
                format!("tag[{i}].name"),
                "is empty; give the tag's name, such as \"Binance\"",
            )
        })?;
        Ok(TagRule {
            name: name.0,
            keywords: self.keywords.clone(),
        })
    }
}

fn build_outputs(raw: &[RawOutput]) -> Result<Vec<OutputConfig>, Invalid> {
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    let mut outputs = Vec::new();
    for (i, o) in raw.iter().enumerate() {
        let out = o.build(i)?;
        // Names are told apart without regard to case: /feeds/Binance.rss and
        // /feeds/binance.rss are one address to a person.
        if !names.insert(out.name.to_ascii_lowercase()) {
            return Err(invalid(
                format!("output[{i}].name"),
                format!(
                    "{:?} is used by two outputs (names are compared without regard to case)",
                    out.name
                ),
            ));
        }
        if let Some((p, _)) = &out.file {
            if !paths.insert(p.clone()) {
                return Err(invalid(
                    format!("output[{i}].path"),
                    format!("{} is written by two outputs", p.display()),
                ));
            }
        }
        outputs.push(out);
    }
    Ok(outputs)
}

impl RawOutput {
    /// The output's limit: 50 by default, at most a served page, or more for an output
    /// written to a file (it is written in parts).
    fn limit(&self, to_file: bool, key: &impl Fn(&str) -> String) -> Result<usize, Invalid> {
        let most = if to_file {
            MAX_FILE_LIMIT
        } else {
            MAX_OUTPUT_LIMIT
        };
        match self.limit {
            None => Ok(50),
            Some(n) if n >= 1 && n as usize <= most => Ok(n as usize),
            Some(n) => {
                let why = match to_file {
                    true => String::new(),
                    false => format!(" (an output with a path may hold up to {MAX_FILE_LIMIT})"),
                };
                Err(invalid(
                    key("limit"),
                    format!("{n} is out of range; give 1 to {most}{why}"),
                ))
            }
        }
    }

    fn build(&self, i: usize) -> Result<OutputConfig, Invalid> {
        let key = |k: &str| format!("output[{i}].{k}");
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(invalid(
                key("name"),
                format!(
                    "{:?} must be 1-64 letters, digits, '-' or '_' (it becomes /feeds/NAME.rss)",
                    self.name
                ),
            ));
        }
        let file = match &self.path {
            None => None,
            Some(p) => {
                let path = PathBuf::from(p);
                let format = Format::from_path(&path).ok_or_else(|| {
                    invalid(key("path"), format!("{p:?} has no known extension; use .xml or .rss (RSS 2.0), .atom (Atom) or .json (JSON Feed)"))
                })?;
                Some((path, format))
            }
        };
        let limit = self.limit(file.is_some(), &key)?;
        let clean = |v: &[String]| {
            v.iter()
                .filter_map(|t| Tag::new(t))
                .map(|t| t.0)
                .collect::<Vec<_>>()
        };
        Ok(OutputConfig {
            name: self.name.clone(),
            title: self.title.clone().unwrap_or_else(|| self.name.clone()),
            tags: clean(&self.tags),
            exclude_tags: clean(&self.exclude_tags),
            limit,
            file,
        })
    }
}
