//! Configuration in two phases: `raw` deserialises the TOML syntax (unknown keys and wrong types
//! are refused there, with the key's path and line), then [`Config::from_toml`] builds the
//! validated object: URLs parsed, durations and sizes read, tag rules compiled. Every error names
//! the key, the value and what would be right.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;
use url::Url;

use crate::model::Tag;
use crate::publish::Format;
use crate::tag::TagRules;

pub mod edit;
mod raw;
mod values;

pub use values::{feed_identity, format_duration, parse_duration, parse_feed_url, parse_size};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a `source`: the OS error is said once, in this message.
    #[error("cannot read config {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub storage: StorageConfig,
    pub fetch: FetchConfig,
    pub server: ServerConfig,
    pub feeds: Vec<FeedConfig>,
    pub tags: TagRules,
    pub outputs: Vec<OutputConfig>,
    /// What one feed may cost (entries, field size, nesting).
    pub limits: crate::parse::Limits,
    /// Which entries are one story (`[dedup]`).
    pub dedup: crate::dedup::cluster::Settings,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The SQLite database, unless `postgres` is set.
    pub path: PathBuf,
    /// A PostgreSQL database shared by any number of instances, instead of `path`.
    pub postgres: Option<PostgresConfig>,
    /// Entries are deleted this long after they were first seen (a tombstone stays behind).
    pub retention: Duration,
}

/// `[storage] url = "postgres://…"`: where the shared database is, and how this instance uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresConfig {
    /// A libpq connection string or URL, as given (it may hold a password: never logged).
    pub url: String,
    /// Connections this instance keeps open.
    pub pool: usize,
    /// How long a claimed poll is this instance's before another may take the feed over.
    pub lease: Duration,
}

