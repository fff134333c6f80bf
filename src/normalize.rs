//! Normalisation at the parse boundary: canonical URLs, sanitised HTML, plain-text titles.
//! Pure functions; `parse` applies them so that nothing downstream sees raw feed markup.

use std::collections::HashSet;
use std::sync::LazyLock;

use url::Url;

/// Query parameters that only track the reader, by a name no site uses for anything else.
/// Dropped from every published link (Miniflux strips them only after hashing, so its dedup
/// never sees the clean URL). Generic names (`ref`, `source`) are part of an address (a
/// podcast host needs `?source=feed` to serve the file): see `dedup::identity_link`.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "guccounter",
    "__twitter_impression",
];

pub fn is_tracking(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_") || n.starts_with("_ga") || TRACKING_PARAMS.contains(&n.as_str())
}

/// The link as republished: resolved against `base`, http(s) only, lower-case scheme and host,
/// no default port, tracking parameters dropped. The rest of the query keeps its order and
/// spelling (`?a=1&b=2&c` stays so), and the fragment stays: it may name the item (a blog's
/// day page with `#a080605` anchors). `None` for anything that is not an http(s) URL
/// (javascript:, mailto:, garbage).
pub fn canonical_url(href: &str, base: Option<&Url>) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let mut url = match base {
        Some(b) => b.join(href).ok()?,
        None => Url::parse(href).ok()?,
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    // url::Url already lower-cases scheme and host and drops the scheme's default port.
    if let Some(query) = url.query() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or(pair);
                !pair.is_empty() && !is_tracking(name)
            })
            .collect();
        let kept = kept.join("&");
        url.set_query((!kept.is_empty()).then_some(kept.as_str()));
    }
    if url.fragment() == Some("") {
        url.set_fragment(None);
    }
    Some(url.into())
}

/// Tags we keep beyond ammonia's defaults: article figures are common in news feeds.
const EXTRA_TAGS: &[&str] = &[
    "figure",
    "figcaption",
    "picture",
    "source",
    "video",
    "audio",
];

/// Elements that never nest: void elements, and those whose end tag is optional and which HTML
/// closes implicitly (counting them would make ten paragraphs look ten deep).
const NON_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead",
    "tbody", "tfoot", "colgroup", "rb", "rt", "rp",
];

/// How deeply `html` nests its elements, estimated in one linear pass over the tags.
pub fn html_depth(html: &str) -> usize {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    let bytes = html.as_bytes();
    while let Some(off) = memchr::memchr(b'<', &bytes[i..]) {
        i += off + 1;
        let closing = bytes.get(i) == Some(&b'/');
        let start = i + usize::from(closing);
        let len = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(bytes.len() - start);
        if len == 0 {
            continue;
        }
        let name = &html[start..start + len];
        let end = memchr::memchr(b'>', &bytes[start..]).map_or(bytes.len(), |e| start + e);
        i = end.max(i);
        if NON_NESTING.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if !html[start..end].ends_with('/') {
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

/// Markup too deeply nested to be worth parsing, reduced to its text. html5ever's tree builder
/// is quadratic in nesting depth (20,000 nested `<div>`s take seconds), so it never sees it.
fn flatten(html: &str) -> String {
    static ACTIVE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?is)<(script|style)\b.*?</(script|style)\s*>").expect("static regex")
    });
    let html = ACTIVE.replace_all(html, " ");
    format!(
        "<p>{}</p>",
        escape_html(
            &html_to_text(&html)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        )
    )
}

/// Sanitises feed HTML for republishing: no script, style, iframe, object, form, event handlers,
/// inline styles, or non-http(s)/mailto URLs; static SVG and MathML only; relative URLs resolved against `base`; links get
/// `rel="noopener noreferrer"`. Markup nested deeper than `max_depth` is reduced to text.
pub fn sanitize_html(html: &str, base: Option<&Url>, max_depth: usize) -> String {
    // Text without markup or entities is already safe HTML: no parser needed (many summaries).
    if !html.contains(['<', '&']) {
        return html.trim().to_string();
    }
    if html_depth(html) > max_depth {
        return flatten(html);
    }
    SANITIZER.with(|cell| {
        let mut b = cell.borrow_mut();
        match base {
            Some(base) => b.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone())),
            // Without a base a relative URL cannot be resolved for a reader elsewhere: drop it.
            None => b.url_relative(ammonia::UrlRelative::Deny),
        };
        trimmed(b.clean(html).to_string())
    })
}

