//! OPML, the subscription-list format every feed reader imports and exports: reading the feeds
//! an OPML file lists (with the folders they sit in), and writing one. Knows nothing of the
//! config or the store; `cli` and `serve` turn its outlines into `[[feed]]`s and back.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One feed an OPML document lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    /// `xmlUrl`, as written (trimmed).
    pub xml_url: String,
    /// `title`, else `text`.
    pub title: Option<String>,
    /// `htmlUrl`: the site the feed belongs to.
    pub html_url: Option<String>,
    /// The folders it is in (outermost first), then its `category` attribute's names.
    pub categories: Vec<String>,
    /// The line of the document it is on, for messages.
    pub line: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpmlError {
    #[error("line {line}: not well-formed XML: {message}")]
    Malformed { line: usize, message: String },
    #[error("not an OPML document: its root element is <{0}>, not <opml>")]
    NotOpml(String),
    #[error("not an OPML document: it has no <opml> element")]
    Empty,
}

/// The feeds `text` lists, in document order. Outlines without `xmlUrl` are folders: their
/// `text` (or `title`) becomes a category of every feed inside them.
pub fn parse(text: &str) -> Result<Vec<Outline>, OpmlError> {
    let mut reader = Reader::from_str(text);
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut feeds = Vec::new();
    let mut root_seen = false;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| OpmlError::Malformed {
            line: line_at(text, reader.error_position() as usize),
            message: e.to_string(),
        })?;
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if !root_seen => {
                let name = e.local_name().as_ref().to_string();
                if !name.eq_ignore_ascii_case("opml") {
                    return Err(OpmlError::NotOpml(name));
                }
                root_seen = true;
            }
            Event::Start(e) if is_outline(&e) => {
                let at = line_at(text, before);
                match outline(&e, &folders, at) {
                    Some(feed) => {
                        feeds.push(feed);
                        // A feed's children (rare) are not folders of anything.
                        folders.push(None);
                    }
                    None => folders.push(folder_name(&e)),
                }
            }
            Event::Empty(e) if is_outline(&e) => {
                if let Some(feed) = outline(&e, &folders, line_at(text, before)) {
                    feeds.push(feed);
                }
            }
            Event::End(e) if e.local_name().as_ref().eq_ignore_ascii_case("outline") => {
                folders.pop();
            }
            _ => {}
        }
    }
    if !root_seen {
        return Err(OpmlError::Empty);
    }
    Ok(feeds)
}

/// The 1-based line holding byte `at` of `text`.
fn line_at(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..at]).count()
}

fn is_outline(e: &BytesStart<'_>) -> bool {
    e.local_name().as_ref().eq_ignore_ascii_case("outline")
}

/// An attribute's value, references resolved, trimmed; `None` when absent or blank. Readers
/// write `xmlUrl`, `xmlurl` and `XMLURL`: names match in any case.
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let a = e
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.as_ref().eq_ignore_ascii_case(name))?;
    let raw = a.value.into_owned();
    let value = match quick_xml::escape::unescape(&raw) {
        Ok(v) => v.into_owned(),
        Err(_) => raw,
    };
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

fn folder_name(e: &BytesStart<'_>) -> Option<String> {
    attr(e, "text").or_else(|| attr(e, "title"))
}

fn outline(e: &BytesStart<'_>, folders: &[Option<String>], line: usize) -> Option<Outline> {
    let xml_url = attr(e, "xmlUrl")?;
    let mut categories: Vec<String> = folders.iter().flatten().cloned().collect();
    // OPML 2.0: "comma-separated slash-delimited category strings", such as "/Crypto/Exchanges".
    for path in attr(e, "category").iter().flat_map(|c| c.split(',')) {
        for name in path.split('/').map(str::trim).filter(|n| !n.is_empty()) {
            if !categories.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                categories.push(name.to_string());
            }
        }
    }
    Some(Outline {
        xml_url,
        title: attr(e, "title").or_else(|| attr(e, "text")),
        html_url: attr(e, "htmlUrl"),
        categories,
        line,
    })
}

/// One feed to write into an OPML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub title: String,
    pub xml_url: String,
    pub html_url: Option<String>,
    /// Written as the `category` attribute.
    pub categories: Vec<String>,
    /// `rss` for feeds; readers ignore the value but many expect the attribute.
    pub kind: &'static str,
}

