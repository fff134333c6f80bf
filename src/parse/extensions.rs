//! What feed-rs drops but real feeds carry, read in one streaming quick-xml pass and matched to
//! feed-rs's entries by position.
//!
//! Per item: FeedBurner's `origLink` (the article behind a feedproxy redirect); Dublin Core and
//! DCMI terms (`dc:title`, `dc:creator`/`dc:author`, `dc:date`, `dc:description`, `dc:subject`,
//! `dcterms:issued|created|modified`); `itunes:author`; an RSS `<author>` holding a `<name>`;
//! Media RSS `media:description` and `media:category`; content in `xhtml:body` or `<fullitem>`;
//! a guid that is a permalink; every RSS `<enclosure>` (feed-rs keeps one). The pass also counts
//! the document's items, so an entry that could not be read is reported, never lost in silence.
//!
//! Elements are matched by namespace URI, or by their usual prefix when the feed forgot to
//! declare it (common on the real web). Values are raw strings; `parse` normalises them.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

const DC: &str = "http://purl.org/dc/elements/1.1/";
const DCTERMS: &str = "http://purl.org/dc/terms/";
const ITUNES: &str = "http://www.itunes.com/dtds/podcast-1.0.dtd";
const FEEDBURNER: &str = "http://rssnamespace.org/feedburner/ext/1.0";
const XHTML: &str = "http://www.w3.org/1999/xhtml";
const ATOM: &str = "http://www.w3.org/2005/Atom";

/// The namespaces of this pass, by a short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Dc,
    DcTerms,
    Itunes,
    Media,
    FeedBurner,
    Xhtml,
    /// RSS (any version, no namespace or its own) and Atom: the feed's own elements.
    Feed,
    Other,
}

fn ns_of(uri: &str) -> Ns {
    match uri {
        DC => Ns::Dc,
        DCTERMS => Ns::DcTerms,
        u if u.eq_ignore_ascii_case(ITUNES) => Ns::Itunes,
        FEEDBURNER => Ns::FeedBurner,
        XHTML => Ns::Xhtml,
        ATOM | "http://purl.org/rss/1.0/" | "http://backend.userland.com/rss2" => Ns::Feed,
        // Media RSS is declared with and without its trailing slash.
        u if u.starts_with("http://search.yahoo.com/mrss") => Ns::Media,
        _ => Ns::Other,
    }
}

/// An undeclared prefix, read as what it always means.
fn ns_of_prefix(prefix: &str) -> Ns {
    match prefix {
        "dc" => Ns::Dc,
        "dcterms" => Ns::DcTerms,
        "itunes" => Ns::Itunes,
        "media" => Ns::Media,
        "feedburner" => Ns::FeedBurner,
        "xhtml" => Ns::Xhtml,
        _ => Ns::Other,
    }
}

/// What one item carries beyond feed-rs's reading of it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ItemExtras {
    pub orig_link: Option<String>,
    /// `dc:subject`, `media:category`, `itunes:category`: categories feed-rs does not read.
    pub subjects: Vec<String>,
    /// `(category, label)` of a `media:category label="..."`.
    pub subject_labels: Vec<(String, String)>,
    /// `dc:title` or `media:title`.
    pub title: Option<String>,
    /// `dc:creator`, `dc:author`, `itunes:author`, `<author><name>`.
    pub authors: Vec<String>,
    /// `dc:date`, `dcterms:issued`, `dcterms:created`, as written.
    pub published: Option<String>,
    /// `dcterms:modified`, as written.
    pub updated: Option<String>,
    /// `dc:description`, `media:description` or `itunes:summary` (plain text unless it holds
    /// markup).
    pub description: Option<String>,
    /// An RSS item's non-standard `<summary>`, and whether a `<description>` came before it.
    pub rss_summary: Option<(String, bool)>,
    /// Bookkeeping of the pass: the item is an Atom `<entry>`; it had a `<description>`.
    pub in_atom_entry: bool,
    pub saw_description: bool,
    /// An RSS `<description>` whose HTML is not escaped, as written.
    pub markup_description: Option<String>,
    /// `xhtml:body` (its inner XHTML) or `<fullitem>` (escaped HTML): the article.
    pub body: Option<String>,
    /// A guid that is a URL and not marked `isPermaLink="false"`.
    pub permalink: Option<String>,
    /// Every `<media:content url type fileSize>` (in groups too), in order, and whether the
    /// item had any media:content at all.
    pub media: Vec<(String, Option<String>, Option<u64>)>,
    pub has_media_content: bool,
    /// Every `<enclosure url length type>`, in order.
    pub enclosures: Vec<(String, Option<String>, Option<u64>)>,
}

