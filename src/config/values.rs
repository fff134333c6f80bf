//! Readers for the value syntaxes the config accepts: durations, sizes, feed URLs.

use std::time::Duration;

use url::Url;

/// "15m", "30s", "90d", "1h 30m". Zero is refused: every duration we take is a period or a limit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "{text:?} is not a duration ({e}); write it like \"30s\", \"15m\", \"2h\" or \"90d\""
        )
    })?;
    if d.is_zero() {
        return Err(format!(
            "{text:?} is zero; give a positive duration such as \"30s\""
        ));
    }
    Ok(d)
}

/// A duration the way the config spells them: "90d", "15m", "1h30m".
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    out
}

/// "10MiB", "512KiB", "1MB", "2000000". Binary (KiB, MiB, GiB) and decimal (kB, MB, GB) units.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a size; write it like \"10MiB\", \"512KiB\" or \"2MB\"");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    match n.checked_mul(mult) {
        Some(0) => Err(format!("{text:?} is zero; give a positive size")),
        Some(v) => Ok(v),
        None => Err(bad()),
    }
}

/// A feed URL: http(s), an absolute `file:///path`, or `file:relative/path` resolved against the
/// working directory (so the repository's offline config works from a checkout).
pub fn parse_feed_url(text: &str) -> Result<Url, String> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("file:") {
        if !rest.starts_with('/') {
            let cwd = std::env::current_dir().map_err(|e| format!("cannot resolve {t:?}: {e}"))?;
            return Url::from_file_path(cwd.join(rest))
                .map_err(|_| format!("{t:?} is not a usable file path"));
        }
    }
    let url = Url::parse(t).map_err(|e| format!("{t:?} is not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(url),
        "file" => Ok(url),
        _ => Err(format!("{t:?} is not an http(s):// or file: URL")),
    }
}

/// What makes two feed URLs one subscription: scheme (http and https alike), host and port
/// as the URL standard normalises them, the path without a trailing slash, the query. The
/// fragment never reaches the server, so it does not count.
pub fn feed_identity(url: &Url) -> String {
    let scheme = match url.scheme() {
        "http" | "https" => "http",
        other => other,
    };
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path();
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        ""
    };
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{scheme}://{host}{port}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86400)
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fifteen").unwrap_err().contains("fifteen"));
    }

    #[test]
    fn formatted_durations_read_back() {
        assert_eq!(format_duration(Duration::from_secs(90 * 86400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(
            parse_duration(&format_duration(Duration::from_secs(5400))).unwrap(),
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn one_subscription_however_its_url_is_spelled() {
        let id = |u: &str| feed_identity(&Url::parse(u).unwrap());
        let base = id("https://www.coindesk.com/arc/outboundfeeds/rss/");
        for same in [
            "http://www.coindesk.com/arc/outboundfeeds/rss",
            "HTTPS://WWW.CoinDesk.com:443/arc/outboundfeeds/rss/#top",
        ] {
            assert_eq!(id(same), base, "{same}");
        }
        for other in [
            "https://coindesk.com/arc/outboundfeeds/rss/",
            "https://www.coindesk.com/arc/outboundfeeds/rss/?x=1",
            "https://www.coindesk.com:8443/arc/outboundfeeds/rss/",
            "https://www.coindesk.com/arc/outboundfeeds/RSS/",
        ] {
            assert_ne!(id(other), base, "{other}");
        }
        assert_eq!(id("https://a.example"), id("https://a.example/"));
    }

    #[test]
    fn feed_urls() {
        assert!(parse_feed_url("https://example.com/rss").is_ok());
        assert!(parse_feed_url("ftp://example.com/rss").is_err());
        let rel = parse_feed_url("file:fixtures/x.rss").unwrap();
        assert!(rel.path().ends_with("/fixtures/x.rss"));
        assert_eq!(
            parse_feed_url("file:///tmp/x.rss").unwrap().path(),
            "/tmp/x.rss"
        );
    }
}
