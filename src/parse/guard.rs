//! Checks run on a document before the XML parser sees it, so one hostile feed costs bounded
//! time and memory and fails with a clear reason.

use std::borrow::Cow;

use super::ParseError;

/// An e-mail address written against a character of more than one byte (`jo@x.com—`, or one
/// the decoder replaced with U+FFFD) gets a space between the two. feed-rs 3.0.0 splits an
/// author string around the address by slicing one byte past it, which panics inside such a
/// character (found by fuzzing). Only the bytes next to an address change; linear.
pub fn email_boundaries(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b".-".contains(&b);
    // Byte offsets where a space goes.
    let mut spaces = Vec::new();
    for at in memchr::memchr_iter(b'@', bytes) {
        let start = bytes[..at]
            .iter()
            .rposition(|b| !local(*b))
            .map_or(0, |i| i + 1);
        let end = bytes[at + 1..]
            .iter()
            .position(|b| !domain(*b))
            .map_or(bytes.len(), |i| at + 1 + i);
        if start > 0 && bytes[start - 1] >= 0x80 {
            spaces.push(start);
        }
        if end < bytes.len() && bytes[end] >= 0x80 {
            spaces.push(end);
        }
    }
    if spaces.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + spaces.len());
    let mut copied = 0;
    for at in spaces {
        out.push_str(&text[copied..at]);
        out.push(' ');
        copied = at;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Refuses internal DTD subsets that declare entities, and documents nested deeper than
/// `max_depth`. Linear in the document's length.
pub fn check_xml(text: &str, max_depth: usize) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while let Some(off) = memchr::memchr(b'<', &bytes[i..]) {
        i += off;
        let rest = &text[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
        } else if rest.starts_with("<![CDATA[") {
            i += memchr::memmem::find(rest.as_bytes(), b"]]>").map_or(rest.len(), |e| e + 3);
        } else if rest.starts_with("<?") {
            i += rest.find("?>").map_or(rest.len(), |e| e + 2);
        } else if rest.starts_with("<!") {
            let end = doctype_end(rest);
            // Entity declarations are how billion-laughs, quadratic blow-up and external-entity
            // (XXE) attacks work. Feeds have no use for them: refuse rather than expand.
            if rest[..end].contains("<!ENTITY") {
                return Err(ParseError::EntityDeclarations);
            }
            i += end;
        } else if rest.starts_with("</") {
            depth = depth.saturating_sub(1);
            i += memchr::memchr(b'>', rest.as_bytes()).map_or(rest.len(), |e| e + 1);
        } else {
            let end = memchr::memchr(b'>', rest.as_bytes()).map_or(rest.len(), |e| e + 1);
            if !rest[..end].ends_with("/>") {
                depth += 1;
                if depth > max_depth {
                    return Err(ParseError::TooDeep { limit: max_depth });
                }
            }
            i += end;
        }
    }
    Ok(())
}

/// The end of a `<!DOCTYPE ...>` declaration, internal subset `[...]` included.
fn doctype_end(rest: &str) -> usize {
    let mut in_subset = false;
    for (j, c) in rest.char_indices() {
        match c {
            '[' => in_subset = true,
            ']' => in_subset = false,
            '>' if !in_subset => return j + 1,
            _ => {}
        }
    }
    rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_against_wide_characters_get_a_space() {
        assert_eq!(
            email_boundaries("jo@x.com\u{fffd}rest"),
            "jo@x.com \u{fffd}rest"
        );
        assert_eq!(
            email_boundaries("\u{2014}jo@x.com (Jo)"),
            "\u{2014} jo@x.com (Jo)"
        );
        assert!(matches!(
            email_boundaries("jo@x.com (Jo) é"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(email_boundaries("no address"), Cow::Borrowed(_)));
    }

    #[test]
    fn entity_declarations_are_refused_plain_doctypes_are_not() {
        let lol = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><rss/>"#;
        assert!(matches!(
            check_xml(lol, 64),
            Err(ParseError::EntityDeclarations)
        ));
        let xxe = r#"<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><rss>&xxe;</rss>"#;
        assert!(matches!(
            check_xml(xxe, 64),
            Err(ParseError::EntityDeclarations)
        ));
        let netscape = r#"<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel/></rss>"#;
        assert!(check_xml(netscape, 64).is_ok());
    }

    #[test]
    fn depth_is_bounded_and_counted_exactly() {
        let deep = "<a>".repeat(65) + &"</a>".repeat(65);
        assert!(matches!(
            check_xml(&deep, 64),
            Err(ParseError::TooDeep { limit: 64 })
        ));
        let ok = "<a>".repeat(64) + &"</a>".repeat(64);
        assert!(check_xml(&ok, 64).is_ok());
        let flat = "<rss>".to_string()
            + &"<item><br/><![CDATA[<b><b><b>]]><!-- <x><x> --></item>".repeat(1000)
            + "</rss>";
        assert!(check_xml(&flat, 3).is_ok());
    }
}
