//! Edits to the config file the toolbox makes (`import`, `discover --add`): the file's own
//! comments, order and layout are kept (toml_edit), the result is validated as a whole before
//! anything is written, and the file is replaced atomically, keeping its permissions. A config
//! is never left half-edited or invalid.

use std::io::Write as _;
use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use super::{Config, ConfigError};

/// A `[[feed]]` to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeed {
    pub url: String,
    pub title: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("config {path}: `feed` is not an array of [[feed]] tables; cannot add feeds to it")]
    NotFeeds { path: String },
    #[error("cannot write config {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// `text` with `feeds` appended as `[[feed]]` tables after the last one there (or at the end),
/// checked to be a valid config. `path` only names the file in errors.
pub fn append_feeds(text: &str, feeds: &[NewFeed], path: &Path) -> Result<String, EditError> {
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Syntax {
                path: path.to_owned(),
                message: e.to_string().trim_end().to_string(),
            })?;
    let not_feeds = || EditError::NotFeeds {
        path: path.display().to_string(),
    };
    // Where the new tables go: right after the last feed, so feeds stay together; positions
    // after it shift by the number added.
    let last = match doc.get("feed") {
        None => None,
        Some(Item::ArrayOfTables(a)) => a.iter().filter_map(Table::position).max(),
        Some(_) => return Err(not_feeds()),
    };
    let edited = match last {
        Some(last) => {
            shift_tables_after(doc.as_table_mut(), last, feeds.len() as isize);
            let array = doc["feed"].as_array_of_tables_mut().expect("checked above");
            for (i, feed) in feeds.iter().enumerate() {
                let mut table = feed_table(feed);
                table.set_position(Some(last + 1 + i as isize));
                array.push(table);
            }
            doc.to_string()
        }
        // No feed yet: the tables go at the very end, after any comment the file ends with.
        None => {
            let mut added = DocumentMut::new();
            let mut array = ArrayOfTables::new();
            feeds.iter().for_each(|f| array.push(feed_table(f)));
            added.insert("feed", Item::ArrayOfTables(array));
            let mut edited = text.to_string();
            if !edited.is_empty() && !edited.ends_with('\n') {
                edited.push('\n');
            }
            if !edited.is_empty() {
                edited.push('\n');
            }
            edited.push_str(&added.to_string());
            edited
        }
    };
    Config::from_toml(&edited, path)?;
    Ok(edited)
}

fn feed_table(feed: &NewFeed) -> Table {
    let mut table = Table::new();
    table.insert("url", value(&feed.url));
    if let Some(title) = &feed.title {
        table.insert("title", value(title));
    }
    if !feed.tags.is_empty() {
        let tags: Array = feed.tags.iter().map(String::as_str).collect();
        table.insert("tags", value(tags));
    }
    table
}

/// Moves every table positioned after `after` down by `by`, nested ones included.
fn shift_tables_after(table: &mut Table, after: isize, by: isize) {
    for (_, item) in table.iter_mut() {
        match item {
            Item::Table(t) => {
                if let Some(p) = t.position().filter(|p| *p > after) {
                    t.set_position(Some(p + by));
                }
                shift_tables_after(t, after, by);
            }
            Item::ArrayOfTables(a) => {
                for t in a.iter_mut() {
                    if let Some(p) = t.position().filter(|p| *p > after) {
                        t.set_position(Some(p + by));
                    }
                    shift_tables_after(t, after, by);
                }
            }
            _ => {}
        }
    }
}

/// Replaces the file at `path` with `text`: a temporary file beside it, synced, given the old
/// file's permissions, then renamed over it. A crash leaves the old file or the new, never a
/// mix.
pub fn replace_file(path: &Path, text: &str) -> Result<(), EditError> {
    let failed = |source| EditError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    tmp.write_all(text.as_bytes()).map_err(failed)?;
    match std::fs::metadata(path) {
        Ok(old) => tmp
            .as_file()
            .set_permissions(old.permissions())
            .map_err(failed)?,
        // A new config: readable as an editor would create it.
        Err(_) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644))
                    .map_err(failed)?;
            }
        }
    }
    tmp.as_file().sync_all().map_err(failed)?;
    tmp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# The real setup.
[fetch]
interval = "15m" # polite

# Feeds, by outlet.
[[feed]]
url = "https://a.example/feed"
title = "A"

[[feed]]
url = "https://b.example/feed" # B's

# Tags.
[[tag]]
name = "Binance"
keywords = ["binance"]

[[output]]
name = "all"
"#;

    fn new(url: &str, tags: &[&str]) -> NewFeed {
        NewFeed {
            url: url.into(),
            title: Some("New \"one\"".into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn feeds_are_appended_after_the_last_feed_and_nothing_else_moves() {
        let path = Path::new("config.toml");
        let edited = append_feeds(
            CONFIG,
            &[
                new("https://c.example/rss", &["Exchanges"]),
                new("https://d.example/atom", &[]),
            ],
            path,
        )
        .unwrap();
        let expected = CONFIG.replace(
            "# B's\n",
            "# B's\n\n[[feed]]\nurl = \"https://c.example/rss\"\ntitle = 'New \"one\"'\ntags = [\"Exchanges\"]\n\n[[feed]]\nurl = \"https://d.example/atom\"\ntitle = 'New \"one\"'\n",
        );
        assert_eq!(edited, expected);
        let config = Config::from_toml(&edited, path).unwrap();
        assert_eq!(config.feeds.len(), 4);
        assert_eq!(config.feeds[2].tags[0].0, "Exchanges");
    }

    #[test]
    fn a_config_without_feeds_gets_them_at_the_end() {
        let path = Path::new("config.toml");
        let edited = append_feeds(
            "# nothing yet\n",
            &[new("https://c.example/rss", &[])],
            path,
        )
        .unwrap();
        assert!(edited.starts_with("# nothing yet\n"), "{edited}");
        assert_eq!(Config::from_toml(&edited, path).unwrap().feeds.len(), 1);
    }

    #[test]
    fn an_edit_that_would_make_the_config_invalid_is_refused() {
        let path = Path::new("config.toml");
        let err = append_feeds(CONFIG, &[new("ftp://c.example/rss", &[])], path).unwrap_err();
        assert!(err.to_string().contains("feed[2].url"), "{err}");
        let err = append_feeds("feed = 3\n", &[new("https://c.example/", &[])], path).unwrap_err();
        assert!(matches!(err, EditError::NotFeeds { .. }), "{err}");
    }
}
