//! What "safe to republish" means, checked on what a feed reader receives: each output is parsed
//! back with feed-rs and every entry's HTML and title is inspected. Shared by the hostile-input
//! tests and the fuzz target (fuzz/fuzz_targets/pipeline.rs includes this file).
#![allow(dead_code)]

/// Elements that must never reach a reader.
const FORBIDDEN_TAGS: &[&str] = &[
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
    "template",
    "noscript",
    // SVG that runs, animates (an animation can set an href to javascript:), reuses external
    // content or embeds foreign markup. Static SVG and MathML are allowed.
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

/// URL-carrying attributes whose scheme is checked.
const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "cite",
    "background",
    "xlink:href",
    "srcset",
];

fn decode_entities(s: &str) -> String {
    // Enough of HTML's character references to see through obfuscated schemes: numeric ones and
    // the named ones attackers use inside URLs.
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|e| e + 1)
            .unwrap_or(rest.len());
        let name = &rest[1..end];
        let decoded = if let Some(num) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
        {
            u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
        } else if let Some(num) = name.strip_prefix('#') {
            num.parse::<u32>().ok().and_then(char::from_u32)
        } else {
            match name.to_ascii_lowercase().as_str() {
                "colon" => Some(':'),
                "tab" => Some('\t'),
                "newline" => Some('\n'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => None,
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end..];
                if rest.starts_with(';') {
                    rest = &rest[1..];
                }
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every dangerous thing in one piece of republished HTML.
pub fn html_dangers(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    for tag in FORBIDDEN_TAGS {
        let open = format!("<{tag}");
        let mut from = 0;
        while let Some(at) = lower[from..].find(&open) {
            let next = lower[from + at + open.len()..].chars().next();
            if next.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-') {
                found.push(format!("<{tag}> element"));
                break;
            }
            from += at + open.len();
        }
    }
    // Attributes inside tags. As in HTML's tokenizer, a tag starts with '<' and a letter; a '<'
    // followed by anything else is text.
    let mut rest = lower.as_str();
    while let Some(start) = rest.find('<') {
        if !rest[start + 1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            rest = &rest[start + 1..];
            continue;
        }
        let tag_end = rest[start..]
            .find('>')
            .map(|e| start + e)
            .unwrap_or(rest.len());
        let tag = &rest[start..tag_end];
        for (name, value) in attributes(tag) {
            if name.starts_with("on") {
                found.push(format!("event handler {name}"));
            }
            if name == "style" {
                found.push("style attribute".into());
            }
            if URL_ATTRS.contains(&name.as_str()) {
                // As a browser reads it: entities decoded, white space and controls dropped. A
                // URL with a scheme other than http(s)/mailto is flagged; one without a scheme is
                // relative, and a relative URL cannot carry script.
                let url: String = decode_entities(&value)
                    .chars()
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .collect();
                let url = url.to_ascii_lowercase();
                let scheme = url.split_once(':').map(|(s, _)| s).filter(|s| {
                    s.starts_with(|c: char| c.is_ascii_alphabetic())
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                });
                if scheme.is_some_and(|s| !matches!(s, "http" | "https" | "mailto")) {
                    found.push(format!("{name}={value:?} is not an http(s)/mailto URL"));
                }
            }
        }
        rest = &rest[tag_end.min(rest.len())..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1.min(rest.len())..];
    }
    // CSS (expression(), url(javascript:)) can only act through a style attribute or a <style>
    // element, both flagged above.
    found
}

/// `name="value"` pairs of one tag (lower-cased source), tolerant of every quoting style.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let body = tag.trim_start_matches('<');
    let mut chars = body.char_indices().peekable();
    // Skip the element name.
    while let Some((_, c)) = chars.peek() {
        if c.is_whitespace() || *c == '/' {
            break;
        }
        chars.next();
    }
    loop {
        while chars
            .peek()
            .is_some_and(|(_, c)| c.is_whitespace() || *c == '/')
        {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        while chars
            .peek()
            .is_some_and(|(_, c)| !c.is_whitespace() && *c != '=' && *c != '/')
        {
            chars.next();
        }
        let end = chars.peek().map(|(i, _)| *i).unwrap_or(body.len());
        let name = body[start..end].to_string();
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|(_, c)| *c == '=') {
            chars.next();
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
            match chars.peek().map(|(_, c)| *c) {
                Some(q @ ('"' | '\'')) => {
                    chars.next();
                    for (_, c) in chars.by_ref() {
                        if c == q {
                            break;
                        }
                        value.push(c);
                    }
                }
                _ => {
                    while let Some((_, c)) = chars.peek() {
                        if c.is_whitespace() {
                            break;
                        }
                        value.push(*c);
                        chars.next();
                    }
                }
            }
        }
        if name.is_empty() {
            break;
        }
        out.push((name, value));
    }
    out
}

/// Elements that load, run or reparse something even with no attribute.
const TITLE_FORBIDDEN: &[&str] = &[
    "img",
    "image",
    "video",
    "audio",
    "picture",
    "source",
    "title",
    "plaintext",
    "xmp",
    "listing",
    "noembed",
    "noframes",
];

/// A title must read as plain text: nothing a careless reader (one that renders titles as HTML)
/// could render as markup that loads, runs or hides anything. A bare word in brackets
/// (`<blink>`, `</b>`: text a source typed as plain text) is inert; a tag with attributes, a
/// comment or declaration, or a forbidden element is not.
pub fn title_dangers(title: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = title;
    while let Some(at) = rest.find('<') {
        let tail = &rest[at + 1..];
        rest = tail;
        let Some(first) = tail.chars().next() else {
            break;
        };
        if matches!(first, '!' | '?') {
            found.push(format!("title holds a comment or declaration: {title:?}"));
            continue;
        }
        let body = tail.strip_prefix('/').unwrap_or(tail);
        if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let lower = name.to_ascii_lowercase();
        let bare = body[name.len()..].starts_with('>');
        if !bare
            || FORBIDDEN_TAGS.contains(&lower.as_str())
            || TITLE_FORBIDDEN.contains(&lower.as_str())
        {
            found.push(format!("title looks like markup: {title:?}"));
        }
    }
    found
}

/// Everything dangerous in a rendered output, read back as a feed reader would.
pub fn feed_dangers(body: &[u8]) -> Vec<String> {
    let feed = match feed_rs::parser::parse(body) {
        Ok(f) => f,
        Err(e) => return vec![format!("the output does not parse: {e}")],
    };
    let mut found = Vec::new();
    for e in &feed.entries {
        if let Some(t) = &e.title {
            found.extend(title_dangers(&t.content));
        }
        for html in [
            e.summary.as_ref().map(|s| s.content.as_str()),
            e.content.as_ref().and_then(|c| c.body.as_deref()),
        ]
        .into_iter()
        .flatten()
        {
            found.extend(html_dangers(html));
        }
        for l in &e.links {
            let href = l.href.to_ascii_lowercase();
            if !(href.starts_with("http://") || href.starts_with("https://")) {
                found.push(format!("link {:?}", l.href));
            }
        }
    }
    found
}
