//! Dates in the forms that neither RFC 3339 nor RFC 2822 (nor feed-rs's repairs) read, but
//! that real feeds write and feedparser reads: ISO 8601 without seconds or zone
//! (`2018-01-06T08:00`), SQL style (`2006-01-11 16:43:22 -0800`), a year or a month alone,
//! RFC 822 with a two-digit year, no seconds or no time, named zones (US `ET`, `MEST`,
//! `Etc/GMT`, `GMT-01:01`), asctime (`Sun Jan  4 16:29:06 2004`), month before day, and
//! `2006/09/15`. A date without a zone is UTC, as feedparser reads it.
//!
//! Anything with a part that fits no role (a word that is no month, weekday or zone, a time
//! of four parts, an impossible day) is no date: a wrong date is worse than none, since the
//! entry then shows at its first-seen time.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use regex::Regex;

pub fn read(text: &str) -> Option<DateTime<Utc>> {
    iso_like(text).or_else(|| words(text))
}

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4})(?:-(\d{1,3})(?:-(\d{1,2}))?)?(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$",
    )
    .expect("static regex")
});

/// `2003`, `2003-12`, `2003-12-31`, `2018-01-06T08:00`, `2004-07-08 23:56:58.0`,
/// `2006-01-11 16:43:22 -0800`, Google's `2003-012-31`.
fn iso_like(text: &str) -> Option<DateTime<Utc>> {
    let c = ISO.captures(text)?;
    let num = |i: usize| c.get(i).map(|m| m.as_str().parse::<u32>().ok());
    let year = c[1].parse::<i32>().ok()?;
    let date =
        NaiveDate::from_ymd_opt(year, num(2).unwrap_or(Some(1))?, num(3).unwrap_or(Some(1))?)?;
    let time = NaiveTime::from_hms_opt(
        num(4).unwrap_or(Some(0))?,
        num(5).unwrap_or(Some(0))?,
        num(6).unwrap_or(Some(0))?,
    )?;
    let offset = match c.get(7).map(|m| m.as_str()) {
        None | Some("Z" | "z") => 0,
        Some(z) => numeric_offset(z)?,
    };
    Some(utc(date.and_time(time), offset))
}

