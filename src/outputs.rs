//! Configured outputs: the stories an output selects, rendered by `publish`, written to their
//! files atomically (temp file in the same directory, fsync, rename) so a reader or web server
//! never sees half a feed.

use std::io::Write;
use std::path::{Path, PathBuf};

use url::Url;

use crate::config::{Config, MAX_OUTPUT_LIMIT, OutputConfig};
use crate::model::StoryQuery;
use crate::opml;
use crate::pipeline::Context;
use crate::publish::{self, Channel, Format};
use crate::store::{FeedStatus, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether a write replaced the file or found it already up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Replaced,
    Unchanged,
}

/// The stories an output shows on its first page: its newest `limit`, at most
/// [`MAX_OUTPUT_LIMIT`] (a file output may hold more; it is written a part at a time, and a
/// reader of the served one pages on).
pub fn query_of(output: &OutputConfig) -> StoryQuery {
    StoryQuery {
        tags: output.tags.clone(),
        exclude: output.exclude_tags.clone(),
        limit: output.limit.min(MAX_OUTPUT_LIMIT),
        ..Default::default()
    }
}

pub fn channel_of(config: &Config, output: &OutputConfig, format: Format) -> Channel {
    let base = &config.server.base_url;
    let self_url = base
        .join(&format!("feeds/{}.{}", output.name, format.extension()))
        .map(String::from)
        .unwrap_or_else(|_| base.to_string());
    let description = format!(
        "{}, merged from all sources",
        describe(&output.tags, &output.exclude_tags)
    );
    Channel {
        title: output.title.clone(),
        description,
        self_url,
        page_url: None,
        next_url: None,
        hub: config.server.websub_hub.as_ref().map(Url::to_string),
        home_url: base.to_string(),
    }
}

/// What a selection of stories holds, in words: "Every story", "Stories tagged Binance or
/// Blockchain, not Regulation".
pub fn describe(tags: &[String], exclude: &[String]) -> String {
    let mut text = if tags.is_empty() {
        "Every story".to_string()
    } else {
        format!("Stories tagged {}", or_list(tags))
    };
    if !exclude.is_empty() {
        text.push_str(", not ");
        text.push_str(&or_list(exclude));
    }
    text
}

/// "A", "A or B", "A, B or C".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Who an OPML list of the sources is for: the operator sees every feed; readers of the
/// public server never see a `file:` source (a path on this machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Operator,
    Public,
}

/// The configured sources as OPML 2.0, for another reader to import: the configured title
/// (else the feed's own), the site link the feed gave, its tags as categories.
pub fn sources_opml(config: &Config, statuses: &[FeedStatus], audience: Audience) -> String {
    let subs: Vec<opml::Subscription> = config
        .feeds
        .iter()
        .filter(|f| audience == Audience::Operator || f.url.scheme() != "file")
        .map(|f| {
            let status = statuses.iter().find(|s| s.url == f.url.as_str());
            opml::Subscription {
                title: f
                    .title
                    .clone()
                    .or_else(|| status.and_then(|s| s.title.clone()))
                    .unwrap_or_else(|| f.url.to_string()),
                xml_url: status
                    .map(|s| s.polled_url().to_string())
                    .unwrap_or_else(|| f.url.to_string()),
                html_url: status.and_then(|s| s.site_link.clone()),
                categories: f.tags.iter().map(|t| t.0.clone()).collect(),
                kind: "rss",
            }
        })
        .collect();
    opml::write("aggregate: sources", chrono::Utc::now(), &subs)
}

/// The outputs themselves as OPML 2.0 (their RSS addresses on `server.base_url`), so a reader
/// subscribes to every tag feed at once.
pub fn outputs_opml(config: &Config) -> String {
    let subs: Vec<opml::Subscription> = config
        .outputs
        .iter()
        .map(|o| {
            let channel = channel_of(config, o, Format::Rss);
            opml::Subscription {
                title: channel.title,
                xml_url: channel.self_url,
                html_url: Some(channel.home_url),
                categories: o.tags.clone(),
                kind: "rss",
            }
        })
        .collect();
    opml::write("aggregate: outputs", chrono::Utc::now(), &subs)
}

/// Renders one output in one format from the store.
pub async fn render(
    ctx: &Context,
    output: &OutputConfig,
    format: Format,
) -> Result<String, StoreError> {
    let query = query_of(output);
    let channel = channel_of(&ctx.config, output, format);
    // Rendered where it is read, on the blocking pool, as the server renders: a body of
    // hundreds of KiB would otherwise hold up an async worker.
    let stories = ctx.store.stories(query).await?;
    Ok(
        tokio::task::spawn_blocking(move || publish::render(format, &channel, &stories))
            .await
            .expect("rendering never panics on stored stories"),
    )
}

/// Renders and writes every output that has a `path`, all at once: each write ends in an
/// fsync, and one after another they held the end of a cold `--once` for 100 ms (30 ms at
/// once). Reads go to reader connections, never waiting on the writer. One output's failure
/// does not stop the others; each result is returned with the output's name, in config order.
pub async fn write_files(ctx: &Context) -> Vec<(String, Result<Written, OutputError>)> {
    let writes = ctx.config.outputs.iter().filter_map(|output| {
        let (path, format) = output.file.clone()?;
        Some(async move {
            if output.limit > MAX_OUTPUT_LIMIT {
                return (
                    output.name.clone(),
                    write_in_parts(ctx, output, (&path, format)).await,
                );
            }
            let result = match render(ctx, output, format).await {
                Ok(body) => {
                    let at = path.clone();
                    tokio::task::spawn_blocking(move || write_atomic(&at, body.as_bytes()))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                        .map_err(|source| OutputError::Write { path, source })
                }
                Err(e) => Err(e.into()),
            };
            (output.name.clone(), result)
        })
    });
    futures_util::future::join_all(writes).await
}