/// Could the pass find anything in this document that feed-rs does not read, or an item
/// feed-rs skipped? A linear look for what each value needs, so the pass (about a twentieth
/// of a cold pass's time when it ran on every document) runs only where it may change
/// something. `atom` says the document is Atom; `entries` is how many feed-rs read. The
/// fixtures' test holds this to the pass: wherever the pass finds a value, this says yes.
pub fn worth_scanning(text: &str, atom: bool, entries: usize) -> bool {
    let b = text.as_bytes();
    let has = |needle: &str| memchr::memmem::find(b, needle.as_bytes()).is_some();
    let count = |needle: &str| memchr::memmem::find_iter(b, needle.as_bytes()).count();
    // Namespaced elements feed-rs reads in no format, or only in some.
    const ANYWHERE: &[&str] = &[
        "feedburner:",
        "dc:title",
        "dc:subject",
        "dc:author",
        "dc:description",
        "dcterms:",
        "itunes:",
        "media:",
        "xhtml",
        "fullitem",
        "<tags",
        "<body",
        "purl.org/dc/terms",
    ];
    if ANYWHERE.iter().any(|n| has(n)) {
        return true;
    }
    let (open, spaced) = if atom {
        ("<entry>", "<entry ")
    } else {
        ("<item>", "<item ")
    };
    let items = count(open) + count(spaced);
    if items > entries {
        return true;
    }
    if atom {
        // Dublin Core in Atom, and categories written as text.
        return has("dc:") || has("<category>");
    }
    // RSS: an author with a <name>, a <summary> beside the description, an item with more
    // than one enclosure, an item without a <link> (its guid may be the link), markup in a
    // description that is not escaped.
    has("<name>")
        || has("<summary")
        || count("<enclosure") > items
        || count("<link>") <= items
        || markup_in_description(text)
}

/// `<description>` followed (after white space) by a tag that is not a CDATA section.
fn markup_in_description(text: &str) -> bool {
    memchr::memmem::find_iter(text.as_bytes(), b"<description>").any(|at| {
        let rest = text[at + "<description>".len()..].trim_start();
        rest.starts_with('<') && !rest.starts_with("<![CDATA[") && !rest.starts_with("</")
    })
}

/// One slot per item of the document, in document order.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    pub items: Vec<ItemExtras>,
}

/// Reads every item's extensions; `None` when the document cannot be read as XML.
pub fn scan(text: &str) -> Option<Extensions> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = false;
    let mut scan = Scan::default();
    loop {
        // Events borrow the input, not the reader: only the namespace is resolved here.
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, ev)) => (resolved(&ns), ev),
            Err(_) => return None,
        };
        match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let ns = ns.unwrap_or_else(|| prefix_ns(e));
                let descend = scan.opened(text, &mut reader, e, ns, empty)?;
                if descend && !empty {
                    scan.depth += 1;
                }
            }
            Event::End(_) => scan.closed(),
            _ => {}
        }
    }
    let Scan {
        mut items, current, ..
    } = scan;
    items.extend(current.map(|(_, extras)| extras));
    Some(Extensions { items })
}

/// Where `scan` is in the document: the items read, and the one being read with its depth.
#[derive(Default)]
struct Scan {
    items: Vec<ItemExtras>,
    current: Option<(usize, ItemExtras)>,
    depth: usize,
}

impl Scan {
    /// An element opened: an item begins, or a field of the current item is read. Returns
    /// whether the reader descends into it (what a field reader read to its end is not).
    fn opened(
        &mut self,
        text: &str,
        reader: &mut NsReader<&[u8]>,
        e: &BytesStart<'_>,
        ns: Ns,
        empty: bool,
    ) -> Option<bool> {
        let local = local_name(e);
        Some(match &mut self.current {
            None if is_item(ns, local) => {
                let extras = ItemExtras {
                    in_atom_entry: local == "entry",
                    ..ItemExtras::default()
                };
                match empty {
                    true => self.items.push(extras),
                    false => self.current = Some((self.depth, extras)),
                }
                true
            }
            Some((item_depth, extras)) => {
                let direct = self.depth == *item_depth + 1;
                let field = Field {
                    ns,
                    local,
                    empty,
                    direct,
                };
                read_field(text, reader, e, field, extras)?;
                empty || !consumed(ns, local, direct, e)
            }
            None => true,
        })
    }