/// Seconds east of UTC for `+hh`, `+hhmm`, `+hh:mm`; `None` for anything else (the sign is
/// required: what follows "GMT" may be any character, found by fuzzing).
fn numeric_offset(z: &str) -> Option<i64> {
    let (sign, rest) = match (z.strip_prefix('+'), z.strip_prefix('-')) {
        (Some(rest), _) => (1, rest),
        (_, Some(rest)) => (-1, rest),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits.get(2..).map_or(Some(0), |m| m.parse().ok())?;
    (h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn utc(local: NaiveDateTime, offset_secs: i64) -> DateTime<Utc> {
    (local - Duration::seconds(offset_secs)).and_utc()
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Zones by name, in hours east of UTC: RFC 822's, the US ones without S/D (as feedparser
/// reads Disney's feeds), and Europe's.
fn named_zone(name: &str) -> Option<i64> {
    let h = match name.to_ascii_uppercase().as_str() {
        "GMT" | "UT" | "UTC" | "Z" | "ETC/GMT" | "WET" => 0,
        "AT" | "EDT" => -4,
        "ET" | "EST" | "CDT" => -5,
        "CT" | "CST" | "MDT" => -6,
        "MT" | "MST" | "PDT" => -7,
        "PT" | "PST" => -8,
        "MET" | "CET" | "BST" | "WEST" => 1,
        "MEST" | "CEST" | "EET" => 2,
        "EEST" => 3,
        _ => return None,
    };
    Some(h * 3600)
}

/// RFC 822 and its relatives, read word by word: each word must be a weekday, a month, a day,
/// a year, a time, a `y/m/d` date or a zone, and each role is filled at most once.
fn words(text: &str) -> Option<DateTime<Utc>> {
    let (mut day, mut month, mut year, mut time, mut zone) = (None, None, None, None, None);
    for word in text.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
        let lower = word.to_ascii_lowercase();
        let bytes = word.as_bytes();
        if bytes[0].is_ascii_alphabetic() {
            let head = lower.get(..3).unwrap_or(&lower);
            if let Some(m) = MONTHS.iter().position(|m| *m == head) {
                if month.replace(m as u32 + 1).is_some() {
                    return None;
                }
            } else if WEEKDAYS.contains(&head) && lower.len() <= 9 {
                // A weekday says nothing a day and month do not (and is often wrong).
            } else if let Some(z) = zone_word(word) {
                if zone.replace(z).is_some() {
                    return None;
                }
            } else {
                return None;
            }
        } else if word.contains(':') {
            if time.replace(clock(word)?).is_some() {
                return None;
            }
        } else if word.starts_with(['+', '-']) {
            if zone.replace(numeric_offset(word)?).is_some() {
                return None;
            }
        } else if word.contains('/') {
            let parts: Vec<u32> = word
                .split('/')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let [y, m, d] = parts[..] else { return None };
            year = Some(i32::try_from(y).ok()?);
            month = Some(m);
            day = Some(d);
        } else {
            let n: u32 = word.parse().ok()?;
            match (word.len(), day) {
                (1 | 2, None) => day = Some(n),
                // Two digits: 70 and later are the 1900s, as RFC 2822 reads them.
                (2, Some(_)) if year.is_none() => {
                    year = Some(n as i32 + 1900 + 100 * (n < 70) as i32)
                }
                (4, _) if year.is_none() => year = Some(n as i32),
                _ => return None,
            }
        }
    }
    let date = NaiveDate::from_ymd_opt(year?, month?, day?)?;
    let time = time.unwrap_or(NaiveTime::MIN);
    Some(utc(date.and_time(time), zone.unwrap_or(0)))
}

/// A time of day, `hh:mm` or `hh:mm:ss`.
fn clock(word: &str) -> Option<NaiveTime> {
    let parts: Vec<u32> = word
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [h, m] => NaiveTime::from_hms_opt(h, m, 0),
        [h, m, s] => NaiveTime::from_hms_opt(h, m, s),
        _ => None,
    }
}

/// A zone written as a word: a name, or `GMT`/`UTC` followed by an offset (`GMT-01:01`).
fn zone_word(word: &str) -> Option<i64> {
    if let Some(z) = named_zone(word) {
        return Some(z);
    }
    let upper = word.to_ascii_uppercase();
    let rest = upper
        .strip_prefix("GMT")
        .or_else(|| upper.strip_prefix("UTC"))?;
    numeric_offset(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<DateTime<Utc>> {
        Some(
            NaiveDate::from_ymd_opt(y, mo, d)?
                .and_hms_opt(h, mi, s)?
                .and_utc(),
        )
    }

    /// The forms of feedparser 6's date tests (tests/runtests.py) that real feeds write.
    #[test]
    fn feedparsers_date_forms() {
        let cases = [
            ("2018-01-06T08:00", at(2018, 1, 6, 8, 0, 0)),
            ("2006-01-11 16:43:22 -0800", at(2006, 1, 12, 0, 43, 22)),
            ("2022-09-03 09:37:11+03:00", at(2022, 9, 3, 6, 37, 11)),
            ("2004-07-08 23:56:58 -00:20", at(2004, 7, 9, 0, 16, 58)),
            ("2004-07-08 23:56:58", at(2004, 7, 8, 23, 56, 58)),
            ("2004-07-08 23:56:58.0", at(2004, 7, 8, 23, 56, 58)),
            ("2003-12", at(2003, 12, 1, 0, 0, 0)),
            ("2003", at(2003, 1, 1, 0, 0, 0)),
            ("2003-012-31T10:14:55+00:00", at(2003, 12, 31, 10, 14, 55)),
            ("Thu, 01 Jan 04 19:48:21 GMT", at(2004, 1, 1, 19, 48, 21)),
            ("Thu,  5 Apr 2012 10:00:00 GMT", at(2012, 4, 5, 10, 0, 0)),
            (
                "Wed, 19 Aug 2009 18:28:00 Etc/GMT",
                at(2009, 8, 19, 18, 28, 0),
            ),
            (
                "Wed, 19 Feb 2012 22:40:00 GMT-01:01",
                at(2012, 2, 19, 23, 41, 0),
            ),
            (
                "Wed, 19 Feb 2012 22:40:00 -01:01",
                at(2012, 2, 19, 23, 41, 0),
            ),
            ("Mon, 13 Feb, 2012 06:28:00 UTC", at(2012, 2, 13, 6, 28, 0)),
            ("Thu, 01 Jan 2004 00:00 GMT", at(2004, 1, 1, 0, 0, 0)),
            ("Thu, 01 Jan 2004", at(2004, 1, 1, 0, 0, 0)),
            ("Thu, 30 Apr 2015 08:57:00 MET", at(2015, 4, 30, 7, 57, 0)),
            ("Thu, 30 Apr 2015 08:57:00 MEST", at(2015, 4, 30, 6, 57, 0)),
            (
                "Mon, 26 January 2004 16:31:00 AT",
                at(2004, 1, 26, 20, 31, 0),
            ),
            (
                "Mon, 26 January 2004 16:31:00 ET",
                at(2004, 1, 26, 21, 31, 0),
            ),
            (
                "Mon, 26 January 2004 16:31:00 CT",
                at(2004, 1, 26, 22, 31, 0),
            ),
            (
                "Mon, 26 January 2004 16:31:00 MT",
                at(2004, 1, 26, 23, 31, 0),
            ),
            (
                "Mon, 26 January 2004 16:31:00 PT",
                at(2004, 1, 27, 0, 31, 0),
            ),
            (
                "Thu Aug 30 2012 17:26:16 +0200",
                at(2012, 8, 30, 15, 26, 16),
            ),
            ("Sun Jan  4 16:29:06 2004", at(2004, 1, 4, 16, 29, 6)),
            ("Sun Jul 15 01:16:00 +0000 2012", at(2012, 7, 15, 1, 16, 0)),
            ("Fri, 2006/09/15 08:19:53 EDT", at(2006, 9, 15, 12, 19, 53)),
            // not dates
            ("Sun, 16 Dec 2012 1:2:3:4 GMT", None),
            ("Sun, 16 zzz 2012 11:47:32 GMT", None),
            ("Sun, Dec x 2012 11:47:32 GMT", None),
            ("Sun, 16 Dec zz 11:47:32 GMT", None),
            ("Sun, 16 Dec 2012 11:47:32 +zz:00", None),
            ("Sun, 16 Dec 2012 11:47:32 +00:zz", None),
            ("Sun, 99 Jun 2009 12:00:00 GMT", None),
            ("2003-12-31T25:14:55Z", None),
            ("2003-12-31T10:61:55Z", None),
            ("22013", None),
            ("013", None),
            ("2013-01-27-01", None),
            ("2013-xx-27", None),
            ("yesterday", None),
            // Found by fuzzing: a zone name followed by a character of several bytes.
            ("Sun, 16 Dec 2012 11:47:32 GMT\u{fffd}/x", None),
            ("Sun, 16 Dec 2012 11:47:32 UTC\u{e9}", None),
        ];
        for (text, want) in cases {
            assert_eq!(super::super::timestamp(text), want, "{text:?}");
        }
    }
}