/// `s` without surrounding white space, copied only if it has any.
fn trimmed(s: String) -> String {
    if s.trim().len() == s.len() {
        s
    } else {
        s.trim().to_string()
    }
}

thread_local! {
    /// The sanitiser's allow-lists, built once per thread: building an ammonia `Builder` cost a
    /// third of sanitising a typical entry. Only the base URL changes between calls.
    static SANITIZER: std::cell::RefCell<ammonia::Builder<'static>> = std::cell::RefCell::new(sanitizer());
}

/// Inline SVG and MathML, static: shapes, text and formulas, with no scripting, animation,
/// external reuse (`use`), foreign objects or styles. Equations and charts in science and
/// finance posts are SVG and MathML; ammonia checks their namespaces (an element may change
/// namespace only where HTML's parser does), which is what closes the mutation-XSS holes these
/// two are known for, and it checks `xlink:href` like `href`.
const SVG_TAGS: &[&str] = &[
    "svg", "g", "circle", "ellipse", "line", "path", "polygon", "polyline", "rect", "text",
    "tspan", "desc",
];
const SVG_ATTRIBUTES: &[&str] = &[
    "version",
    "baseprofile",
    "baseProfile",
    "width",
    "height",
    "viewbox",
    "viewBox",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "d",
    "points",
    "fill",
    "fill-opacity",
    "fill-rule",
    "stroke",
    "stroke-width",
    "stroke-opacity",
    "stroke-linecap",
    "stroke-linejoin",
    "stroke-dasharray",
    "opacity",
    "transform",
    "font-size",
    "font-family",
    "font-weight",
    "text-anchor",
];
const MATHML_TAGS: &[&str] = &[
    "math",
    "mrow",
    "mi",
    "mo",
    "mn",
    "ms",
    "mtext",
    "mspace",
    "msup",
    "msub",
    "msubsup",
    "mfrac",
    "msqrt",
    "mroot",
    "mtable",
    "mtr",
    "mtd",
    "munder",
    "mover",
    "munderover",
    "mstyle",
    "semantics",
    "menclose",
    "mpadded",
    "mphantom",
];
/// `href`, `show` and `type` are XLink's (`xlink:href` on a MathML element), which the HTML
/// parser files under their local names; `href` is checked like every URL attribute.
const MATHML_ATTRIBUTES: &[&str] = &[
    "mathvariant",
    "display",
    "displaystyle",
    "href",
    "show",
    "type",
];

fn sanitizer() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    b.add_tags(EXTRA_TAGS)
        .add_tags(SVG_TAGS)
        .add_tags(MATHML_TAGS)
        .add_tag_attributes("a", ["xlink:href"]);
    for tag in SVG_TAGS {
        b.add_tag_attributes(tag, SVG_ATTRIBUTES);
    }
    for tag in MATHML_TAGS {
        b.add_tag_attributes(tag, MATHML_ATTRIBUTES);
    }
    b.add_tag_attributes("source", ["src", "type"])
        .add_tag_attributes("video", ["src", "poster", "controls", "width", "height"])
        .add_tag_attributes("audio", ["src", "controls"])
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer"));
    b
}

/// Titles, names and categories have no business nesting markup deeper than this.
pub const PLAIN_TEXT_MAX_DEPTH: usize = 32;

static TEXT_ONLY: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.clean_content_tags(HashSet::from(["script", "style", "noscript", "template"]));
    b
});

