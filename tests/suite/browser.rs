//! The pages for people, in a real browser: headless Chromium loads them from a running
//! daemon, the test reads the DOM it built (after the page's script ran), and screenshots at
//! desktop and phone widths go to `target/screenshots/` for a person to look at. Chromium
//! comes from Debian (`.ci/run` installs it); without it the test is skipped, unless CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::daemon::{Daemon, wait_until};
use crate::common::*;

/// The browser to drive: AGGREGATE_TEST_CHROMIUM, else the first of Debian's names found.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("AGGREGATE_TEST_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Chromium: .ci/run installs Debian's chromium"
        );
        eprintln!("skipped: no Chromium (apt-get install chromium to run this)");
    }
    found
}

struct Browser {
    binary: PathBuf,
    /// Its own profile, so tests running at once do not share one (or its cache).
    profile: tempfile::TempDir,
}

impl Browser {
    fn run(&self, args: &[&str], url: &str) -> std::process::Output {
        let profile = format!("--user-data-dir={}", self.profile.path().display());
        let out = Command::new(&self.binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(["--no-first-run", "--disable-extensions", &profile])
            .args(args)
            .arg(url)
            .output()
            .expect("run Chromium");
        assert!(
            out.status.success(),
            "Chromium failed on {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The DOM of the page once it loaded and its script ran.
    fn dom(&self, url: &str) -> String {
        String::from_utf8(self.run(&["--dump-dom"], url).stdout).unwrap()
    }

    fn screenshot(&self, url: &str, (width, height): (u32, u32), to: &Path) {
        let size = format!("--window-size={width},{height}");
        let file = format!("--screenshot={}", to.display());
        self.run(&[&size, &file], url);
        let png = std::fs::read(to).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", to.display());
    }
}

/// Texts of the elements that match a very small selector: `tag.class` (class optional),
/// from a DOM Chromium serialised (lower-case tags, attributes quoted).
fn texts(dom: &str, tag: &str, class: Option<&str>) -> Vec<String> {
    let mut found = Vec::new();
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = dom;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        let Some(end) = after.find('>') else { break };
        let attrs = &after[..end];
        let is_tag = attrs.is_empty() || attrs.starts_with(' ');
        let has_class = class.is_none_or(|c| {
            attrs
                .split("class=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .is_some_and(|v| v.split(' ').any(|x| x == c))
        });
        let body = &after[end + 1..];
        if is_tag && has_class {
            if let Some(stop) = body.find(&close) {
                found.push(strip_tags(&body[..stop]));
            }
        }
        rest = body;
    }
    found
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&").trim().to_string()
}

#[test]
fn the_pages_render_in_a_real_browser() {
    let Some(binary) = chromium() else { return };
    let browser = Browser {
        binary,
        profile: tempfile::tempdir().unwrap(),
    };
    let server = FixtureServer::start();
    let work = Workdir::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/feeds");
    let local = format!("file://{}", fixtures.join("theblock.rdf").display());
    let feeds = [
        server.feed("cointelegraph.rss"),
        server.feed("decrypt.json"),
        server.feed("coindesk.atom"),
        server.url("/status/500"),
        local.clone(),
    ];
    let feeds: Vec<&str> = feeds.iter().map(String::as_str).collect();
    let config = config_with(&feeds, "")
        .replace("[fetch]\n", "[fetch]\ninterval = \"1h\"\n")
        .replace(
            "[storage]",
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]",
        )
        // A title in the config wins over the feed's own.
        .replace(
            &format!("url = \"{}\"\n", server.feed("decrypt.json")),
            &format!(
                "url = \"{}\"\ntitle = \"Decrypt (configured)\"\n",
                server.feed("decrypt.json")
            ),
        );
    work.write_config(&config);
    let d = Daemon::start(&work, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let stored = d.logs().lines().filter(|l| l.contains(" polled ")).count();
            stored == feeds.len() - 1 && d.get("/").text().contains("HTTP 500")
        }),
        "{}",
        d.logs()
    );
    let base = format!("http://{}", d.addr);

    // Home: every output with its item count and links, a Copy button per link (the script
    // ran), the failing source named with its error, relative times with the exact one on
    // hover.
    let home = browser.dom(&format!("{base}/"));
    let outputs = texts(&home, "tr", None);
    for title in ["Everything", "binance"] {
        assert!(
            outputs.iter().any(|r| r.starts_with(title)),
            "{title} in {outputs:?}"
        );
    }
    assert!(
        texts(&home, "button", Some("copy")).len() >= 4 * 3,
        "a Copy button beside each feed link:\n{home}"
    );
    assert!(home.contains("HTTP 500 Internal Server Error"), "{home}");
    let times = texts(&home, "time", None);
    assert!(
        times.iter().any(|t| t.ends_with(" ago") || t == "just now"),
        "relative times: {times:?}"
    );
    assert!(home.contains(" UTC\">"), "the exact time on hover:\n{home}");