    /// An element closed: the current item ends if it was the item's own.
    fn closed(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.current.as_ref().is_some_and(|(d, _)| *d == self.depth) {
            self.items
                .extend(self.current.take().map(|(_, extras)| extras));
        }
    }
}

fn resolved(ns: &ResolveResult<'_>) -> Option<Ns> {
    match ns {
        ResolveResult::Bound(n) => Some(ns_of(n.as_ref())),
        ResolveResult::Unbound => Some(Ns::Feed),
        ResolveResult::Unknown(prefix) => Some(ns_of_prefix(prefix)),
    }
}

fn prefix_ns(e: &BytesStart<'_>) -> Ns {
    let name = e.name();
    let name = name.as_ref();
    name.split_once(':')
        .map_or(Ns::Feed, |(p, _)| ns_of_prefix(p))
}

fn local_name<'a>(e: &'a BytesStart<'_>) -> &'a str {
    e.local_name().into_inner()
}

fn is_item(ns: Ns, local: &str) -> bool {
    matches!(ns, Ns::Feed | Ns::Other) && (local == "item" || local == "entry")
}

/// Elements whose whole content `read_field` reads (so the caller does not descend into them).
fn consumed(ns: Ns, local: &str, direct: bool, e: &BytesStart<'_>) -> bool {
    // <category>Text</category> with no term: Atom written like RSS, which feed-rs skips.
    if ns == Ns::Feed && direct && local == "category" {
        return attr(e, "term").is_none();
    }
    match ns {
        Ns::Dc | Ns::DcTerms | Ns::FeedBurner => true,
        Ns::Itunes => matches!(local, "author" | "summary"),
        Ns::Media => matches!(local, "description" | "category" | "title"),
        Ns::Xhtml => local == "body",
        Ns::Feed | Ns::Other => {
            direct
                && matches!(
                    local,
                    "fullitem" | "guid" | "author" | "body" | "description" | "tags" | "summary"
                )
        }
    }
}

/// An element met inside an item: its namespace and local name, whether it is empty
/// (`<x/>`), and whether it is a child of the item itself rather than deeper.
struct Field<'a> {
    ns: Ns,
    local: &'a str,
    empty: bool,
    direct: bool,
}

/// Reads one element inside an item into `x`; `None` when the document breaks.
fn read_field(
    src: &str,
    reader: &mut NsReader<&[u8]>,
    e: &BytesStart<'_>,
    field: Field<'_>,
    x: &mut ItemExtras,
) -> Option<()> {
    if read_attributes(e, &field, x)
        || field.empty
        || !consumed(field.ns, field.local, field.direct, e)
    {
        return Some(());
    }
    if read_markup(src, reader, e, &field, x)? {
        return Some(());
    }
    read_value(reader, e, &field, x)
}

/// Elements whose value is in their attributes; true when `e` was one.
fn read_attributes(e: &BytesStart<'_>, field: &Field<'_>, x: &mut ItemExtras) -> bool {
    let file = |url: &str, length: &str| {
        let url = attr(e, url).filter(|u| !u.trim().is_empty())?;
        let mime = attr(e, "type").filter(|t| !t.trim().is_empty());
        Some((
            url,
            mime,
            attr(e, length).and_then(|l| l.trim().parse().ok()),
        ))
    };
    match (field.ns, field.local) {
        (Ns::Itunes, "category") => {
            // <itunes:category text="Technology"><itunes:category text="Gadgets"/></...>: each
            // level is a category; the children are read as the pass descends.
            if let Some(text) = attr(e, "text").filter(|t| !t.trim().is_empty()) {
                x.subjects.push(text.trim().to_string());
            }
        }
        (Ns::Media, "content") => {
            // Read here because feed-rs lets a <media:player> inside replace the file's URL
            // with the player page's. A media:content with no url of its own is no file.
            x.media.extend(file("url", "fileSize"));
            x.has_media_content = true;
        }
        (Ns::Feed, "enclosure") if field.direct => x.enclosures.extend(file("url", "length")),
        _ => return false,
    }
    true
}