/// Stories read and rendered at a time when an output is written in parts.
const CHUNK: usize = 200;

/// Writes an output longer than [`MAX_OUTPUT_LIMIT`] a chunk of stories at a time, so memory
/// holds a chunk, not the output: one walk through its pages finds the newest date (the
/// document's own, which comes first), a second renders and writes. The file is replaced
/// atomically, and not at all when the bytes are the same.
async fn write_in_parts(
    ctx: &Context,
    output: &OutputConfig,
    (path, format): (&Path, Format),
) -> Result<Written, OutputError> {
    let write_error = |source| OutputError::Write {
        path: path.to_owned(),
        source,
    };
    let failed = |e| match e {
        WalkError::Store(e) => OutputError::Store(e),
        WalkError::Io(e) => write_error(e),
    };
    let channel = channel_of(&ctx.config, output, format);
    let mut updated = None;
    walk(ctx, output, |chunk, _| {
        updated = updated.max(publish::last_updated(chunk));
        Ok(())
    })
    .await
    .map_err(failed)?;
    let frame = publish::frame(format, &channel, updated);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    let mut out = std::io::BufWriter::new(tmp);
    out.write_all(frame.head.as_bytes()).map_err(write_error)?;
    walk(ctx, output, |chunk, first| {
        out.write_all(publish::items(format, &channel, chunk, first).as_bytes())
    })
    .await
    .map_err(failed)?;
    out.write_all(frame.tail.as_bytes()).map_err(write_error)?;
    let tmp = out.into_inner().map_err(|e| write_error(e.into_error()))?;
    let written = tokio::task::spawn_blocking({
        let path = path.to_owned();
        move || replace_unless_same(tmp, &path)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    .map_err(write_error)?;
    Ok(written)
}

enum WalkError {
    Store(StoreError),
    Io(std::io::Error),
}

impl From<StoreError> for WalkError {
    fn from(e: StoreError) -> WalkError {
        WalkError::Store(e)
    }
}

/// Every story of an output up to its limit, a chunk at a time, following the pages' cursor;
/// `each` is told whether a chunk is the first.
async fn walk(
    ctx: &Context,
    output: &OutputConfig,
    mut each: impl FnMut(&[crate::model::Story], bool) -> std::io::Result<()>,
) -> Result<(), WalkError> {
    let mut q = StoryQuery {
        limit: CHUNK,
        ..query_of(output)
    };
    let mut left = output.limit;
    let mut first = true;
    while left > 0 {
        q.limit = left.min(CHUNK);
        let page = ctx.store.page(q.clone()).await?;
        left -= page.stories.len();
        each(&page.stories, first).map_err(WalkError::Io)?;
        first = false;
        match page.next {
            Some(c) => q.before = Some(c),
            None => break,
        }
    }
    Ok(())
}

/// Persists `tmp` as `path` unless `path` already holds the same bytes, compared a block
/// at a time.
fn replace_unless_same(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<Written> {
    use std::io::{Read, Seek};
    let mut new = tmp.reopen()?;
    new.seek(std::io::SeekFrom::Start(0))?;
    if let Ok(mut old) = std::fs::File::open(path) {
        let same_length = old.metadata()?.len() == new.metadata()?.len();
        let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let mut same = same_length;
        while same {
            let n = old.read(&mut a)?;
            let m = new.read_exact(&mut b[..n]).map(|()| n);
            same = m.is_ok() && a[..n] == b[..n];
            if n == 0 {
                break;
            }
        }
        if same {
            return Ok(Written::Unchanged);
        }
    }
    persist(tmp, path)
}

/// Deletes the files of outputs the config no longer writes, whichever run wrote them: the
/// store remembers the files each config wrote. A feed reader subscribed to one would otherwise
/// read a feed frozen for ever. Returns the files removed.
pub async fn remove_stale_files(
    store: &Store,
    config: &Config,
) -> Result<Vec<PathBuf>, StoreError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let paths: Vec<String> = config
        .outputs
        .iter()
        .filter_map(|o| o.file.as_ref())
        .map(|(p, _)| cwd.join(p).to_string_lossy().into_owned())
        .collect();
    let mut removed = Vec::new();
    for stale in store.replace_output_files(paths).await? {
        let path = PathBuf::from(stale);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "removed the file of an output no longer configured");
                removed.push(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot remove the file of an output no longer configured")
            }
        }
    }
    Ok(removed)
}

/// Replaces `path` with `bytes` unless it already holds exactly them.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<Written> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(Written::Unchanged);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    persist(tmp, path)
}

/// A written temp file fsynced, made readable, and renamed over `path`.
fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<Written> {
    tmp.as_file().sync_all()?;
    // Readable by the web server that may serve it (NamedTempFile creates it 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(Written::Replaced)
}
