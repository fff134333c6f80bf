//! Dialects feed-rs does not know, turned into ones it does, before it parses.
//!
//! Each is a real format still on the web that feed-rs reads as an empty feed or refuses:
//! Atom 0.3 (`xmlns="http://purl.org/atom/ns#"`: issued/modified, `mode="escaped|base64|xml"`,
//! MIME types as text types), RSS 0.90 (`xmlns="http://my.netscape.com/rdf/simple/0.9/"`),
//! RSS 2.0 with a default namespace on `<rss>` or a prefix of its own, `<rss>` with no or an
//! unknown `version` or with items outside a `<channel>`, RSS 1.0 items with no `<link>`
//! (feed-rs drops them), and Microsoft's CDF.
//! The same text-construct rewrite also mends Atom 1.0 documents that feed-rs refused for a text
//! typed with a MIME type (`type="text/plain"`, `application/xhtml+xml`), an empty `type`, an
//! empty text element, or base64 content (`recover` calls it after a failure).
//!
//! The rewrite is a splice: the input is copied byte for byte except the spans it changes, so
//! nothing it does not understand is lost. It only looks at the document's structure through
//! quick-xml, never with regular expressions.

use std::borrow::Cow;

use base64::Engine;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::extensions::raw_attr;

pub const ATOM03_NS: &str = "http://purl.org/atom/ns#";
pub const ATOM10_NS: &str = "http://www.w3.org/2005/Atom";
const RSS090_NS: &str = "http://my.netscape.com/rdf/simple/0.9/";
const RSS10_NS: &str = "http://purl.org/rss/1.0/";

/// A document translated into a dialect feed-rs reads, and what was done, for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub text: String,
    pub note: &'static str,
}

/// The root element's start tag: where it is in `text`, its name and its raw attributes.
struct Root<'a> {
    span: std::ops::Range<usize>,
    name: &'a str,
    tag: &'a str,
}

/// The first element of the document, skipping the prolog (declaration, comments, doctype, PIs).
fn root(text: &str) -> Option<Root<'_>> {
    let bytes = text.as_bytes();
    let mut at = 0;
    // The prolog of real feeds is short; a root later than this is not a feed's.
    let limit = text.len().min(64 * 1024);
    while at < limit {
        let lt = at + memchr::memchr(b'<', &bytes[at..limit])?;
        let rest = &text[lt..];
        if rest.starts_with("<?") {
            at = lt + rest.find("?>")? + 2;
        } else if rest.starts_with("<!--") {
            at = lt + rest.find("-->")? + 3;
        } else if rest.starts_with("<!") {
            at = lt + rest.find('>')? + 1;
        } else {
            let end = lt + rest.find('>')? + 1;
            let tag = &text[lt + 1..end - 1];
            let name_end = tag
                .find(|c: char| c.is_whitespace() || c == '/')
                .unwrap_or(tag.len());
            return Some(Root {
                span: lt..end,
                name: &tag[..name_end],
                tag,
            });
        }
    }
    None
}

/// The value of attribute `name` in a raw start tag (`rss version="2.0" xmlns="..."`), raw.
fn attr(tag: &str, name: &str) -> Option<String> {
    let start = BytesStart::from_content(tag, tag.find(char::is_whitespace).unwrap_or(tag.len()));
    raw_attr(&start, name)
}

/// The root element's `xml:base`, which every relative reference in the document resolves
/// against (feed-rs reads `xml:base` on entries only).
pub fn root_base(text: &str) -> Option<String> {
    attr(root(text)?.tag, "xml:base").filter(|b| !b.trim().is_empty())
}