/// Elements whose markup is read whole; `Some(true)` when `e` was one, `None` when the document
/// breaks inside it.
fn read_markup(
    src: &str,
    reader: &mut NsReader<&[u8]>,
    e: &BytesStart<'_>,
    field: &Field<'_>,
    x: &mut ItemExtras,
) -> Option<bool> {
    let (ns, local) = (field.ns, field.local);
    let body =
        ns == Ns::Xhtml || (field.direct && local == "body" && matches!(ns, Ns::Feed | Ns::Other));
    let rss_summary = ns == Ns::Feed && local == "summary" && !x.in_atom_entry;
    if !(body || rss_summary || (ns == Ns::Feed && matches!(local, "description" | "author"))) {
        return Some(false);
    }
    if rss_summary {
        // RSS has no <summary>; feeds that add one beside <description> carry two bodies.
        // Whichever comes first is the summary, the other the content (as feedparser reads).
        let text = read_text(reader, e)?;
        if !text.trim().is_empty() {
            x.rss_summary = Some((text.trim().to_string(), x.saw_description));
        }
        return Some(true);
    }
    let span = reader.read_to_end(e.name()).ok()?;
    let inner = src[span.start as usize..span.end as usize].trim();
    if body {
        // <xhtml:body><xhtml:p>: HTML knows its elements without the prefix.
        let inner = match e.name().as_ref().split_once(':') {
            Some((prefix, _)) => inner
                .replace(&format!("<{prefix}:"), "<")
                .replace(&format!("</{prefix}:"), "</"),
            None => inner.to_string(),
        };
        x.body.get_or_insert(inner);
    } else if local == "description" {
        x.saw_description = true;
        // An RSS description holding markup unescaped (<description><p>..</p></description>)
        // is HTML to every lenient reader; feed-rs reads only its text.
        if inner.contains('<') && !inner.starts_with("<![CDATA[") {
            x.markup_description = Some(inner.to_string());
        }
    } else if let Some(name) = child_text(inner, "name") {
        // RSS's <author> is text, or holds a <name>: take the name where there is one.
        x.authors.push(name);
    }
    Some(true)
}

/// Elements whose value is their text.
fn read_value(
    reader: &mut NsReader<&[u8]>,
    e: &BytesStart<'_>,
    field: &Field<'_>,
    x: &mut ItemExtras,
) -> Option<()> {
    let (ns, local) = (field.ns, field.local);
    let permalink = local == "guid" && attr(e, "isPermaLink").is_none_or(|v| v.trim() != "false");
    let label = (ns == Ns::Media && local == "category")
        .then(|| attr(e, "label"))
        .flatten();
    let text = read_text(reader, e)?;
    let text = text.trim();
    if text.is_empty() {
        return Some(());
    }
    let first = |slot: &mut Option<String>| {
        slot.get_or_insert_with(|| text.to_string());
    };
    match (ns, local) {
        (Ns::FeedBurner, "origLink") => first(&mut x.orig_link),
        (Ns::Dc, "subject") | (Ns::Media | Ns::Feed, "category") => {
            if let Some(label) = label {
                x.subject_labels.push((text.to_string(), label));
            }
            x.subjects.push(text.to_string())
        }
        (Ns::Dc | Ns::Media, "title") => first(&mut x.title),
        (Ns::Dc, "creator" | "author") | (Ns::Itunes, "author") => x.authors.push(text.to_string()),
        (Ns::Dc, "date") | (Ns::DcTerms, "issued" | "created" | "date" | "available") => {
            first(&mut x.published)
        }
        (Ns::DcTerms, "modified") => first(&mut x.updated),
        (Ns::Dc | Ns::Media | Ns::Itunes, "description" | "summary") => first(&mut x.description),
        (Ns::Feed | Ns::Other, "fullitem") => first(&mut x.body),
        // <tags>one, two</tags>: a made-up element some blog engines write.
        (Ns::Feed | Ns::Other, "tags") => x.subjects.extend(
            text.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from),
        ),
        (Ns::Feed | Ns::Other, "guid") if permalink && looks_like_url(text) => {
            x.permalink = Some(text.to_string())
        }
        _ => {}
    }
    Some(())
}

fn looks_like_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The value of attribute `name` as written (references not resolved): what a rewrite that
/// splices the document must match.
pub(super) fn raw_attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.into_owned())
}

