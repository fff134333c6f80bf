//! Entry dates. feed-rs parses every date leniently: it rewrites the text with a dozen regular
//! expressions (a wrong weekday, "UTC", long month names, a missing colon in the offset) and
//! then tries RFC 3339, RFC 2822 and RFC 1123 in turn. That cost 3.5% of a cold pass's CPU,
//! spent on dates that were valid to begin with. Here the strict forms go first; only a date
//! neither accepts goes through the same repairs as feed-rs's.
//!
//! The repairs are feed-rs 3.0.0's own (`parser/util`, MIT licence), kept in the same order
//! so that every date feed-rs reads comes out as feed-rs's default parser gives it; a test
//! holds the two side by side. What neither reads goes to `dates/forms.rs`: the other forms
//! feedparser's date tests list (ISO 8601 without zone or seconds, SQL-style, RFC 822 with a
//! two-digit year, named US zones, asctime, day and month swapped, ...).

mod forms;

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

/// The instant `text` names, if it is a date in any form feeds are seen to use.
pub fn timestamp(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    // A date the strict grammars accept is one no repair below would change the meaning of:
    // the RFC 3339 repairs match only an offset without a colon or a date without a time, and
    // the RFC 2822 ones only forms chrono rejects or reads the same (weekday, "-0000").
    DateTime::parse_from_rfc3339(t)
        .or_else(|_| DateTime::parse_from_rfc2822(t))
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| lenient(text))
        .or_else(|| forms::read(t))
}

/// feed-rs's `parse_timestamp_lenient`.
fn lenient(original: &str) -> Option<DateTime<Utc>> {
    let repaired = |fixes: &[(Regex, &str)]| {
        let mut text = original.trim().to_string();
        for (pattern, replacement) in fixes {
            text = pattern.replace(&text, *replacement).into_owned();
        }
        text
    };
    DateTime::parse_from_rfc3339(repaired(&RFC3339).trim())
        .or_else(|_| DateTime::parse_from_rfc2822(&repaired(&RFC2822)))
        .or_else(|_| DateTime::parse_from_str(&repaired(&RFC1123), "%d %b %Y %H:%M:%S %z"))
        .map(|d| d.with_timezone(&Utc))
        .ok()
}

fn fixes(list: &[(&str, &'static str)]) -> Vec<(Regex, &'static str)> {
    list.iter()
        .map(|(p, r)| (Regex::new(p).expect("a valid pattern"), *r))
        .collect()
}

static RFC3339: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    fixes(&[
        // the offset's missing colon
        (r"(\+|-)(\d{2})(\d{2})", "${1}${2}:${3}"),
        // a date alone: midnight UTC
        (r"-\d{2}$", "${0}T00:00:00+00:00"),
    ])
});

static RFC2822: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    fixes(&[
        ("(UTC|-0000$)", "+0000"),
        // the weekday, often wrong or not an abbreviation ("Thurs")
        ("(Sun|Mon|Tue|Wed|Thu|Fri|Sat)[a-z]*, ", ""),
        // long month names
        (
            "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*",
            "$1",
        ),
        // month before day
        (
            "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\\d{1,2}) (\\d{4})",
            "$2 $1 $3",
        ),
        // hour 24 of the same day
        (" 24:", " 00:"),
        // a one-digit hour
        (" ([0-9]):", " 0${1}:"),
    ])
});

static RFC1123: LazyLock<Vec<(Regex, &'static str)>> =
    LazyLock::new(|| fixes(&[(" Z$", " +0000"), ("^[[:alpha:]]{3}, ", "")]));

#[cfg(test)]
mod tests {
    use super::*;

    /// The date feed-rs's default parser reads from `text`, as an RSS pubDate.
    fn feed_rs_reads(text: &str) -> Option<DateTime<Utc>> {
        let xml = format!(
            "<rss version=\"2.0\"><channel><title>t</title><item><title>i</title>\
             <pubDate>{text}</pubDate></item></channel></rss>"
        );
        let feed = feed_rs::parser::parse(xml.as_bytes()).expect("the test feed parses");
        feed.entries[0].published
    }

    #[test]
    fn every_date_reads_as_feed_rs_reads_it() {
        let dates = [
            // valid
            "Tue, 15 Nov 2022 20:15:04 +0000",
            "Tue, 15 Nov 2022 20:15:04 GMT",
            "15 Nov 2022 20:15:04 -0500",
            "Tue, 15 Nov 2022 20:15:04 EST",
            "Tue, 15 Nov 2022 20:15 +0100",
            "2022-11-15T20:15:04Z",
            "2022-11-15T20:15:04.123456+05:30",
            "2022-11-15t20:15:04z",
            "2022-11-15 20:15:04+00:00",
            "  2022-11-15T20:15:04-08:00\n",
            // repaired
            "Wed, 15 Nov 2022 20:15:04 +0000",
            "Thurs, 17 Nov 2022 20:15:04 GMT",
            "Tuesday, 15 November 2022 20:15:04 +0000",
            "Tue, 15 Nov 2022 20:15:04 UTC",
            "Tue, 15 Nov 2022 20:15:04 -0000",
            "Tue, Nov 15 2022 20:15:04 +0000",
            "Tue, 15 Nov 2022 24:15:04 +0000",
            "Tue, 15 Nov 2022 8:15:04 +0000",
            "Tue, 15 Nov 2022 20:15:04 Z",
            "2022-11-15T20:15:04+0000",
            "2022-11-15T20:15:04-0530",
            "2022-11-15",
            "15 Nov 2022 20:15:04 Z",
            // hopeless
            "",
            "yesterday",
            "2022-13-45T99:99:99Z",
            "Tue, 32 Nov 2022 20:15:04 +0000",
            "1668543304",
        ];
        for d in dates {
            if let Some(read) = feed_rs_reads(d) {
                assert_eq!(timestamp(d), Some(read), "{d:?}");
            }
        }
        for hopeless in [
            "",
            "yesterday",
            "2022-13-45T99:99:99Z",
            "Tue, 32 Nov 2022 20:15:04 +0000",
            "1668543304",
        ] {
            assert_eq!(timestamp(hopeless), None, "{hopeless:?}");
        }
        assert!(timestamp("Tue, 15 Nov 2022 20:15:04 +0000").is_some());
        assert!(timestamp("Thurs, 17 Nov 2022 20:15:04 GMT").is_some());
    }

    #[test]
    fn generated_dates_read_as_feed_rs_reads_them() {
        // Every field mangled in the ways the repairs address, and some they don't.
        let weekdays = ["", "Tue, ", "Wed, ", "Thursday, ", "Xyz, "];
        let days = ["5", "05", "15", "31"];
        let months = ["Nov", "November", "Feb", "nov"];
        let times = ["20:15:04", "8:15:04", "24:00:00", "20:15"];
        let zones = ["+0000", "-0000", "GMT", "UTC", "Z", "+05:30", "PST", ""];
        let mut n = 0;
        for w in weekdays {
            for d in days {
                for m in months {
                    for t in times {
                        for z in zones {
                            let text = format!("{w}{d} {m} 2022 {t} {z}");
                            // Where feed-rs reads a date we read the same; where it does not,
                            // forms.rs may (its own tests say what it reads).
                            if let Some(read) = feed_rs_reads(&text) {
                                assert_eq!(timestamp(&text), Some(read), "{text:?}");
                            }
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(n, 5 * 4 * 4 * 4 * 8);
    }
}