/// Translates a document in a dialect feed-rs misreads; `None` when it is not one.
pub fn translate(text: &str) -> Option<Translated> {
    let root = root(text)?;
    let note = |note: &'static str| move |text: String| Translated { text, note };
    match root.name.rsplit(':').next().unwrap_or(root.name) {
        "feed" => atom_03(text, &root).map(note("read as Atom 0.3")),
        "rss" if root.name.contains(':') => Some(prefixed_rss(text, &root)),
        "rss" => rss(text, &root),
        "RDF" => rdf(text),
        "CHANNEL" => cdf_to_rss(text).map(note("read as CDF (Channel Definition Format)")),
        _ => None,
    }
}

/// An Atom 0.3 document (by its namespace or its version) as Atom 1.0.
fn atom_03(text: &str, root: &Root<'_>) -> Option<String> {
    let ns_03 = root.tag.contains(ATOM03_NS);
    let version_03 = attr(root.tag, "version").is_some_and(|v| v.starts_with("0."));
    (ns_03 || version_03)
        .then(|| rewrite_atom(text, true))
        .flatten()
}

/// `<r:rss xmlns:r="http://backend.userland.com/rss2">`: RSS in a namespace of its own, with
/// the prefix dropped (and whatever else plain RSS needs).
fn prefixed_rss(text: &str, root: &Root<'_>) -> Translated {
    let prefix = &root.name[..root.name.len() - "rss".len()];
    let text = text
        .replace(&format!("<{prefix}"), "<")
        .replace(&format!("</{prefix}"), "</");
    translate(&text).unwrap_or(Translated {
        text,
        note: "read RSS in a namespace of its own as plain RSS",
    })
}

/// RSS that feed-rs reads as empty or refuses: a default namespace on `<rss>`, no or an
/// unknown `version`, items outside the `<channel>`. `None` for RSS it reads as it is.
fn rss(text: &str, root: &Root<'_>) -> Option<Translated> {
    let version = attr(root.tag, "version");
    let default_ns = attr(root.tag, "xmlns");
    let known = matches!(version.as_deref(), Some("2.0" | "0.91" | "0.92"));
    if known && default_ns.is_none() && text.contains("<channel") && !has_items_after_channel(text)
    {
        return None;
    }
    let mut tag = root.tag.to_string();
    if let Some(ns) = &default_ns {
        tag = tag.replacen(&format!("xmlns=\"{ns}\""), "", 1);
        tag = tag.replacen(&format!("xmlns='{ns}'"), "", 1);
    }
    let mut note = match version {
        Some(_) if known && default_ns.is_some() => {
            "read RSS with a default namespace as plain RSS"
        }
        Some(_) if known => "read RSS items outside a channel",
        Some(v) => {
            tag = tag.replacen(&format!("version=\"{v}\""), "version=\"2.0\"", 1);
            tag = tag.replacen(&format!("version='{v}'"), "version=\"2.0\"", 1);
            "read an RSS of an unknown version as RSS 2.0"
        }
        None => {
            tag = tag.replacen(root.name, &format!("{} version=\"2.0\"", root.name), 1);
            "read an RSS with no version as RSS 2.0"
        }
    };
    let rest = &text[root.span.end..];
    let body = match items_after_channel(rest) {
        Some(moved) => {
            note = "read RSS items that follow the channel's end";
            moved
        }
        None => items_in_a_channel(rest),
    };
    let text = format!("{}<{tag}>{body}", &text[..root.span.start]);
    Some(Translated { text, note })
}

/// Items straight under `<rss>`, as early RSS 0.9x writers put them, inside a `<channel>`.
fn items_in_a_channel(rest: &str) -> String {
    match rest.rfind("</rss>").filter(|_| !rest.contains("<channel")) {
        Some(end) => format!("<channel>{}</channel>{}", &rest[..end], &rest[end..]),
        None => rest.to_string(),
    }
}