/// Plain text from a field that may hold markup or entities (titles): tags removed, entities
/// decoded, white space collapsed. Markup nested deeper than [`PLAIN_TEXT_MAX_DEPTH`] is
/// stripped by a linear scan instead of an HTML parser.
pub fn plain_text(html: &str) -> String {
    let mut text = strip_markup(html);
    // Entity-encoded markup ("&lt;script&gt;") decodes into markup; strip again, so no reader
    // that renders titles as HTML (some do) is handed a tag. Each round removes a layer.
    for _ in 0..3 {
        if !looks_like_markup(&text) {
            break;
        }
        text = strip_markup(&text);
    }
    // Whatever deeper layers of escaping are left (found by fuzzing), no '<' may open a tag:
    // "< a" is text to an HTML parser.
    if looks_like_markup(&text) {
        text = text.replace('<', "< ");
    }
    collapse_spaces(&text)
}

fn strip_markup(html: &str) -> String {
    let cleaned = if !html.contains(['<', '&']) {
        html.to_string()
    } else if html_depth(html) > PLAIN_TEXT_MAX_DEPTH {
        html_to_text(html)
    } else {
        TEXT_ONLY.clean(html).to_string()
    };
    decode_basic_entities(&cleaned)
}

/// Text that was UTF-8, read as windows-1252 and written out as UTF-8 again ("la mÃ gia" for
/// "la màgia", "donâ€™t" for "don’t"), repaired where that is certain: the text has the
/// pattern of a UTF-8 lead byte followed by continuation bytes, it encodes to windows-1252
/// without loss, and those bytes are valid UTF-8. Otherwise the text is left as it is
/// (feedparser repairs the same way).
pub fn repair_mojibake(text: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    // Every lead character of the pattern (U+00C2..U+00F4) is 0xC3 0x82..0xB4 in UTF-8: text
    // without that byte (nearly all) is passed over at memchr's speed.
    if memchr::memchr(0xc3, text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    let suspicious = text.chars().zip(text.chars().skip(1)).any(|(a, b)| {
        ('\u{c2}'..='\u{f4}').contains(&a)
            && cp1252_byte(b).is_some_and(|x| (0x80..0xc0).contains(&x))
    });
    if !suspicious {
        return Cow::Borrowed(text);
    }
    let (bytes, _, lossy) = encoding_rs::WINDOWS_1252.encode(text);
    if lossy {
        return Cow::Borrowed(text);
    }
    match String::from_utf8(bytes.into_owned()) {
        Ok(fixed) if fixed != text => Cow::Owned(fixed),
        _ => Cow::Borrowed(text),
    }
}

/// The windows-1252 byte of a character, if it has one above ASCII.
fn cp1252_byte(c: char) -> Option<u8> {
    let mut buf = [0u8; 4];
    let (bytes, _, lossy) = encoding_rs::WINDOWS_1252.encode(c.encode_utf8(&mut buf));
    (!lossy && bytes.len() == 1 && bytes[0] >= 0x80).then(|| bytes[0])
}

/// Elements that do harm or change how a page is parsed even with no attribute: a title that
/// names one as text is defanged like any markup.
const INERT_NEVER: &[&str] = &[
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "meta",
    "link",
    "svg",
    "math",
    "template",
    "noscript",
    "plaintext",
    "xmp",
    "listing",
    "noembed",
    "noframes",
    "title",
    "img",
    "image",
    "video",
    "audio",
    "picture",
    "source",
    "foreignobject",
    "use",
    "animate",
    "set",
    "animatemotion",
    "animatetransform",
    "handler",
    "listener",
    "mglyph",
    "maction",
];

/// Text that is text by its format's definition (an Atom `type="text"` title, a JSON Feed
/// title) as a title: white space collapsed (U+00A0 kept), entities not decoded, characters
/// kept, so "History of the <blink> tag" reads so. A bare tag-like word (`<blink>`, `</b>`) is
/// inert even to a reader that wrongly renders titles as HTML; anything with attributes, a
/// comment or declaration opener, or an element in [`INERT_NEVER`] is defanged as
/// [`plain_text`] does, so no title can carry markup that loads or runs anything.
pub fn literal_text(text: &str) -> String {
    let collapsed = collapse_spaces(text);
    if !looks_like_markup(&collapsed) {
        return collapsed;
    }
    let mut out = String::with_capacity(collapsed.len() + 8);
    let mut rest = collapsed.as_str();
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if inert_tag(rest) {
            out.push('<');
        } else {
            out.push_str("< ");
        }
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// `<name>` or `</name>` with nothing else inside, not a dangerous element; or `<` that opens
/// nothing (`5 < 6`).
fn inert_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&next) = b.get(1) else { return true };
    if !(next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'?')) {
        return true;
    }
    let body = s[1..].strip_prefix('/').unwrap_or(&s[1..]);
    let name_len = body
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    let name = &body[..name_len];
    !name.is_empty()
        && body[name_len..].starts_with('>')
        && !INERT_NEVER.contains(&name.to_ascii_lowercase().as_str())
}

