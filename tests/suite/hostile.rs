//! Hostile content: classic XSS vectors in every field of every input format must come out of
//! every output format harmless; XML entity attacks and oversized feeds fail or are cut, fast
//! and clearly.

use std::time::{Duration, Instant};

use crate::common::oracle::{feed_dangers, html_dangers, title_dangers};
use crate::common::render::render_all;
use crate::common::*;

fn vectors() -> Vec<String> {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/hostile/vectors.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One vector placed in every HTML-carrying field each input format has.
fn documents(v: &str) -> Vec<(&'static str, String)> {
    let esc = xml_escape(v);
    let cdata = v.replace("]]>", "]]]]><![CDATA[>");
    let json = serde_json::to_string(v).unwrap();
    vec![
        (
            "rss-cdata",
            format!(
                "<rss version=\"2.0\"><channel><title>t</title><item><title><![CDATA[{cdata}]]></title><guid>1</guid>\
             <description><![CDATA[{cdata}]]></description></item></channel></rss>"
            ),
        ),
        (
            "rss-escaped",
            format!(
                "<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>t</title>\
             <item><title>{esc}</title><guid>1</guid><description>{esc}</description><content:encoded>{esc}</content:encoded></item></channel></rss>"
            ),
        ),
        (
            "atom-html",
            format!(
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><id>x</id><updated>2026-11-23T10:00:00Z</updated>\
             <entry><id>1</id><updated>2026-11-23T10:00:00Z</updated><title type=\"html\">{esc}</title>\
             <summary type=\"html\">{esc}</summary><content type=\"html\">{esc}</content></entry></feed>"
            ),
        ),
        (
            "json",
            format!(
                "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"t\",\"items\":[{{\"id\":\"1\",\"title\":{json},\
             \"summary\":{json},\"content_html\":{json}}}]}}"
            ),
        ),
    ]
}

#[test]
fn every_classic_xss_vector_is_harmless_in_every_format() {
    let mut failures = Vec::new();
    for v in vectors() {
        for (kind, doc) in documents(&v) {
            let outputs = match render_all(doc.as_bytes(), None, "https://hostile.example/feed") {
                Ok(o) => o,
                Err(_) => continue, // refusing a document is safe too
            };
            for (format, body) in outputs {
                let dangers = feed_dangers(body.as_bytes());
                if !dangers.is_empty() {
                    failures.push(format!("{kind} → {format:?}: {v}\n    {dangers:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} unsafe outputs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn harmless_content_survives_sanitising() {
    let outputs = render_all(
        documents("<p>Safe paragraph that must survive.</p>")[0]
            .1
            .as_bytes(),
        None,
        "https://x.example/",
    )
    .unwrap();
    for (format, body) in outputs {
        assert!(
            body.contains("Safe paragraph that must survive."),
            "{format:?}: {body}"
        );
    }
}

#[test]
fn atom_xhtml_and_mixed_cdata_payloads() {
    let body = std::fs::read(format!(
        "{}/fixtures/hostile/xhtml.atom",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let outputs = render_all(&body, None, "https://hostile.example/atom").unwrap();
    for (format, out) in outputs {
        let dangers = feed_dangers(out.as_bytes());
        assert!(dangers.is_empty(), "{format:?}: {dangers:?}\n{out}");
        assert!(
            out.contains("Intro") && out.contains("End"),
            "{format:?}: the harmless text survives\n{out}"
        );
        assert!(
            !out.contains("alert("),
            "{format:?}: no payload text at all\n{out}"
        );
    }
}

#[test]
fn the_oracle_sees_what_it_should() {
    assert!(html_dangers("<p>ok <a href=\"https://x\" rel=\"noopener\">x</a></p>").is_empty());
    assert!(!html_dangers("<SCRIPT>alert(1)</SCRIPT>").is_empty());
    assert!(!html_dangers("<a href=\"jav&#x09;ascript&colon;alert(1)\">x</a>").is_empty());
    assert!(!html_dangers("<img src=x onerror=alert(1)>").is_empty());
    assert!(!html_dangers("<a href='data:text/html,x'>").is_empty());
    assert!(!html_dangers("<p style=\"x\">").is_empty());
    assert!(html_dangers("<p>scripture &lt;script&gt; is text</p>").is_empty());
    assert!(!title_dangers("<img src=x>").is_empty());
    assert!(!title_dangers("<img>").is_empty());
    assert!(!title_dangers("<b onclick=x>").is_empty());
    assert!(!title_dangers("</script>").is_empty());
    assert!(!title_dangers("<!-- x -->").is_empty());
    assert!(title_dangers("5 < 6 and AT&T").is_empty());
    assert!(title_dangers("History of the <blink> tag").is_empty());
}

fn hostile_url(name: &str) -> String {
    format!(
        "file://{}/fixtures/hostile/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn entity_attacks_fail_fast_with_a_clear_error_and_the_other_feeds_are_stored() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    let feeds = [
        hostile_url("billion-laughs.xml"),
        hostile_url("xxe.xml"),
        hostile_url("quadratic.xml"),
        server.feed("theblock.rdf"),
    ];
    work.write_config(&config_with(
        &feeds.iter().map(String::as_str).collect::<Vec<_>>(),
        "",
    ));
    let started = Instant::now();
    let run = work.run_once();
    assert_ok(&run);
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = stderr(&run);
    for name in ["billion-laughs.xml", "xxe.xml", "quadratic.xml"] {
        let line = err
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not reported:\n{err}"));
        assert!(line.contains("declares its own XML entities"), "{line}");
    }
    assert!(
        !work.read("out/all.rss").contains("root:"),
        "no local file content leaks"
    );
    assert_eq!(work.store().entry_count().unwrap(), 2);
}

#[test]
fn oversized_feeds_are_cut_to_the_limits_and_say_so() {
    let server = FixtureServer::start();
    let work = Workdir::new();
    // 120 entries, one with a 300 KiB description and one nested 500 deep.
    let mut items = String::new();
    for i in 0..120 {
        let body = match i {
            0 => "x".repeat(300 * 1024),
            1 => "<b>".repeat(500) + "deep",
            _ => format!("entry {i}"),
        };
        items.push_str(&format!(
            "<item><title>Item {i}</title><guid>{i}</guid><pubDate>{}</pubDate><description>{}</description></item>",
            (chrono::Utc::now() - chrono::Duration::minutes(i)).to_rfc2822(),
            xml_escape(&body)
        ));
    }
    server.write(
        "big.rss",
        format!("<rss version=\"2.0\"><channel><title>big</title>{items}</channel></rss>")
            .as_bytes(),
    );
    let deep = "<x>".repeat(200) + &"</x>".repeat(200);
    server.write(
        "deep.xml",
        format!("<rss version=\"2.0\"><channel><title>d</title>{deep}</channel></rss>").as_bytes(),
    );
    let config = config_with(&[&server.feed("big.rss"), &server.feed("deep.xml")], "")
        + "\n[limits]\nmax_entries = 100\nmax_field = \"64KiB\"\nmax_depth = 64\n";
    work.write_config(&config.replace("max_body = \"1MiB\"", "max_body = \"2MiB\""));
    let run = work.run_once();
    assert_ok(&run);
    let err = stderr(&run);
    assert!(
        err.contains("note: ")
            && err.contains("kept the newest 100 of 120 entries (limits.max_entries)"),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("deep.xml") && l.contains("more than 64 deep (limits.max_depth)")),
        "{err}"
    );
    assert_eq!(work.store().entry_count().unwrap(), 100);
    let all = work.output("out/all.json");
    let titles: Vec<String> = all
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert!(
        titles.contains(&"Item 0".to_string()) && !titles.contains(&"Item 119".to_string()),
        "the newest are kept"
    );
    let first = all
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == "Item 0")
        .unwrap();
    let len = first
        .content
        .as_ref()
        .and_then(|c| c.body.as_ref())
        .map(String::len)
        .unwrap_or(0)
        + first.summary.as_ref().map(|s| s.content.len()).unwrap_or(0);
    assert!(
        len <= 64 * 1024 + 64,
        "the field is cut at max_field: {len}"
    );
}

/// Found by fuzzing: an XML declaration in the middle of a document made quick-xml panic while
/// switching encodings.
#[test]
fn a_late_xml_declaration_does_not_crash_the_parser() {
    let body = std::fs::read(format!(
        "{}/fixtures/hostile/fuzz-late-xml-declaration.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let _ = render_all(&body, None, "https://fuzz.example/feed/");
    let _ = render_all(
        &body,
        Some("text/xml; charset=iso-8859-1"),
        "https://fuzz.example/feed/",
    );
    let doc = "<rss version=\"2.0\"><channel><title>t</title><item><title>a</title><guid>1</guid></item>\
               <?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><item><title>b</title><guid>2</guid></item></channel></rss>";
    let outputs = render_all(doc.as_bytes(), None, "https://x.example/").unwrap();
    assert!(outputs[0].1.contains(">b<"), "{}", outputs[0].1);
}

/// Found by fuzzing, a false alarm of the oracle: "< &l;IMG SRC=...>" in a plain-text summary
/// is text to an HTML parser ('<' then a space opens no tag). The case stays as a regression
/// test of both the pipeline and the oracle.
#[test]
fn less_than_space_is_text_not_a_tag() {
    let body = std::fs::read(format!(
        "{}/fixtures/hostile/fuzz-lt-space-in-summary.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for (format, out) in render_all(&body, None, "https://fuzz.example/feed/").unwrap() {
        assert!(
            feed_dangers(out.as_bytes()).is_empty(),
            "{format:?}: {:?}",
            feed_dangers(out.as_bytes())
        );
    }
    assert!(html_dangers("a < b onerror=x> c").is_empty());
    // And a second false alarm: "https:/host" is an https URL.
    let body = std::fs::read(format!(
        "{}/fixtures/hostile/fuzz-single-slash-https.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for (format, out) in render_all(&body, None, "https://fuzz.example/feed/").unwrap() {
        assert!(
            feed_dangers(out.as_bytes()).is_empty(),
            "{format:?}: {:?}",
            feed_dangers(out.as_bytes())
        );
    }
    assert!(!html_dangers("<a href=\"java&#x09;script:x\">").is_empty());
    assert!(!html_dangers("<b onerror=x>").is_empty());
}

/// Found by fuzzing: markup escaped in layers survived plain-text conversion into JSON Feed's
/// summary; plain text now never holds a '<' that opens a tag.
#[test]
fn layered_escapes_never_leave_markup_in_plain_text() {
    let body = std::fs::read(format!(
        "{}/fixtures/hostile/fuzz-markup-in-plain-summary.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for (format, out) in render_all(&body, None, "https://fuzz.example/feed/").unwrap() {
        assert!(
            feed_dangers(out.as_bytes()).is_empty(),
            "{format:?}: {:?}",
            feed_dangers(out.as_bytes())
        );
    }
}

/// A fuzzer's finding, rendered in every format: it must not panic, and, where it is read as a
/// feed, nothing dangerous may come out. Returns how many outputs it rendered.
fn fuzz_finding_renders_safely(name: &str) -> usize {
    let body = std::fs::read(format!(
        "{}/fixtures/hostile/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let outputs = render_all(&body, None, "https://fuzz.example/feed/").unwrap_or_default();
    for (format, out) in &outputs {
        let dangers = feed_dangers(out.as_bytes());
        assert!(dangers.is_empty(), "{name} {format:?}: {dangers:?}");
    }
    outputs.len()
}

/// Found by fuzzing: feed-rs 3.0.0 panicked on an author whose e-mail address runs into a
/// character of several bytes (here a U+FFFD the decoder put for an invalid byte). Now it is
/// read, and nothing dangerous comes out.
#[test]
fn an_address_against_a_wide_character_does_not_crash_the_parser() {
    assert_eq!(
        fuzz_finding_renders_safely("fuzz-email-beside-multibyte.bin"),
        3
    );
}

/// Found by fuzzing: a title kept literally (Atom `type="text"`), then cut to its length,
/// ended in half a tag (`</channel…`) that defanging never saw. Titles are now cut first.
#[test]
fn a_long_literal_title_is_never_cut_inside_a_tag() {
    assert_eq!(
        fuzz_finding_renders_safely("fuzz-literal-title-cut-inside-a-tag.bin"),
        3
    );
}

/// Found by fuzzing: a date whose zone name ("GMT") runs into a character of several bytes
/// made the date reader slice inside that character.
#[test]
fn a_zone_name_against_a_wide_character_is_no_date_and_no_crash() {
    fuzz_finding_renders_safely("fuzz-zone-name-before-wide-character.bin");
}

/// Found by fuzzing: a byte-order mark after the XML declaration made quick-xml count
/// positions that fell inside the mark, and the recovery pass sliced there.
#[test]
fn a_byte_order_mark_after_the_declaration_is_read_past() {
    fuzz_finding_renders_safely("fuzz-bom-after-the-declaration.bin");
    let bom_first = "<?xml version=\"1.0\"?>\u{feff}<rss version=\"2.0\"><channel><item><title>t</title><guid>1</guid></item></channel></rss>";
    let feed = aggregate::parse::parse(
        bom_first.as_bytes(),
        None,
        &url::Url::parse("https://bom.example/rss").unwrap(),
        &aggregate::parse::Limits::default(),
    )
    .unwrap();
    assert_eq!(feed.entries[0].title, "t");
}
