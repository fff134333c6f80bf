//! Repairs tried only after the strict parse failed: what lenient readers (feedparser's loose
//! parser, libxml2's recover mode) repair, where the meaning is clear.
//!
//! - a stray `&` (`?a=1&b=2`, `AT&T`) becomes `&amp;`;
//! - markup that breaks the tree is mended: an end tag with no start is dropped, elements left
//!   open are closed where their parent closes, a document cut short is closed at its end, and a
//!   run of bytes the XML reader cannot read is dropped up to the next tag;
//! - an Atom text construct feed-rs refuses is rewritten (see `dialect::rewrite_atom`);
//! - an element feed-rs refuses for its content (an empty `<media:description/>`, a content
//!   type it does not know) is dropped, at the position feed-rs names.
//!
//! Every repair is named in the notes, which become the feed's status ("repaired: ..."): a
//! repaired feed is read, and the operator can see that it needed it.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Bounds the work on one hostile document: each drop is a re-parse of the whole text.
pub const MAX_DROPS: usize = 16;
/// Unreadable runs skipped in one document before the rest is given up as garbage.
const MAX_SKIPS: usize = 256;

/// A document after the text-level repairs.
#[derive(Debug)]
pub struct Repaired {
    pub text: String,
    /// What was done, for the feed's status.
    pub notes: Vec<String>,
    /// The document was cut short before any entry ended: nothing in it can be trusted whole.
    pub cut_before_first_entry: bool,
}

/// Text-level repairs (stray ampersands, broken tree); `None` when nothing needed repair.
pub fn repair(text: &str) -> Option<Repaired> {
    let mut notes = Vec::new();
    let (amped, strays) = escape_stray_amps(text);
    if strays > 0 {
        notes.push(format!("escaped {strays} stray '&'"));
    }
    let tree = balance(&amped);
    notes.extend(tree.notes);
    (!notes.is_empty()).then_some(Repaired {
        text: tree.text,
        notes,
        cut_before_first_entry: tree.cut_short && tree.complete_entries == 0,
    })
}

/// Is `rest` (what follows a `&`) a well-formed reference: `#123;`, `#x1F;` or `name;`?
fn is_reference(rest: &[u8]) -> bool {
    let end = rest.iter().take(40).position(|&b| b == b';');
    let Some(end) = end else { return false };
    let body = &rest[..end];
    match body {
        [b'#', b'x' | b'X', hex @ ..] => !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit),
        [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(u8::is_ascii_digit),
        [first, rest @ ..] => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        [] => false,
    }
}

/// Every `&` that does not start a reference, escaped; with the count. CDATA sections and
/// comments are left alone (an `&` is literal there).
fn escape_stray_amps(text: &str) -> (String, usize) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let (mut copied, mut count, mut at) = (0, 0, 0);
    while let Some(i) = memchr::memchr2(b'&', b'<', &bytes[at..]).map(|i| at + i) {
        if bytes[i] == b'<' {
            let skip_to = if text[i..].starts_with("<![CDATA[") {
                text[i..].find("]]>").map(|e| i + e + 3)
            } else if text[i..].starts_with("<!--") {
                text[i..].find("-->").map(|e| i + e + 3)
            } else {
                None
            };
            at = skip_to.unwrap_or(i + 1);
            continue;
        }
        if bytes[i + 1..].starts_with(b"#X") && is_reference(&bytes[i + 1..]) {
            // XML allows only a lower-case x in a hexadecimal reference; HTML allows both.
            out.push_str(&text[copied..i]);
            out.push_str("&#x");
            copied = i + 3;
        } else if !is_reference(&bytes[i + 1..]) {
            out.push_str(&text[copied..i]);
            out.push_str("&amp;");
            copied = i + 1;
            count += 1;
        }
        at = i + 1;
    }
    out.push_str(&text[copied..]);
    (out, count)
}

/// Elements of an item that hold text, never each other: one opening while another is open
/// means the other was left unclosed (`<title>Unclosed <link>...</link>`).
const LEAVES: &[&str] = &[
    "title",
    "link",
    "guid",
    "pubDate",
    "description",
    "author",
    "comments",
    "category",
    "id",
    "updated",
    "published",
    "summary",
];