/// White space runs as one space; U+00A0 is kept, as the source meant it.
fn collapse_spaces(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() && c != '\u{a0}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `<` followed by what could start a tag, a closing tag, a comment or a declaration.
fn looks_like_markup(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?')))
}

/// The entities an HTML serialiser (ammonia's) emits in text, and what they stand for: the
/// one table both decoders below read. `&amp;` last, so "&amp;lt;" stays "&lt;".
const BASIC_ENTITIES: [(&str, &str); 6] = [
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", "\""),
    ("&#39;", "'"),
    ("&nbsp;", "\u{a0}"),
    ("&amp;", "&"),
];

fn decode_basic_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = s.to_string();
    for (entity, text) in BASIC_ENTITIES {
        out = out.replace(entity, text);
    }
    out
}

/// Escapes text for inclusion in HTML (an Atom `type="text"` summary republished as HTML).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut done = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => continue,
        };
        out.push_str(&text[done..i]);
        out.push_str(escaped);
        done = i + 1;
    }
    out.push_str(&text[done..]);
    out
}

/// Cheap text view of HTML: tags become spaces, the common entities are decoded. Not a
/// sanitiser: its output is escaped or matched against, never republished as markup.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    push_text(&mut out, html);
    out
}

/// Appends the text of `html` to `out` with white space collapsed to single spaces. One pass
/// over the bytes, copying whole runs of text between tags and entities: it runs on every
/// entry's content for tagging.
pub fn push_text(out: &mut String, html: &str) {
    push_text_with(out, html, false, usize::MAX)
}

/// The text of `html` as [`html_to_text`] gives it, with a full stop where a paragraph ends
/// or a line breaks (`</p>`, `<br>`): those end sentences, though the text may not say so.
/// Stops once about `max` bytes of text are out (a run of text is copied whole).
pub fn html_to_sentences(html: &str, max: usize) -> String {
    let mut out = String::with_capacity(html.len().min(max + 256));
    push_text_with(&mut out, html, true, max);
    out
}

fn push_text_with(out: &mut String, html: &str, sentences: bool, max: usize) {
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut space = !out.is_empty();
    while i < bytes.len() && out.len() < max {
        match bytes[i] {
            b'<' => {
                if sentences && (bytes[i..].starts_with(b"</p>") || bytes[i..].starts_with(b"<br"))
                {
                    space = true;
                    push_word(out, ".", &mut space);
                }
                i += memchr::memchr(b'>', &bytes[i..]).map_or(bytes.len() - i, |p| p + 1);
                space = true;
            }
            b'&' => {
                let (text, len) = entity(&html[i..]);
                push_word(out, text, &mut space);
                i += len;
            }
            _ => {
                let end = memchr::memchr2(b'<', b'&', &bytes[i..]).map_or(bytes.len(), |p| i + p);
                push_run(out, &html[i..end], &mut space);
                i = end;
            }
        }
    }
}