/// RSS 0.90 as RSS 1.0 (the namespace is the difference feed-rs sees), and RSS 1.0 items with
/// no link given one. `None` when neither applies.
fn rdf(text: &str) -> Option<Translated> {
    let (text, note) = if text.contains(RSS090_NS) {
        (
            Cow::Owned(text.replace(RSS090_NS, RSS10_NS)),
            Some("read as RSS 0.90"),
        )
    } else {
        (Cow::Borrowed(text), None)
    };
    match (rdf_item_links(&text), note) {
        (Some(linked), note) => Some(Translated {
            text: linked,
            note: note.unwrap_or("read RSS 1.0 items that have no link"),
        }),
        (None, Some(note)) => Some(Translated {
            text: text.into_owned(),
            note,
        }),
        (None, None) => None,
    }
}

/// A JSON Feed whose `version` feed-rs refuses: `http://jsonfeed.org/version/1` (the
/// specification's own examples once used http), or none at all. `None` when neither.
pub fn json_feed_version(text: &str) -> Option<String> {
    const HTTP: &str = "\"http://jsonfeed.org/version/";
    if let Some(at) = text.find(HTTP) {
        let mut out = String::with_capacity(text.len() + 1);
        out.push_str(&text[..at + 5]);
        out.push('s');
        out.push_str(&text[at + 5..]);
        return Some(out);
    }
    if text.contains("\"version\"") {
        return None;
    }
    let open = text.find('{')?;
    Some(format!(
        "{}{{\"version\":\"https://jsonfeed.org/version/1.1\",{}",
        &text[..open],
        &text[open + 1..]
    ))
}

/// RSS 1.0 items with no `<link>` get one, so feed-rs (which drops linkless RSS 1.0 items)
/// reads them: the item's `rdf:about`, which the RSS 1.0 specification makes the item's URI
/// and the same as its link, or a placeholder `parse` discards (not an http URL).
fn rdf_item_links(text: &str) -> Option<String> {
    // A document with a link for its channel and one for each item needs no pass (the count
    // can only be fooled into a pass, or into skipping one that the item count then reports).
    let count = |needle: &str| memchr::memmem::find_iter(text.as_bytes(), needle).count();
    if count("<link>") > count("<item>") + count("<item ") {
        return None;
    }
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = false;
    let mut depth = 0usize;
    // (where the item's content starts, its rdf:about, whether it has a link)
    let mut item: Option<(usize, Option<String>, bool)> = None;
    let mut inserts: Vec<(usize, String)> = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Start(e) => {
                let local = e.local_name().as_ref().to_string();
                if depth == 1 && local == "item" {
                    let about = raw_attr(&e, "rdf:about");
                    item = Some((reader.buffer_position() as usize, about, false));
                } else if depth == 2
                    && local == "link"
                    && let Some(open) = item.as_mut()
                {
                    open.2 = true;
                }
                depth += 1;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some((at, about, has_link)) = item.take()
                    && !has_link
                {
                    let href = about.unwrap_or_else(|| "aggregate:no-link".into());
                    inserts.push((at, format!("<link>{href}</link>")));
                }
            }
            _ => {}
        }
    }
    if inserts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + inserts.len() * 64);
    let mut copied = 0;
    for (at, link) in inserts {
        out.push_str(&text[copied..at]);
        out.push_str(&link);
        copied = at;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// Microsoft's Channel Definition Format (1997), still read by feedparser: `<CHANNEL>` of
/// `<ITEM HREF LASTMOD>` with `<TITLE>` and `<ABSTRACT>`, written out as RSS 2.0.
fn cdf_to_rss(text: &str) -> Option<String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = false;
    let mut out = String::from("<rss version=\"2.0\"><channel>");
    let mut in_item = false;
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name().as_ref().to_ascii_uppercase();
                let attr = |name: &str| {
                    e.attributes()
                        .with_checks(false)
                        .flatten()
                        .find(|a| a.key.as_ref().eq_ignore_ascii_case(name))
                        .map(|a| a.value.to_string())
                };
                match local.as_str() {
                    "ITEM" => {
                        if in_item {
                            out.push_str("</item>");
                        }
                        in_item = true;
                        out.push_str("<item>");
                        if let Some(href) = attr("HREF") {
                            out.push_str(&format!("<link>{href}</link>"));
                        }
                        if let Some(date) = attr("LASTMOD") {
                            out.push_str(&format!(
                                "<dcterms:modified xmlns:dcterms=\"{}\">{date}</dcterms:modified>",
                                "http://purl.org/dc/terms/"
                            ));
                        }
                    }
                    "TITLE" | "ABSTRACT" => {
                        let tag = if local == "TITLE" {
                            "title"
                        } else {
                            "description"
                        };
                        let span = reader.read_to_end(e.name()).ok()?;
                        let inner = &text[span.start as usize..span.end as usize];
                        out.push_str(&format!("<{tag}>{inner}</{tag}>"));
                    }
                    _ => {}
                }
            }
            Event::End(e) if in_item && e.local_name().as_ref().eq_ignore_ascii_case("ITEM") => {
                out.push_str("</item>");
                in_item = false;
            }
            _ => {}
        }
    }
    if in_item {
        out.push_str("</item>");
    }
    out.push_str("</channel></rss>");
    Some(out)
}

