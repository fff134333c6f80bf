//! WebSub publishing (W3C Recommendation, 2018): with `[server] websub_hub`, every output
//! names the hub (`rel="hub"`) beside its own URL (`rel="self"`, the topic), and when an
//! output's content changes the hub is told, `hub.mode=publish` with `hub.url` (and
//! `hub.topic`, which some hubs read instead) the output's URL in each format. The hub then
//! fetches the output and pushes it to its subscribers, so readers learn of a story in
//! seconds instead of at their next poll.
//!
//! Debounced: a change is published once the store has been quiet for [`QUIET`] (or after
//! [`MOST_DELAY`] of steady change), so a pass that stores fifty feeds in a few seconds is one
//! ping per changed output, not fifty. Only outputs whose bytes changed are published (their
//! ETag tells), each at most once per change; a ping the hub refused is tried again after
//! [`RETRY`]. Ad-hoc feeds are not published: they are endless.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::AppState;
use super::feeds::render_output;
use crate::publish::Format;

/// How often the store's generation is looked at.
const TICK: Duration = Duration::from_millis(500);
/// A change is published when no other has followed it for this long...
const QUIET: Duration = Duration::from_secs(2);
/// ...or when changes have kept coming for this long.
const MOST_DELAY: Duration = Duration::from_secs(15);
/// A ping that failed is tried again after this long.
const RETRY: Duration = Duration::from_secs(60);
/// A hub that does not answer in this time is taken as down.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes changed outputs to the configured hub until `token` is cancelled. Without a hub
/// in the config (it may be added by a reload) it only watches.
pub async fn run(state: AppState, token: CancellationToken) {
    let client = match crate::fetch::client_builder()
        .timeout(PING_TIMEOUT)
        .user_agent(concat!(
            "aggregate/",
            env!("CARGO_PKG_VERSION"),
            " (WebSub)"
        ))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "WebSub: cannot build an HTTP client; outputs are not published to the hub");
            return;
        }
    };
    // The ETag each topic was last published with.
    let mut published: HashMap<String, String> = HashMap::new();
    // The generation last published, and when a change after it was first seen.
    let mut done: Option<u64> = None;
    let mut pending: Option<(u64, Instant, Instant)> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let generation = state.live.generation();
        let now = Instant::now();
        if done != Some(generation) && pending.map(|p| p.0) != Some(generation) {
            // A change not seen before: the quiet wait starts again, the longest wait does not.
            let first = pending.map_or(now, |p| p.1);
            pending = Some((generation, first, now));
        }
        let due = match pending {
            Some((_, first, last)) => now >= last + QUIET || now >= first + MOST_DELAY,
            None => retry_at.is_some_and(|at| now >= at),
        };
        if !due {
            continue;
        }
        let Some(hub) = state.config().server.websub_hub.clone() else {
            (done, pending, retry_at) = (Some(generation), None, None);
            continue;
        };
        let failed = publish_changed(&state, &client, &hub, &mut published).await;
        (done, pending) = (Some(generation), None);
        retry_at = failed.then(|| Instant::now() + RETRY);
    }
}

/// Renders every output (readers' next requests find them in the cache) and pings the hub
/// for each topic whose bytes changed since it was last published. Returns whether a ping
/// failed.
async fn publish_changed(
    state: &AppState,
    client: &reqwest::Client,
    hub: &url::Url,
    published: &mut HashMap<String, String>,
) -> bool {
    let config = state.config();
    let mut failed = false;
    for out in &config.outputs {
        for format in [Format::Rss, Format::Atom, Format::Json] {
            let rendered = match render_output(state, &config, out, format, None).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(output = %out.name, error = ?e, "WebSub: cannot render the output to see whether it changed");
                    failed = true;
                    continue;
                }
            };
            let topic = crate::outputs::channel_of(&config, out, format).self_url;
            if published.get(&topic) == Some(&rendered.etag) {
                continue;
            }
            match ping(client, hub, &topic).await {
                Ok(()) => {
                    state.metrics.websub.with_label_values(&["ok"]).inc();
                    tracing::debug!(%topic, %hub, "WebSub: published");
                    published.insert(topic, rendered.etag.clone());
                }
                Err(e) => {
                    state.metrics.websub.with_label_values(&["failed"]).inc();
                    tracing::warn!(%topic, %hub, error = %e, "WebSub: the hub did not take the ping; trying again in a minute");
                    failed = true;
                }
            }
        }
    }
    failed
}

/// Tells the hub that `topic` changed. A 2xx is taken (hubs answer 202 or 204).
async fn ping(client: &reqwest::Client, hub: &url::Url, topic: &str) -> Result<(), String> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("hub.mode", "publish")
        .append_pair("hub.url", topic)
        .append_pair("hub.topic", topic)
        .finish();
    let response = client
        .post(hub.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await
        .map_err(|e| {
            // reqwest's own text is "error sending request"; the cause is in its sources.
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}