struct Balanced {
    text: String,
    notes: Vec<String>,
    cut_short: bool,
    complete_entries: usize,
}

fn is_entry(name: &str) -> bool {
    matches!(name.rsplit(':').next(), Some("item" | "entry"))
}

/// The document with its element tree mended (see the module's notes), and what was done. A
/// document cut short keeps its complete entries only: the unfinished last one is dropped, as
/// a half-read entry stored now would be an entry that never was.
fn balance(text: &str) -> Balanced {
    let mut tree = Tree::default();
    let mut offset = 0;
    'doc: while offset < text.len() {
        let rest = &text[offset..];
        let mut reader = Reader::from_str(rest);
        let cfg = reader.config_mut();
        cfg.check_end_names = false;
        cfg.check_comments = false;
        loop {
            let before = reader.buffer_position() as usize;
            let Ok(event) = reader.read_event() else {
                // Drop from where the bad markup starts to the next tag, and read on.
                tree.skipped += 1;
                if tree.skipped > MAX_SKIPS {
                    break 'doc;
                }
                // Past the first character of the bad run, whatever its width (a run starts at
                // '<' or '&' today; nothing here depends on it).
                let bad = offset + before;
                let from = bad + text[bad..].chars().next().map_or(1, char::len_utf8);
                offset = text[from..].find('<').map_or(text.len(), |i| from + i);
                continue 'doc;
            };
            let Some(raw) = rest.get(before..reader.buffer_position() as usize) else {
                break 'doc;
            };
            match event {
                Event::Eof => break 'doc,
                Event::Start(ref e) => tree.start(e.name().as_ref(), raw),
                Event::End(ref e) => tree.end(e.name().as_ref(), raw),
                _ => tree.out.push_str(raw),
            }
        }
    }
    tree.finish()
}

/// The mended document as it is written, and what mending it took.
#[derive(Default)]
struct Tree {
    out: String,
    /// The elements open, outermost first.
    stack: Vec<String>,
    closed: usize,
    dropped_ends: usize,
    skipped: usize,
    /// Where the output stood after the last entry that ended, and the elements open then.
    last_entry_end: Option<(usize, Vec<String>)>,
    complete_entries: usize,
}

impl Tree {
    /// Closes the innermost open element; returns its name.
    fn close(&mut self) -> String {
        let open = self.stack.pop().expect("callers check the stack");
        self.out.push_str(&format!("</{open}>"));
        self.closed += 1;
        open
    }

    fn start(&mut self, name: &str, raw: &str) {
        let in_leaf = self
            .stack
            .last()
            .is_some_and(|top| LEAVES.contains(&top.as_str()));
        if LEAVES.contains(&name) && in_leaf {
            self.close();
        }
        self.stack.push(name.to_string());
        self.out.push_str(raw);
    }

    /// An end tag closes what is open inside its element; one with no start is dropped.
    fn end(&mut self, name: &str, raw: &str) {
        let Some(at) = self.stack.iter().rposition(|n| n == name) else {
            self.dropped_ends += 1;
            return;
        };
        let mut entry_ended = is_entry(name);
        while self.stack.len() > at + 1 {
            entry_ended |= is_entry(&self.close());
        }
        self.stack.pop();
        self.out.push_str(raw);
        if entry_ended {
            self.complete_entries += 1;
            self.last_entry_end = Some((self.out.len(), self.stack.clone()));
        }
    }

    /// Closes what the document left open (back to its last complete entry, if it was cut
    /// inside one) and says what was done.
    fn finish(mut self) -> Balanced {
        let cut_short = !self.stack.is_empty();
        let mut notes = Vec::new();
        if cut_short {
            let unfinished = self.stack.iter().any(|n| is_entry(n));
            match self.last_entry_end.take().filter(|_| unfinished) {
                Some((len, open)) => {
                    self.out.truncate(len);
                    self.stack = open;
                    notes.push(format!(
                        "the document was cut short: kept its {} complete entries, dropped the \
                         unfinished last one",
                        self.complete_entries
                    ));
                }
                None => notes.push("the document was cut short".to_string()),
            }
            while !self.stack.is_empty() {
                self.close();
            }
        }
        let counted = [
            (self.skipped, "dropped {} unreadable run(s) of markup"),
            (self.dropped_ends, "dropped {} end tag(s) with no start"),
            (self.closed, "closed {} element(s) left open"),
        ];
        for (n, what) in counted {
            if n > 0 {
                notes.push(what.replace("{}", &n.to_string()));
            }
        }
        Balanced {
            text: self.out,
            notes,
            cut_short,
            complete_entries: self.complete_entries,
        }
    }
}