/// Does an `<item>` follow the channel's end tag (items written after `</channel>`)?
fn has_items_after_channel(text: &str) -> bool {
    text.rfind("</channel>")
        .is_some_and(|end| text[end..].contains("<item"))
}

/// The document after the root's start tag with `</channel>` moved to after the last item, so
/// items written after the channel closed are the channel's; `None` when there are none.
fn items_after_channel(rest: &str) -> Option<String> {
    let end = rest.rfind("</channel>")?;
    let after = &rest[end + "</channel>".len()..];
    if !after.contains("<item") {
        return None;
    }
    let close = after.rfind("</rss>").unwrap_or(after.len());
    Some(format!(
        "{}{}</channel>{}",
        &rest[..end],
        &after[..close],
        &after[close..]
    ))
}

/// Atom's text constructs, where type (and in 0.3, mode) decide how the content is encoded.
const TEXT_CONSTRUCTS: &[&str] = &[
    "title",
    "subtitle",
    "tagline",
    "summary",
    "content",
    "rights",
    "copyright",
];

/// Element renames from Atom 0.3 to 1.0.
fn rename_03(local: &str) -> Option<&'static str> {
    Some(match local {
        "tagline" => "subtitle",
        "copyright" => "rights",
        "issued" => "published",
        "modified" => "updated",
        "url" => "uri",
        _ => return None,
    })
}

/// Rewrites an Atom document's text constructs into the three types Atom 1.0 and feed-rs know,
/// and, for 0.3, its namespace and element names. `None` when the document cannot be read.
pub fn rewrite_atom(text: &str, from_03: bool) -> Option<String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = false;
    let mut w = AtomRewrite {
        text,
        from_03,
        out: String::with_capacity(text.len() + 256),
        copied: 0,
        prefix: None,
        stack: Vec::new(),
        entry_has_issued: false,
    };
    loop {
        let before = reader.buffer_position() as usize;
        // A document broken further on keeps what was rewritten up to the break; the rest is
        // copied as it is, for recovery to mend after the strict parse names the problem.
        let Ok(event) = reader.read_event() else {
            break;
        };
        let at = before..reader.buffer_position() as usize;
        let done = match event {
            Event::Eof => break,
            Event::Start(ref e) => w.start(&mut reader, e, at, false),
            Event::Empty(ref e) => w.start(&mut reader, e, at, true),
            Event::End(ref e) => {
                w.end(e.name().as_ref(), at);
                Some(())
            }
            _ => Some(()),
        };
        if done.is_none() {
            break;
        }
    }
    w.out.push_str(&text[w.copied..]);
    Some(w.out)
}

/// The state of one Atom rewrite: the output so far, spliced from the input.
struct AtomRewrite<'a> {
    text: &'a str,
    from_03: bool,
    out: String,
    /// Input up to here is in `out` (copied or replaced).
    copied: usize,
    /// The prefix Atom elements carry: that of the root ("" for none).
    prefix: Option<String>,
    /// The elements open, each with the name it was renamed to, if it was.
    stack: Vec<Option<&'static str>>,
    /// Atom 0.3 `created` is the publication date only when the entry has no `issued`.
    entry_has_issued: bool,
}

