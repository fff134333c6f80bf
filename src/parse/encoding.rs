//! Turning a feed's bytes into UTF-8 text before the XML parser sees them.
//!
//! Order of evidence: a byte-order mark; then bytes that are valid UTF-8 are UTF-8 whatever the
//! XML declaration or HTTP header claims (a Latin-1 text that happens to be valid UTF-8 is
//! vanishingly rare, a server default of "charset=iso-8859-1" on UTF-8 files is common); then the
//! XML declaration; then the HTTP header's charset; then windows-1252, the web's de-facto
//! default for undeclared 8-bit text. UTF-8 that is declared but invalid keeps its declaration
//! and has the bad bytes replaced.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// What was decided, for the feed's status and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub encoding: &'static Encoding,
    /// Bytes were replaced with U+FFFD.
    pub had_errors: bool,
}

/// The `encoding="..."` of an XML declaration at the start of `bytes`, if any.
fn declared_xml_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(256)];
    let head = std::str::from_utf8(head).ok().or_else(|| {
        // The declaration is ASCII; cut at the first non-ASCII byte.
        let end = head
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(head.len());
        std::str::from_utf8(&head[..end]).ok()
    })?;
    let decl = head.trim_start().strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..1 + rest[1..].find(quote)?];
    Encoding::for_label(value.trim().as_bytes())
}

/// The `charset` parameter of a Content-Type header.
fn header_charset(content_type: Option<&str>) -> Option<&'static Encoding> {
    let ct = content_type?;
    ct.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset"))
            .then(|| Encoding::for_label(v.trim().trim_matches('"').as_bytes()))
            .flatten()
    })
}

/// Decodes `bytes` to UTF-8 text and removes the XML declaration, whose encoding no longer holds.
pub fn decode(bytes: &[u8], content_type: Option<&str>) -> (String, Decoded) {
    let (encoding, body) = match Encoding::for_bom(bytes) {
        Some((enc, bom_len)) => (enc, &bytes[bom_len..]),
        // Valid UTF-8 is UTF-8 (see the module's notes): validated once, copied once.
        None => match std::str::from_utf8(bytes) {
            Ok(text) => {
                let decoded = Decoded {
                    encoding: UTF_8,
                    had_errors: false,
                };
                return (strip_xml_declaration(text.to_owned()), decoded);
            }
            Err(_) => (choose(bytes, content_type), bytes),
        },
    };
    let (text, _, had_errors) = encoding.decode(body);
    (
        strip_xml_declaration(text.into_owned()),
        Decoded {
            encoding,
            had_errors,
        },
    )
}

/// The encoding of bytes that are not valid UTF-8 and carry no byte-order mark.
fn choose(bytes: &[u8], content_type: Option<&str>) -> &'static Encoding {
    // UTF-16 can only be declared in a way we can read if it has a BOM; a UTF-16 label on
    // 8-bit bytes is a lie, and encoding_rs maps such labels to UTF-16 decoders: refuse them.
    let usable = |e: &&'static Encoding| e.is_ascii_compatible();
    declared_xml_encoding(bytes)
        .filter(usable)
        .or_else(|| header_charset(content_type).filter(usable))
        .unwrap_or(WINDOWS_1252)
}

/// Removes every XML declaration, not only the leading one: the text is UTF-8 now, and a
/// declaration anywhere else makes quick-xml (under feed-rs) panic when it tries to switch
/// encodings mid-stream (found by fuzzing). A byte-order mark that the declaration's removal
/// leaves at the start goes too: quick-xml skips one there and counts its positions from after
/// it, which the passes that slice by those positions must not see (found by fuzzing).
fn strip_xml_declaration(text: String) -> String {
    let text = strip_xml_declaration_only(text);
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.trim_start_matches('\u{feff}').to_string(),
        None => text,
    }
}

fn strip_xml_declaration_only(text: String) -> String {
    if !text.contains("<?xml") && !text.contains("<?XML") {
        return text;
    }
    // The usual case, one declaration at the very start: cut it off in place.
    let start = text.len() - text.trim_start().len();
    if let Some(end) = (find_declaration(&text[start..]) == Some(0))
        .then(|| text[start..].find("?>"))
        .flatten()
        .map(|e| start + e + 2)
        && find_declaration(&text[end..]).is_none()
    {
        let mut text = text;
        text.drain(..end);
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.trim_start();
    while let Some(at) = find_declaration(rest) {
        out.push_str(&rest[..at]);
        match rest[at..].find("?>") {
            Some(end) => rest = &rest[at + end + 2..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The next `<?xml` processing instruction (the declaration's target, any case; not
/// `<?xml-stylesheet`).
fn find_declaration(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(off) = memchr::memmem::find(&bytes[from..], b"<?") {
        let at = from + off;
        let target = bytes.get(at + 2..at + 5);
        let after = bytes.get(at + 5).copied();
        if target.is_some_and(|t| t.eq_ignore_ascii_case(b"xml"))
            && after.is_none_or(|c| c.is_ascii_whitespace() || c == b'?')
        {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_latin1() {
        let bytes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss>caf\xe9</rss>";
        let (text, d) = decode(bytes, None);
        assert_eq!(text, "<rss>caf\u{e9}</rss>");
        assert_eq!(d.encoding, WINDOWS_1252); // encoding_rs maps the Latin-1 label to windows-1252
    }

    #[test]
    fn header_only_charset() {
        let (text, _) = decode(
            b"<rss>\x93quoted\x94</rss>",
            Some("text/xml; charset=windows-1252"),
        );
        assert_eq!(text, "<rss>\u{201c}quoted\u{201d}</rss>");
    }

    #[test]
    fn lying_declaration_on_utf8() {
        let bytes = "<?xml version='1.0' encoding='iso-8859-1'?><rss>caf\u{e9}</rss>".as_bytes();
        assert_eq!(decode(bytes, None).0, "<rss>caf\u{e9}</rss>");
    }

    #[test]
    fn bom_wins() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "<rss>\u{e9}</rss>".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(
            decode(&bytes, Some("text/xml; charset=utf-8")).0,
            "<rss>\u{e9}</rss>"
        );
    }

    #[test]
    fn every_declaration_goes_stylesheets_stay() {
        let text = "<?xml version='1.0'?><?xml-stylesheet href='a.xsl'?><rss><?XML version='1.0' encoding='latin1'?>x</rss>";
        assert_eq!(
            strip_xml_declaration(text.to_string()),
            "<?xml-stylesheet href='a.xsl'?><rss>x</rss>"
        );
    }

    #[test]
    fn invalid_utf8_declared_is_replaced() {
        let (text, d) = decode(
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?><rss>a\xffb</rss>",
            None,
        );
        assert_eq!(text, "<rss>a\u{fffd}b</rss>");
        assert!(d.had_errors);
    }
}