impl PostgresConfig {
    /// Where the database is, without user or password: for logs and `aggregate check`.
    pub fn target(&self) -> String {
        match self.url.parse::<tokio_postgres::Config>() {
            Ok(c) => {
                let hosts: Vec<String> = c
                    .get_hosts()
                    .iter()
                    .map(|h| match h {
                        tokio_postgres::config::Host::Tcp(h) => h.clone(),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .collect();
                format!(
                    "postgres {} database {}",
                    if hosts.is_empty() {
                        "localhost".into()
                    } else {
                        hosts.join(",")
                    },
                    c.get_dbname().unwrap_or("(the user's)")
                )
            }
            Err(_) => "postgres (unreadable address)".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchConfig {
    pub interval: Duration,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
    pub max_body: u64,
    pub user_agent: String,
    /// Refuse feed URLs and redirects to this machine, private networks and metadata services.
    pub deny_private: bool,
}

/// Connections the server holds at once, from all addresses: past it a new one is closed at
/// once. Bounds sockets and memory on a small server; a thousand feed readers polling every
/// few minutes use a handful.
pub const MAX_CONNECTIONS: usize = 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub base_url: Url,
    /// The service's control socket (Unix domain, owner only): `aggregate refresh` asks the
    /// running service through it.
    pub control: PathBuf,
    /// A client gets this long to send a request's headers; it also closes idle keep-alive
    /// connections. Feed readers send theirs in one packet.
    pub header_timeout: Duration,
    /// Connections one client address may hold at once (a slowloris takes no more). A reverse
    /// proxy on the same host is one address for all its clients: raise it behind one.
    pub per_address: usize,
    /// The WebSub hub the outputs name (rel="hub") and tell when they change.
    pub websub_hub: Option<Url>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// The subscribed URL: http(s), or file for a local file. Identifies the feed in the store.
    pub url: Url,
    pub title: Option<String>,
    /// Given to every entry of this feed.
    pub tags: Vec<Tag>,
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputConfig {
    /// Path-safe name: `/feeds/{name}.rss`.
    pub name: String,
    pub title: String,
    pub tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    pub limit: usize,
    /// Where to write it after each poll pass, and in which format (from the extension).
    pub file: Option<(PathBuf, Format)>,
}

/// Hard ceiling on items in one served page of an output, and on an output without a file: a
/// feed reader gains nothing past it (it pages on), and it bounds the work of one response.
pub const MAX_OUTPUT_LIMIT: usize = 1000;

/// Ceiling on items in an output written to a file (an archive for a script or a static
/// site): written a chunk at a time, so its length costs time, not memory.
pub const MAX_FILE_LIMIT: usize = 100_000;

pub fn default_user_agent() -> String {
    format!(
        "aggregate/{} (+https://github.com/aggregate-rs/aggregate)",
        env!("CARGO_PKG_VERSION")
    )
}

impl Config {
    /// The configured feeds' URLs, in config order.
    pub fn feed_urls(&self) -> Vec<String> {
        self.feeds.iter().map(|f| f.url.to_string()).collect()
    }

    /// Tag names as the config spells them: rule names and feed tags.
    pub fn tag_spellings(&self) -> Vec<String> {
        let rules = self.tags.rules().iter().map(|r| r.name.clone());
        let feeds = self
            .feeds
            .iter()
            .flat_map(|f| f.tags.iter().map(|t| t.0.clone()));
        rules.chain(feeds).collect()
    }

    /// A digest of what instances sharing a database must agree on: feeds (and their titles,
    /// tags and intervals), tag rules, story settings and outputs. Addresses, paths and
    /// limits of this machine are left out: they may differ.
    pub fn shared_fingerprint(&self) -> String {
        let feeds: Vec<_> = self
            .feeds
            .iter()
            .map(|f| (f.url.as_str(), &f.title, &f.tags, f.interval))
            .collect();
        let outputs: Vec<_> = self
            .outputs
            .iter()
            .map(|o| (&o.name, &o.title, &o.tags, &o.exclude_tags, o.limit))
            .collect();
        // Field by field, never a map's Debug: its order differs from process to process.
        let d = &self.dedup;
        // As `stories = true | false` printed before `merge` was: versions agree where they can.
        let merge: &dyn std::fmt::Debug = match d.merge {
            crate::dedup::cluster::Merge::Stories => &true,
            crate::dedup::cluster::Merge::Copies => &false,
            crate::dedup::cluster::Merge::Links => &"links",
        };
        let dedup = (
            merge,
            d.threshold,
            (d.window, d.absorb, d.settle),
            d.aliases.sorted(),
        );
        let rules: Vec<_> = self
            .tags
            .rules()
            .iter()
            .map(|r| (&r.name, &r.keywords))
            .collect();
        let shared = format!("{feeds:?}\n{rules:?}\n{dedup:?}\n{outputs:?}");
        let digest = sha2::Sha256::digest(shared.as_bytes());
        crate::dedup::hex(&digest[..12])
    }

    /// The configured feed `name` designates: its URL under any spelling (see
    /// [`feed_identity`]), or its configured title in any case.
    pub fn find_feed(&self, name: &str) -> Option<&FeedConfig> {
        let name = name.trim();
        let id = Url::parse(name).ok().map(|u| feed_identity(&u));
        self.feeds.iter().find(|f| {
            id.as_deref() == Some(feed_identity(&f.url).as_str())
                || f.title
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(name))
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Config::from_toml(&text, path)
    }

    /// Builds the validated config; `path` only names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: raw::explain(&e, text),
        })?;
        raw.build().map_err(|(key, message)| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[[feed]]\nurl = \"https://a.example/feed\"\ntags = [\"x\"]\n\n\
        [[tag]]\nname = \"Binance\"\nkeywords = [\"binance\", \"cz\"]\n\n\
        [dedup.aliases]\n\"the fed\" = \"federal reserve\"\n\"sec\" = \"securities and exchange commission\"\n";

    /// Instances compare fingerprints: the same config must give the same one however its
    /// maps happen to be ordered, and a different one for another feed list.
    #[test]
    fn the_shared_fingerprint_is_the_configs_not_the_processs() {
        let path = Path::new("config.toml");
        let a = Config::from_toml(CONFIG, path)
            .unwrap()
            .shared_fingerprint();
        for _ in 0..8 {
            let b = Config::from_toml(CONFIG, path)
                .unwrap()
                .shared_fingerprint();
            assert_eq!(a, b);
        }
        let listening = CONFIG.replace(
            "[[feed]]",
            "[server]\nlisten = \"127.0.0.1:9999\"\n\n[[feed]]",
        );
        let here = Config::from_toml(&listening, path)
            .unwrap()
            .shared_fingerprint();
        assert_eq!(a, here, "where an instance listens is its own business");
        let other = CONFIG.replace("a.example", "b.example");
        let other = Config::from_toml(&other, path)
            .unwrap()
            .shared_fingerprint();
        assert_ne!(a, other);
    }
}