impl AtomRewrite<'_> {
    /// The input's `at` replaced by `with`.
    fn splice(&mut self, at: std::ops::Range<usize>, with: &str) {
        self.out.push_str(&self.text[self.copied..at.start]);
        self.out.push_str(with);
        self.copied = at.end;
    }

    /// `local` with the Atom prefix in force.
    fn qname(&self, local: &str) -> String {
        match self.prefix.as_deref() {
            Some(p) if !p.is_empty() => format!("{p}:{local}"),
            _ => local.to_string(),
        }
    }

    /// A start (or empty) tag; `None` when the document breaks inside a text construct.
    fn start(
        &mut self,
        reader: &mut Reader<&[u8]>,
        e: &BytesStart<'_>,
        at: std::ops::Range<usize>,
        empty: bool,
    ) -> Option<()> {
        let name = e.name().as_ref().to_string();
        let (pfx, local) = name.split_once(':').unwrap_or(("", &name));
        if self.prefix.is_none() && self.stack.is_empty() {
            self.prefix = Some(pfx.to_string());
        }
        let is_atom = self.prefix.as_deref() == Some(pfx);
        if is_atom && local == "entry" {
            let rest = &self.text[at.end..];
            let end = rest.find("entry>").unwrap_or(rest.len());
            self.entry_has_issued = rest[..end].contains("issued>");
        }
        if is_atom && let Some(target) = self.text_construct_name(local) {
            let (inner, end) = if empty {
                ("", at.end)
            } else {
                let span = reader.read_to_end(e.name()).ok()?;
                let inner = &self.text[span.start as usize..span.end as usize];
                (inner, reader.buffer_position() as usize)
            };
            let qname = self.qname(target);
            let rewritten = text_construct(e, &qname, inner, self.from_03).unwrap_or_default();
            self.splice(at.start..end, &rewritten);
            return Some(());
        }
        let rename = (self.from_03 && is_atom)
            .then(|| match local {
                "created" if self.entry_has_issued => Some("aggregate-created"),
                "created" => Some("published"),
                "info" => Some("aggregate-info"),
                other => rename_03(other),
            })
            .flatten();
        let attrs = self
            .from_03
            .then(|| rewrite_ns_attrs(e, self.stack.is_empty()))
            .flatten();
        if rename.is_some() || attrs.is_some() {
            let qname = rename.map_or_else(|| name.clone(), |r| self.qname(r));
            let attrs = attrs.unwrap_or_else(|| raw_attrs(e).to_string());
            let close = if empty { "/>" } else { ">" };
            self.splice(at, &format!("<{qname}{attrs}{close}"));
        }
        if !empty {
            self.stack.push(rename);
        }
        Some(())
    }

    /// What an Atom text construct is called after the rewrite; `None` for other elements (and
    /// for 0.3's names in a 1.0 document, which are not text constructs there).
    fn text_construct_name(&self, local: &str) -> Option<&'static str> {
        if !TEXT_CONSTRUCTS.contains(&local) {
            return None;
        }
        match (local, self.from_03) {
            ("tagline" | "copyright", true) => rename_03(local),
            ("tagline" | "copyright", false) => None,
            ("title", _) => Some("title"),
            ("subtitle", _) => Some("subtitle"),
            ("summary", _) => Some("summary"),
            ("content", _) => Some("content"),
            _ => Some("rights"),
        }
    }

    /// An end tag: renamed as its start was.
    fn end(&mut self, name: &str, at: std::ops::Range<usize>) {
        if let Some(Some(renamed)) = self.stack.pop() {
            let qname = match name.split_once(':') {
                Some((p, _)) => format!("{p}:{renamed}"),
                None => renamed.to_string(),
            };
            self.splice(at, &format!("</{qname}>"));
        }
    }
}