/// `text` without the element that is open at byte `position` (the innermost one that started
/// at or before it), and that element's name; `None` when there is none.
pub fn drop_element_at(text: &str, position: usize) -> Option<(String, String)> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = false;
    // (name, start of its start tag)
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut target: Option<(String, usize, usize)> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().ok()?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Eof => return None,
            Event::Start(ref e) => {
                let name = e.name().as_ref().to_string();
                if after >= position && target.is_none() {
                    // feed-rs reports the position just past the start tag it was reading.
                    target = Some((name.clone(), before, stack.len()));
                }
                stack.push((name, before));
            }
            Event::Empty(ref e) if target.is_none() && after >= position => {
                let name = e.name().as_ref().to_string();
                let mut out = text[..before].to_string();
                out.push_str(&text[after..]);
                return Some((out, name));
            }
            Event::End(_) => {
                let depth = stack.len().saturating_sub(1);
                stack.pop();
                if let Some((name, start, d)) = &target
                    && *d == depth
                {
                    let mut out = text[..*start].to_string();
                    out.push_str(&text[after..]);
                    return Some((out, name.clone()));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stray_ampersands_are_escaped_references_kept() {
        let (out, n) = escape_stray_amps("<a>AT&T &amp; x?a=1&b=2 &#38; &#X26; &nbsp; &</a>");
        assert_eq!(
            out,
            "<a>AT&amp;T &amp; x?a=1&amp;b=2 &#38; &#x26; &nbsp; &amp;</a>"
        );
        assert_eq!(n, 3);
        let (out, n) = escape_stray_amps("<a><![CDATA[a & b]]><!-- & --></a>");
        assert_eq!((out.as_str(), n), ("<a><![CDATA[a & b]]><!-- & --></a>", 0));
    }

    #[test]
    fn a_document_cut_short_keeps_its_complete_entries_only() {
        let b = balance("<rss><channel><item><title>One</title></item><item><title>Tw");
        assert_eq!(
            b.text,
            "<rss><channel><item><title>One</title></item></channel></rss>"
        );
        assert!(
            b.notes[0].contains("kept its 1 complete entries"),
            "{:?}",
            b.notes
        );
        assert!(b.cut_short);
        let b = balance("<rss><channel><item><title>cut off");
        assert_eq!((b.cut_short, b.complete_entries), (true, 0));
    }

    #[test]
    fn stray_end_tags_go_and_unclosed_children_close_with_their_parent() {
        let b = balance("<rss><item><b>bold</item></p></rss>");
        assert_eq!(b.text, "<rss><item><b>bold</b></item></rss>");
        let b = balance("<rss><item><title>Unclosed <link>http://x/</link></item></rss>");
        assert_eq!(
            b.text,
            "<rss><item><title>Unclosed </title><link>http://x/</link></item></rss>"
        );
    }

    #[test]
    fn reading_goes_on_after_a_run_it_cannot_read() {
        // quick-xml refuses the bare '&'; what follows it is still read.
        let b =
            balance("<rss><item><title>t</title></item>é & <item><title>u</title></item></rss>");
        assert!(b.text.contains("<title>u</title>"), "{}", b.text);
    }

    #[test]
    fn the_element_at_a_position_is_dropped() {
        let doc = "<rss><item><media:description/><title>t</title></item></rss>";
        let at = doc.find("<media").unwrap() + 5;
        let (out, name) = drop_element_at(doc, at).unwrap();
        assert_eq!(name, "media:description");
        assert_eq!(out, "<rss><item><title>t</title></item></rss>");
    }
}