    // Sources: the configured title, else the feed's own; never a bare URL as a name, never
    // the local file's path anywhere.
    let sources = browser.dom(&format!("{base}/sources"));
    let names = texts(&sources, "a", Some("source"));
    assert_eq!(names.len(), feeds.len(), "{sources}");
    assert!(
        names.contains(&"Decrypt (configured)".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"Cointelegraph.com News".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"The Block".to_string()),
        "the local feed's own title: {names:?}"
    );
    for name in &names {
        assert!(!name.contains("://"), "a URL as a source's name: {name}");
    }
    for page in [&home, &sources] {
        assert!(!page.contains("file:"), "a local path on a page:\n{page}");
        assert!(!page.contains(&*fixtures.to_string_lossy()));
    }

    // A search for a known headline finds it; its story page names every outlet.
    let found = browser.dom(&format!("{base}/stories?q=Hong%20Kong%20stablecoin"));
    let headlines = texts(&found, "a", Some("headline"));
    assert_eq!(
        headlines,
        ["Hong Kong lawmakers back stablecoin licensing bill"],
        "{found}"
    );
    let href = found
        .split("class=\"headline\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let story = browser.dom(&format!("{base}{href}"));
    assert!(
        texts(&story, "h1", None)[0].contains("Hong Kong lawmakers"),
        "{story}"
    );
    assert!(!texts(&story, "ul", Some("carried")).is_empty(), "{story}");

    // A source's page: its polls, its stories.
    let source_href = sources
        .split("href=\"/sources/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let source = browser.dom(&format!("{base}/sources/{source_href}"));
    assert!(source.contains("Recent polls"), "{source}");
    assert!(!texts(&source, "li", Some("story")).is_empty(), "{source}");

    // Tags, each with its count and feed.
    let tags = browser.dom(&format!("{base}/tags"));
    assert!(
        texts(&tags, "a", Some("tag"))
            .iter()
            .any(|t| t == "Binance"),
        "{tags}"
    );

    // Screenshots for a person to look at.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (page, name) in [
        ("/", "home"),
        ("/sources", "sources"),
        (href.as_str(), "story"),
    ] {
        for (size, width) in [((1280, 1000), "desktop"), ((390, 1200), "phone")] {
            let to = shots.join(format!("{name}-{width}.png"));
            browser.screenshot(&format!("{base}{page}"), size, &to);
        }
    }
}

#[test]
fn pages_answer_conditional_requests_and_are_gzipped() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let config = config_with(&[&server.feed("cointelegraph.rss")], "")
        .replace("[fetch]\n", "[fetch]\ninterval = \"1h\"\n")
        .replace(
            "[storage]",
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]",
        );
    work.write_config(&config);
    let d = Daemon::start(&work, &[]);
    assert!(wait_until(Duration::from_secs(20), || d
        .logs()
        .contains(" polled ")));
    // The next poll is recorded with the store's next group of writes, a moment after the
    // poll is logged: until then /sources says "never", and its two representations, fetched
    // one after the other, could differ in that cell.
    assert!(wait_until(Duration::from_secs(20), || {
        let sources = d.get("/sources").text();
        sources.contains("data-label=\"Next poll\"")
            && !sources.contains("data-label=\"Next poll\"><span class=\"muted\">never")
    }));
    for page in ["/", "/sources", "/stories", "/tags"] {
        let first = d.get(page);
        assert_eq!(first.status, 200, "{page}");
        assert_eq!(
            first.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let etag = first.header("etag").expect("an ETag").to_string();
        let again = d.get_with(page, &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304, "{page}");
        let gz = d.get_with(page, &[("Accept-Encoding", "gzip")]);
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{page}");
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&gz.body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, first.text(), "{page}: the same page, gzipped");
        let gz_tag = gz.header("etag").unwrap().to_string();
        assert_ne!(gz_tag, etag, "another representation, another tag");
        let held = d.get_with(
            page,
            &[("If-None-Match", &gz_tag), ("Accept-Encoding", "gzip")],
        );
        assert_eq!(held.status, 304, "{page}");
    }
    for (page, status) in [
        ("/stories/999999", 404),
        ("/stories/x", 404),
        ("/sources/nope", 404),
        ("/stories?before=soon", 400),
        ("/stories?page=2", 400),
    ] {
        assert_eq!(d.get(page).status, status, "{page}");
    }
}