/// The raw attributes of a start tag, with their leading space.
fn raw_attrs<'a>(e: &'a BytesStart<'_>) -> &'a str {
    e.attributes_raw().trim_end_matches('/').trim_end()
}

/// The root's attributes with the Atom 0.3 namespace swapped for 1.0's and `version` dropped;
/// `None` when nothing changes.
fn rewrite_ns_attrs(e: &BytesStart<'_>, is_root: bool) -> Option<String> {
    let raw = raw_attrs(e);
    if !(raw.contains(ATOM03_NS) || is_root && raw.contains("version")) {
        return None;
    }
    let mut out = String::new();
    for a in e.attributes().with_checks(false).flatten() {
        let key = a.key.as_ref();
        if is_root && key == "version" {
            continue;
        }
        let value: Cow<str> = if a.value == ATOM03_NS {
            Cow::Borrowed(ATOM10_NS)
        } else {
            a.value.clone()
        };
        out.push_str(&format!(" {key}=\"{}\"", value.replace('"', "&quot;")));
    }
    Some(out)
}

/// One text construct rewritten as Atom 1.0 with type text, html or xhtml; `None` to drop it
/// (an empty one, which feed-rs refuses and which says nothing).
fn text_construct(e: &BytesStart<'_>, qname: &str, inner: &str, from_03: bool) -> Option<String> {
    let mut ty: Option<String> = None;
    let mut mode: Option<String> = None;
    let mut has_src = false;
    let mut others = String::new();
    for a in e.attributes().with_checks(false).flatten() {
        let key = a.key.as_ref();
        match key {
            "type" => ty = Some(a.value.trim().to_ascii_lowercase()),
            "mode" if from_03 => mode = Some(a.value.trim().to_ascii_lowercase()),
            _ => {
                has_src |= key == "src";
                others.push_str(&format!(" {key}=\"{}\"", a.value));
            }
        }
    }
    if has_src {
        // Out-of-line content: its type is a MIME type by definition; keep it as it was.
        let t = ty.map(|t| format!(" type=\"{t}\"")).unwrap_or_default();
        return Some(format!("<{qname}{others}{t}/>"));
    }
    if inner.trim().is_empty() {
        return None;
    }
    let ty = ty.unwrap_or_else(|| if from_03 { "text/plain" } else { "text" }.into());
    let (ty, body) = match encoding(&ty, mode.as_deref(), from_03, inner.contains('<')) {
        Encoded::Base64 { plain } => (
            if plain { "text" } else { "html" },
            quick_xml::escape::escape(decode_base64(inner)?.as_str()).into_owned(),
        ),
        Encoded::Xhtml => ("xhtml", wrap_div(inner)),
        Encoded::As(ty) => (ty, inner.to_string()),
    };
    Some(format!("<{qname}{others} type=\"{ty}\">{body}</{qname}>"))
}