/// An OPML 2.0 document listing `feeds` under `title`.
pub fn write(
    title: &str,
    created: chrono::DateTime<chrono::Utc>,
    feeds: &[Subscription],
) -> String {
    use std::fmt::Write as _;
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n");
    let _ = writeln!(
        out,
        "  <head>\n    <title>{}</title>\n    <dateCreated>{}</dateCreated>\n  </head>\n  <body>",
        esc(title),
        created.to_rfc2822()
    );
    for f in feeds {
        let _ = write!(
            out,
            "    <outline type=\"{}\" text=\"{title}\" title=\"{title}\" xmlUrl=\"{}\"",
            f.kind,
            esc(&f.xml_url),
            title = esc(&f.title),
        );
        if let Some(html) = &f.html_url {
            let _ = write!(out, " htmlUrl=\"{}\"", esc(html));
        }
        if !f.categories.is_empty() {
            // A comma inside a name would split it when read back.
            let names: Vec<String> = f.categories.iter().map(|c| c.replace(',', " ")).collect();
            let _ = write!(out, " category=\"{}\"", esc(&names.join(",")));
        }
        out.push_str("/>\n");
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER_EXPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My feeds</title></head>
  <body>
    <outline text="Crypto" title="Crypto">
      <outline text="Exchanges">
        <outline type="rss" text="Binance blog" xmlUrl="https://www.binance.com/en/feed/rss" htmlUrl="https://www.binance.com"/>
      </outline>
      <outline type="rss" title="CoinDesk &amp; more" text="ignored" xmlurl=" https://www.coindesk.com/arc/outboundfeeds/rss/ " category="/News/Markets,Regulation"/>
    </outline>
    <outline text="Empty folder"></outline>
    <outline type="rss" text="Top level" xmlUrl="https://example.com/feed"></outline>
  </body>
</opml>
"#;

    #[test]
    fn feeds_carry_their_folders_and_categories() {
        let feeds = parse(READER_EXPORT).unwrap();
        assert_eq!(feeds.len(), 3);
        assert_eq!(feeds[0].xml_url, "https://www.binance.com/en/feed/rss");
        assert_eq!(feeds[0].title.as_deref(), Some("Binance blog"));
        assert_eq!(
            feeds[0].html_url.as_deref(),
            Some("https://www.binance.com")
        );
        assert_eq!(feeds[0].categories, ["Crypto", "Exchanges"]);
        assert_eq!(feeds[0].line, 7);
        // Attribute names in any case, values trimmed and unescaped, title before text.
        assert_eq!(
            feeds[1].xml_url,
            "https://www.coindesk.com/arc/outboundfeeds/rss/"
        );
        assert_eq!(feeds[1].title.as_deref(), Some("CoinDesk & more"));
        assert_eq!(
            feeds[1].categories,
            ["Crypto", "News", "Markets", "Regulation"]
        );
        // Out of every folder again.
        assert!(feeds[2].categories.is_empty());
    }

    #[test]
    fn malformed_documents_name_the_line() {
        let broken = "<opml version=\"2.0\">\n<body>\n<outline text=\"a\" xmlUrl=\"https://a/\">\n</body>\n</opml>";
        match parse(broken) {
            Err(OpmlError::Malformed { line, message }) => {
                assert_eq!(line, 4, "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse("<rss version=\"2.0\"><channel/></rss>"),
            Err(OpmlError::NotOpml("rss".into()))
        );
        assert_eq!(parse("just words"), Err(OpmlError::Empty));
    }

    #[test]
    fn what_is_written_reads_back() {
        let subs = vec![
            Subscription {
                title: "A <b>&</b> \"quoted\"".into(),
                xml_url: "https://a.example/feed?x=1&y=2".into(),
                html_url: Some("https://a.example/".into()),
                categories: vec!["Binance".into(), "Reg, ulation".into()],
                kind: "rss",
            },
            Subscription {
                title: "B".into(),
                xml_url: "https://b.example/atom.xml".into(),
                html_url: None,
                categories: vec![],
                kind: "rss",
            },
        ];
        let text = write("feeds", chrono::Utc::now(), &subs);
        let back = parse(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].title.as_deref(), Some("A <b>&</b> \"quoted\""));
        assert_eq!(back[0].xml_url, "https://a.example/feed?x=1&y=2");
        assert_eq!(back[0].html_url.as_deref(), Some("https://a.example/"));
        assert_eq!(back[0].categories, ["Binance", "Reg  ulation"]);
        assert_eq!(back[1].html_url, None);
    }
}