/// A run of text with no markup: copied whole when its white space is already single spaces
/// (most prose), word by word otherwise.
fn push_run(out: &mut String, run: &str, space: &mut bool) {
    // A non-breaking space (kept in titles) separates words for matching, so "BNB\u{a0}Chain"
    // matches the keyword "BNB Chain".
    if run.contains('\u{a0}') {
        return push_run(out, &run.replace('\u{a0}', " "), space);
    }
    let b = run.as_bytes();
    let simple = !b.iter().any(|c| c.is_ascii_whitespace() && *c != b' ')
        && memchr::memmem::find(b, b"  ").is_none();
    if simple {
        let core = run.trim_matches(' ');
        if core.len() < run.len() && run.starts_with(' ') {
            *space = true;
        }
        if !core.is_empty() {
            push_word(out, core, space);
            *space = run.ends_with(' ');
        }
        return;
    }
    if run.starts_with(|c: char| c.is_ascii_whitespace()) {
        *space = true;
    }
    for word in run.split_ascii_whitespace() {
        push_word(out, word, space);
        *space = true;
    }
    *space = run.ends_with(|c: char| c.is_ascii_whitespace());
}

fn push_word(out: &mut String, word: &str, space: &mut bool) {
    if word == " " {
        *space = true;
        return;
    }
    if *space && !out.is_empty() {
        out.push(' ');
    }
    *space = false;
    out.push_str(word);
}

/// The text an entity at the start of `s` stands for, and its length; an unknown one is kept.
/// A non-breaking space separates words like any space (push_run reads it so).
fn entity(s: &str) -> (&str, usize) {
    for (name, text) in BASIC_ENTITIES {
        if s.starts_with(name) {
            return (if name == "&nbsp;" { " " } else { text }, name.len());
        }
    }
    ("&", 1)
}

/// Characters XML 1.0 forbids (C0 controls other than tab, LF, CR) that real feeds still carry;
/// parsers choke on them and readers never want them.
pub fn strip_control_chars(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c < ' ' && !matches!(c, '\t' | '\n' | '\r');
    if has_control_bytes(s.as_bytes()) {
        s.replace(bad, "").into()
    } else {
        s.into()
    }
}