/// How a text construct's content is to be written in Atom 1.0.
#[derive(Debug, PartialEq, Eq)]
enum Encoded {
    /// Decode it: base64 of text (`plain`) or of HTML.
    Base64 { plain: bool },
    /// Inline markup, inside an XHTML div.
    Xhtml,
    /// As it is, with this Atom 1.0 type.
    As(&'static str),
}

/// The Atom 1.0 encoding of a text construct typed `ty` (0.3: with `mode`) whose content has
/// markup or not. Atom 0.3's inline XML (its default mode) is markup whatever its type says,
/// so it is kept as XHTML: what a reader sees is its text either way.
fn encoding(ty: &str, mode: Option<&str>, from_03: bool, has_markup: bool) -> Encoded {
    let plain = matches!(ty, "text" | "text/plain" | "");
    let html = matches!(ty, "html" | "text/html");
    let xhtml = matches!(ty, "xhtml" | "application/xhtml+xml");
    let xmlish = !plain && !html && !xhtml && (ty.ends_with("+xml") || ty.ends_with("/xml"));
    let textish = ty.starts_with("text/");
    let base64 = match mode {
        Some(m) => m == "base64",
        None => !from_03 && !plain && !html && !xhtml && !xmlish && !textish,
    };
    let escaped = mode == Some("escaped");
    let inline_03 = from_03 && has_markup && !escaped;
    if base64 {
        Encoded::Base64 { plain }
    } else if plain || (textish && !html) {
        if inline_03 {
            Encoded::Xhtml
        } else {
            Encoded::As("text")
        }
    } else if html || escaped {
        if inline_03 {
            Encoded::Xhtml
        } else {
            Encoded::As("html")
        }
    } else if (xhtml || xmlish) && has_markup {
        Encoded::Xhtml
    } else if xhtml || xmlish {
        Encoded::As("html")
    } else {
        Encoded::As("text")
    }
}

/// Inline XHTML as Atom 1.0 wants it: inside one XHTML `div`.
fn wrap_div(inner: &str) -> String {
    let t = inner.trim_start();
    if t.starts_with("<div") && inner.trim_end().ends_with("</div>") && t.contains("xhtml") {
        inner.to_string()
    } else {
        format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>")
    }
}

/// Base64 text (white space allowed, padding optional) as UTF-8; `None` when it is not.
pub fn decode_base64(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(compact.as_bytes()).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atom_03_becomes_atom_10() {
        let doc = r#"<?xml version="1.0"?><feed version="0.3" xmlns="http://purl.org/atom/ns#">
<entry><title type="text/html" mode="escaped">&lt;b&gt;A&lt;/b&gt;</title>
<issued>2004-01-01T00:00:00Z</issued><modified>2004-01-02T00:00:00Z</modified>
<content type="text/plain" mode="base64">SGVsbG8gPHRhZz4=</content></entry></feed>"#;
        let t = translate(doc).expect("Atom 0.3 is translated");
        assert!(t.text.contains(ATOM10_NS), "{}", t.text);
        assert!(!t.text.contains("version=\"0.3\""), "{}", t.text);
        assert!(
            t.text
                .contains(r#"<title type="html">&lt;b&gt;A&lt;/b&gt;</title>"#),
            "{}",
            t.text
        );
        assert!(
            t.text
                .contains("<published>2004-01-01T00:00:00Z</published>"),
            "{}",
            t.text
        );
        assert!(
            t.text.contains("<updated>2004-01-02T00:00:00Z</updated>"),
            "{}",
            t.text
        );
        assert!(
            t.text
                .contains(r#"<content type="text">Hello &lt;tag&gt;</content>"#),
            "{}",
            t.text
        );
    }

    #[test]
    fn rss_without_version_or_with_default_namespace() {
        let t =
            translate(r#"<rss><channel><item><title>x</title></item></channel></rss>"#).unwrap();
        assert!(t.text.starts_with(r#"<rss version="2.0">"#), "{}", t.text);
        let t = translate(
            r#"<rss version="2.0" xmlns="http://backend.userland.com/rss2"><channel/></rss>"#,
        )
        .unwrap();
        assert!(!t.text.contains("xmlns="), "{}", t.text);
        assert!(translate(r#"<rss version="2.0"><channel/></rss>"#).is_none());
    }

    #[test]
    fn rss_with_a_prefix_of_its_own() {
        let doc = r#"<r:rss version="2.0" xmlns:r="http://backend.userland.com/rss2"><r:channel><r:item><r:title>x</r:title></r:item></r:channel></r:rss>"#;
        let t = translate(doc).unwrap();
        assert!(
            t.text.contains("<item><title>x</title></item>"),
            "{}",
            t.text
        );
    }

    #[test]
    fn rdf_items_without_links_and_cdf() {
        let doc = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><item rdf:about="http://e.com/1"><title>t</title></item><item><link>http://e.com/2</link></item></rdf:RDF>"#;
        let t = translate(doc).unwrap();
        assert!(
            t.text
                .contains(r#"<item rdf:about="http://e.com/1"><link>http://e.com/1</link><title>"#),
            "{}",
            t.text
        );
        assert_eq!(t.text.matches("<link>").count(), 2, "{}", t.text);
        let cdf = r#"<CHANNEL><ITEM HREF="http://e.org/" LASTMOD="2004-04-06T23:05:43-05:00"><TITLE>Item</TITLE><ABSTRACT>Text</ABSTRACT></ITEM></CHANNEL>"#;
        let t = translate(cdf).unwrap();
        assert!(
            t.text.contains("<item><link>http://e.org/</link>"),
            "{}",
            t.text
        );
        assert!(
            t.text
                .contains("<title>Item</title><description>Text</description></item>"),
            "{}",
            t.text
        );
    }

    #[test]
    fn json_feed_versions_feed_rs_refuses() {
        let fixed =
            json_feed_version(r#"{"version": "http://jsonfeed.org/version/1", "items": []}"#);
        assert_eq!(
            fixed.as_deref(),
            Some(r#"{"version": "https://jsonfeed.org/version/1", "items": []}"#)
        );
        let fixed = json_feed_version(r#"{"title": "t", "items": []}"#).unwrap();
        assert!(
            fixed.starts_with(r#"{"version":"https://jsonfeed.org/version/1.1","title""#),
            "{fixed}"
        );
        assert_eq!(
            json_feed_version(r#"{"version": "https://jsonfeed.org/version/2"}"#),
            None
        );
    }

    #[test]
    fn items_after_the_channel_are_the_channels() {
        let doc = "<rss version=\"2.0\"><channel><title>t</title></channel><item><title>a</title></item></rss>";
        let t = translate(doc).unwrap();
        assert_eq!(
            t.text,
            "<rss version=\"2.0\"><channel><title>t</title><item><title>a</title></item></channel></rss>"
        );
    }

    #[test]
    fn text_construct_encodings() {
        assert_eq!(
            encoding("text/html", Some("escaped"), true, true),
            Encoded::As("html")
        );
        assert_eq!(
            encoding("text/plain", Some("base64"), true, false),
            Encoded::Base64 { plain: true }
        );
        assert_eq!(
            encoding("application/xhtml+xml", Some("xml"), true, true),
            Encoded::Xhtml
        );
        assert_eq!(
            encoding("text/plain", None, true, true),
            Encoded::Xhtml,
            "0.3 inline XML"
        );
        assert_eq!(
            encoding("application/octet-stream", None, false, false),
            Encoded::Base64 { plain: false }
        );
        assert_eq!(
            encoding("text/plain", None, false, true),
            Encoded::As("text")
        );
        assert_eq!(encoding("", None, false, false), Encoded::As("text"));
    }

    #[test]
    fn rss_090_namespace() {
        let doc = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://my.netscape.com/rdf/simple/0.9/"><item><title>x</title></item></rdf:RDF>"#;
        assert!(translate(doc).unwrap().text.contains(RSS10_NS));
    }

    #[test]
    fn atom_10_text_types_that_feed_rs_refuses() {
        let doc = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><title type="text/plain">a &lt;b&gt;</title><summary type="application/octet-stream">RXhhbXBsZSA8Yj5BdG9tPC9iPg==</summary><rights type=""/></entry></feed>"#;
        let out = rewrite_atom(doc, false).unwrap();
        assert!(
            out.contains(r#"<title type="text">a &lt;b&gt;</title>"#),
            "{out}"
        );
        assert!(
            out.contains(r#"<summary type="html">Example &lt;b&gt;Atom&lt;/b&gt;</summary>"#),
            "{out}"
        );
        assert!(!out.contains("rights"), "{out}");
        assert!(translate(doc).is_none(), "Atom 1.0 is not a dialect");
    }
}