/// The value of attribute `name`, references resolved.
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let raw = raw_attr(e, name)?;
    Some(match quick_xml::escape::unescape(&raw) {
        Ok(v) => v.into_owned(),
        Err(_) => raw,
    })
}

/// The text of an element up to its end: text, CDATA and references resolved, markup of
/// children skipped (their text kept).
fn read_text(reader: &mut NsReader<&[u8]>, start: &BytesStart<'_>) -> Option<String> {
    let _ = start;
    let mut out = String::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event().ok()? {
            Event::Start(_) => depth += 1,
            Event::End(_) if depth == 0 => return Some(out),
            Event::End(_) => depth -= 1,
            Event::Text(t) => out.push_str(&t.xml10_content()),
            Event::CData(t) => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => push_reference(&mut out, &r),
            Event::Eof => return Some(out),
            _ => {}
        }
    }
}

fn push_reference(out: &mut String, r: &quick_xml::events::BytesRef<'_>) {
    match r.resolve_char_ref() {
        Ok(Some(c)) => out.push(c),
        _ => match quick_xml::escape::resolve_predefined_entity(r) {
            Some(s) => out.push_str(s),
            None => {
                out.push('&');
                out.push_str(r);
                out.push(';');
            }
        },
    }
}

/// The text of the first `<name>` child in a fragment.
fn child_text(fragment: &str, name: &str) -> Option<String> {
    let mut reader = NsReader::from_str(fragment);
    reader.config_mut().check_end_names = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == name => {
                let t = read_text(&mut reader, &e)?;
                let t = t.trim();
                return (!t.is_empty()).then(|| t.to_string());
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dublin_core_itunes_media_and_friends() {
        let doc = r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
            xmlns:dcterms="http://purl.org/dc/terms/" xmlns:media="http://search.yahoo.com/mrss/"
            xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>
            <item><dc:title>DC &amp; title</dc:title><dc:creator>Ann</dc:creator>
              <dcterms:issued>2003-12-31T10:14:55Z</dcterms:issued><media:description/>
              <guid>http://example.com/a</guid>
              <enclosure url="http://e.com/1.mp3" length="10" type="audio/mpeg"/>
              <enclosure url="http://e.com/2.mp3"/></item>
            <item><author><name>Bob</name></author><itunes:author>Carl</itunes:author>
              <media:group><media:description>From media</media:description>
              <media:category>Cat</media:category></media:group>
              <guid isPermaLink="false">http://example.com/b</guid></item>
            </channel></rss>"#;
        let x = scan(doc).unwrap();
        assert_eq!(x.items.len(), 2);
        let (a, b) = (&x.items[0], &x.items[1]);
        assert_eq!(a.title.as_deref(), Some("DC & title"));
        assert_eq!(a.authors, vec!["Ann"]);
        assert_eq!(a.published.as_deref(), Some("2003-12-31T10:14:55Z"));
        assert_eq!(a.permalink.as_deref(), Some("http://example.com/a"));
        assert_eq!(a.enclosures.len(), 2);
        assert_eq!(
            a.description, None,
            "an empty media:description says nothing"
        );
        assert_eq!(b.authors, vec!["Bob", "Carl"]);
        assert_eq!(b.description.as_deref(), Some("From media"));
        assert_eq!(b.subjects, vec!["Cat"]);
        assert_eq!(b.permalink, None);
    }

    #[test]
    fn xhtml_body_and_undeclared_prefixes() {
        let doc = r#"<rss version="2.0"><channel><item>
            <body xmlns="http://www.w3.org/1999/xhtml"><p>Full <b>text</b></p></body>
            <dc:creator>No declaration</dc:creator></item></channel></rss>"#;
        let x = scan(doc).unwrap();
        assert_eq!(x.items[0].body.as_deref(), Some("<p>Full <b>text</b></p>"));
        assert_eq!(x.items[0].authors, vec!["No declaration"]);
    }

    #[test]
    fn items_are_counted_in_every_format() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry/><entry><title>x</title></entry></feed>"#;
        assert_eq!(scan(atom).map(|x| x.items.len()), Some(2));
        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel/><item><description>d</description></item></rdf:RDF>"#;
        assert_eq!(scan(rdf).map(|x| x.items.len()), Some(1));
    }
}