/// Whether `bytes` hold a C0 control other than tab, LF and CR. Control characters are ASCII,
/// so bytes suffice; eight at a time, since this runs over every document's whole text.
fn has_control_bytes(bytes: &[u8]) -> bool {
    const LOW: u64 = 0x2020_2020_2020_2020;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bad = |b: &u8| *b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r');
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        // Some byte is below 0x20 (SWAR "has less than"; exact, no false negatives).
        if x.wrapping_sub(LOW) & !x & HIGH != 0 && chunk.iter().any(bad) {
            return true;
        }
    }
    chunks.remainder().iter().any(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_svg_and_mathml_stay_scripted_ones_do_not() {
        let svg =
            r##"<svg width="30" height="20"><circle cx="15" cy="10" r="5" fill="#f00"/></svg>"##;
        assert_eq!(
            sanitize_html(svg, None, 128),
            r##"<svg width="30" height="20"><circle cx="15" cy="10" r="5" fill="#f00"></circle></svg>"##
        );
        let math = r#"<math><mrow xlink:href="https://x.example/"><mi>a</mi><mo>+</mo><mi>b</mi></mrow></math>"#;
        assert_eq!(
            sanitize_html(math, None, 128),
            r#"<math><mrow xlink:href="https://x.example/"><mi>a</mi><mo>+</mo><mi>b</mi></mrow></math>"#
        );
        for hostile in [
            r#"<svg onload="alert(1)"><circle r="1"/></svg>"#,
            r#"<svg><script>alert(1)</script></svg>"#,
            r#"<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>"#,
            r#"<svg><animate attributeName="href" to="javascript:alert(1)"/></svg>"#,
            r#"<svg><use xlink:href="https://evil.example/x.svg#a"/></svg>"#,
            r#"<svg><foreignObject><iframe src="https://evil.example"></iframe></foreignObject></svg>"#,
            r#"<math href="javascript:alert(1)">x</math>"#,
            r#"<svg><circle style="fill:url(https://evil.example)"/></svg>"#,
        ] {
            let out = sanitize_html(hostile, None, 128).to_ascii_lowercase();
            for bad in [
                "onload",
                "script",
                "javascript",
                "animate",
                "<use",
                "foreignobject",
                "iframe",
                "style",
            ] {
                assert!(!out.contains(bad), "{hostile} => {out}");
            }
        }
    }

    #[test]
    fn double_encoded_utf8_is_repaired_only_when_certain() {
        assert_eq!(repair_mojibake("la mÃ\u{a0}gia"), "la m\u{e0}gia");
        assert_eq!(repair_mojibake("donâ€™t"), "don\u{2019}t");
        assert_eq!(repair_mojibake("Ã©tÃ© Ã\u{a0} Paris"), "été à Paris");
        // Real Latin-1 text, or text that merely looks odd, stays.
        assert_eq!(repair_mojibake("café crème"), "café crème");
        assert_eq!(repair_mojibake("Â½ price, ½ off"), "Â½ price, ½ off");
        assert_eq!(repair_mojibake("plain"), "plain");
    }

    #[test]
    fn literal_text_keeps_inert_brackets_and_defangs_the_rest() {
        assert_eq!(
            literal_text("History of the <blink> tag"),
            "History of the <blink> tag"
        );
        assert_eq!(literal_text("a </b> b"), "a </b> b");
        assert_eq!(literal_text("5 < 6 and\u{a0}7"), "5 < 6 and\u{a0}7");
        assert_eq!(literal_text("<script>x</script>"), "< script>x< /script>");
        assert_eq!(
            literal_text("<img src=x onerror=y>"),
            "< img src=x onerror=y>"
        );
        assert_eq!(literal_text("<b onclick=x>"), "< b onclick=x>");
        assert_eq!(literal_text("<!-- c -->"), "< !-- c -->");
        assert_eq!(plain_text("a\u{a0}b  c"), "a\u{a0}b c");
    }

    #[test]
    fn canonical_drops_trackers_and_keeps_the_rest_as_written() {
        let c = canonical_url(
            "HTTPS://Example.COM:443/a/b?utm_source=rss&z=1&a=2&fbclid=x#frag",
            None,
        );
        assert_eq!(c.as_deref(), Some("https://example.com/a/b?z=1&a=2#frag"));
        assert_eq!(
            canonical_url("http://example/?a=1&b=2&c", None).as_deref(),
            Some("http://example/?a=1&b=2&c")
        );
        assert_eq!(
            canonical_url(
                "https://cdn.example/ep.mp3?source=feed&utm_medium=rss",
                None
            )
            .as_deref(),
            Some("https://cdn.example/ep.mp3?source=feed")
        );
        assert_eq!(
            canonical_url("https://x.io/p?fbclid=1", None).as_deref(),
            Some("https://x.io/p")
        );
        assert_eq!(canonical_url("javascript:alert(1)", None), None);
        let base = Url::parse("https://site.org/news/feed.xml").unwrap();
        assert_eq!(
            canonical_url("../post/1", Some(&base)).as_deref(),
            Some("https://site.org/post/1")
        );
        assert_eq!(
            canonical_url("//cdn.site.org/x", Some(&base)).as_deref(),
            Some("https://cdn.site.org/x")
        );
    }

    #[test]
    fn sanitize_removes_active_content() {
        let base = Url::parse("https://site.org/feed").unwrap();
        let dirty = r#"<p onclick="x()" style="color:red">Hi<script>alert(1)</script><iframe src="https://e"></iframe>
            <a href="javascript:alert(1)">j</a><a href="/rel">r</a><img src="//cdn.x/i.png" onerror="y()"></p>"#;
        let clean = sanitize_html(dirty, Some(&base), 64);
        for bad in [
            "onclick",
            "style",
            "script",
            "iframe",
            "javascript",
            "onerror",
        ] {
            assert!(!clean.contains(bad), "{bad} survived in {clean}");
        }
        assert!(clean.contains(r#"href="https://site.org/rel""#), "{clean}");
        assert!(clean.contains(r#"src="https://cdn.x/i.png""#), "{clean}");
        assert!(clean.contains("noopener noreferrer"), "{clean}");
    }

    #[test]
    fn deep_markup_is_flattened_not_parsed() {
        assert_eq!(
            html_depth("<div><p>a<p>b<ul><li>x<li>y</ul></div><br><img src=x/>"),
            2
        );
        let deep = "<div>".repeat(20_000) + "text<script>x</script>";
        let started = std::time::Instant::now();
        let out = sanitize_html(&deep, None, 256);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "linear, not quadratic"
        );
        assert_eq!(out, "<p>text</p>");
        assert_eq!(plain_text(&("<b>".repeat(5000) + "title")), "title");
    }

    #[test]
    fn text_of_html() {
        assert_eq!(
            html_to_text("<p>Binance\n  <b>BNB</b>&nbsp;Chain &amp; more</p><p>x</p>"),
            "Binance BNB Chain & more x"
        );
        assert_eq!(
            html_to_text("caf\u{e9} &unknown; <a href='x'>z\u{fc}rich</a>"),
            "caf\u{e9} &unknown; z\u{fc}rich"
        );
        let mut s = String::from("title");
        push_text(&mut s, "<p>body</p>");
        assert_eq!(s, "title body");
    }

    #[test]
    fn plain_text_titles() {
        assert_eq!(
            plain_text("Bitcoin <b>rallies</b>&nbsp;again  "),
            "Bitcoin rallies\u{a0}again",
            "a non-breaking space stays one"
        );
        assert_eq!(plain_text("AT&amp;T &lt;3"), "AT&T <3");
        assert_eq!(plain_text("x<script>alert(1)</script>y"), "xy");
        assert_eq!(
            plain_text("&lt;img src=x onerror=alert(1)&gt;Hi &amp;lt;b&amp;gt;there"),
            "Hi there"
        );
        assert_eq!(plain_text("5 < 6 <= 7"), "5 < 6 <= 7");
        let layered = "&amp;amp;amp;amp;lt;b&amp;amp;amp;amp;gt;x";
        assert!(
            !looks_like_markup(&plain_text(layered)),
            "{}",
            plain_text(layered)
        );
    }

    #[test]
    fn control_characters_are_found_anywhere() {
        assert!(!has_control_bytes(
            b"plain text\twith\r\nbreaks, caf\xc3\xa9 \x7f"
        ));
        for at in 0..20 {
            let mut text = vec![b'a'; 20];
            text[at] = 0x0b;
            assert!(has_control_bytes(&text), "at {at}");
            text[at] = 0x1f;
            assert!(has_control_bytes(&text), "at {at}");
            text[at] = b'\n';
            assert!(!has_control_bytes(&text), "at {at}");
        }
        assert_eq!(strip_control_chars("a\u{0}b\u{1b}c\td"), "abc\td");
    }

    /// The text view as a word-by-word reference computes it, on random mixes of the pieces
    /// that matter: tags, entities, runs of each kind of white space, words.
    #[test]
    fn push_text_matches_the_word_by_word_reference() {
        fn reference(out: &mut String, html: &str) {
            let mut space = !out.is_empty();
            let mut rest = html;
            while let Some(c) = rest.chars().next() {
                if c == '<' {
                    rest = rest.find('>').map_or("", |p| &rest[p + 1..]);
                    space = true;
                } else if c.is_ascii_whitespace() {
                    space = true;
                    rest = &rest[1..];
                } else if c == '&' {
                    let (text, len) = entity(rest);
                    push_word(out, text, &mut space);
                    rest = &rest[len..];
                } else {
                    let end = rest
                        .find(|c: char| c == '<' || c == '&' || c.is_ascii_whitespace())
                        .unwrap_or(rest.len());
                    push_word(out, &rest[..end], &mut space);
                    rest = &rest[end..];
                }
            }
        }
        let pieces = [
            "<p>",
            "</p>",
            "<a href='x'>",
            "&amp;",
            "&nbsp;",
            "&lt;",
            "&bogus;",
            " ",
            "  ",
            "\n",
            "\t ",
            "word",
            "caf\u{e9}",
            "BNB",
            ".",
            "\r\n",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5000 {
            let html: String = (0..rng.usize(0..12))
                .map(|_| pieces[rng.usize(..pieces.len())])
                .collect();
            for prefix in ["", "title"] {
                let (mut got, mut want) = (prefix.to_string(), prefix.to_string());
                push_text(&mut got, &html);
                reference(&mut want, &html);
                assert_eq!(got, want, "{html:?}");
            }
        }
    }
}
