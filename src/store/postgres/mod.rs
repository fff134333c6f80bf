//! The PostgreSQL backend, for several instances sharing one database: a pool of connections
//! (deadpool), polls claimed by lease so that each feed is polled by one instance at a time
//! and a zombie's late batch is refused, writes taken in turn under an advisory lock so that
//! every instance's index of recent stories sees every story (see `write`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{
    Client, GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction,
};
use tokio_postgres::NoTls;

use super::rows::{from_ts, ts};
use super::{
    Claim, Configured, Failure, FeedState, FeedStatus, OtherConfig, Poll, Started, StoreError,
    Ticket, Unchanged,
};
use crate::config::PostgresConfig;
use crate::dedup::cluster::Settings;
use crate::dedup::index::StoryIndex;
use crate::model::{Validators, tag_key};

mod copy;
mod listen;
mod read;
mod schema;
mod write;

#[derive(Clone)]
pub(super) struct Postgres {
    pool: Pool,
    /// This instance's index of recent stories, and how far it has read others' writes.
    /// A tokio mutex: it is held across the batch's queries, and one instance writes one
    /// batch at a time anyway (the advisory lock serialises all instances' writes).
    writer: Arc<tokio::sync::Mutex<write::Writer>>,
    /// Who holds a lease: host, process and a random part, unique per run.
    owner: Arc<str>,
    lease: Duration,
    /// Where the database is, for the listener's connection of its own.
    address: Arc<tokio_postgres::Config>,
}

/// A claimed poll: the token its batch must still hold to be stored.
pub(super) struct Lease {
    token: i64,
    /// Renews the lease while the poll is alive (see [`Postgres::renew`]); stopped with it.
    renewal: tokio::task::AbortHandle,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Instances that recorded a config within this long are compared with this one's; older
/// records are forgotten (an instance records its config at start and at every reload).
const INSTANCES_SEEN: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a connection waits for the pool before the call fails: the pool is full only
/// when the database is slow to answer, and a caller should hear of it.
const POOL_WAIT: Duration = Duration::from_secs(30);

pub(super) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::DISK_FULL => StoreError::Full,
        Some(c) if *c == SqlState::IO_ERROR => StoreError::Io,
        Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt(e.to_string())
        }
        _ => match e.as_db_error() {
            Some(db) => StoreError::Engine(format!("PostgreSQL: {}", db.message())),
            None => match std::error::Error::source(&e) {
                Some(cause) => StoreError::Engine(format!("PostgreSQL: {e}: {cause}")),
                None => StoreError::Engine(format!("PostgreSQL: {e}")),
            },
        },
    }
}

pub(super) type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Statements go through the connection's cache of prepared statements: an unprepared one
/// costs a round trip and a plan each time, and a batch makes a dozen.
pub(super) async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, StoreError> {
    let statement = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.execute(&statement, params).await.map_err(pg_err)
}

pub(super) async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query(&statement, params).await.map_err(pg_err)
}

pub(super) async fn query_one(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<tokio_postgres::Row, StoreError> {
    let statement = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query_one(&statement, params).await.map_err(pg_err)
}

pub(super) async fn query_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<tokio_postgres::Row>, StoreError> {
    let statement = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query_opt(&statement, params).await.map_err(pg_err)
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Busy(POOL_WAIT),
        other => StoreError::Engine(format!("PostgreSQL connection pool: {other}")),
    }
}

impl Postgres {
    pub(super) async fn open(
        pg: &PostgresConfig,
        settings: &Settings,
    ) -> Result<Postgres, StoreError> {
        let open_err = |message: String| StoreError::Open {
            target: pg.target(),
            message,
        };
        let mut config: tokio_postgres::Config =
            pg.url.parse().map_err(|e| open_err(format!("{e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("aggregate");
        let address = Arc::new(config.clone());
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pg.pool)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let owner: Arc<str> = instance_name().into();
        let mut client = pool
            .get()
            .await
            .map_err(|e| open_err(pool_err(e).to_string()))?;
        schema::migrate(&mut client, &owner)
            .await
            .map_err(|e| match e {
                StoreError::TooNew { .. } => e,
                other => open_err(other.to_string()),
            })?;
        Ok(Postgres {
            pool,
            writer: Arc::new(tokio::sync::Mutex::new(write::Writer::new(
                StoryIndex::new(settings.clone()),
            ))),
            owner,
            lease: pg.lease,
            address,
        })
    }

    /// Calls `on_change` whenever another instance (or this one) commits a change to what the
    /// outputs show, and after every reconnection of the listener, until `token` is cancelled.
    pub(super) fn watch_changes(
        &self,
        token: tokio_util::sync::CancellationToken,
        on_change: Arc<dyn Fn() + Send + Sync>,
    ) {
        tokio::spawn(listen::listen(self.address.clone(), token, on_change));
    }

    async fn client(&self) -> Result<Client, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    pub(super) fn queue_depth(&self) -> usize {
        // Batches are written one at a time per instance: more waiting gains nothing.
        2 * self.pool.status().max_size
    }

    /// Records the config, by one instance at a time (an advisory lock), and this instance's
    /// config fingerprint; answers the instances seen within [`INSTANCES_SEEN`] whose
    /// fingerprint differs.
    pub(super) async fn configure(
        &self,
        config: Configured,
    ) -> Result<Vec<OtherConfig>, StoreError> {
        let Configured {
            feeds,
            tag_spellings,
            fingerprint,
        } = config;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        exec(
            &tx,
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema::CONFIG_LOCK],
        )
        .await?;
        set_feeds(&tx, &feeds).await?;
        // In key order, as every writer inserts tags: no two transactions wait on each other.
        let mut spelled: Vec<(String, String)> = tag_spellings
            .into_iter()
            .map(|name| (tag_key(&name), name))
            .collect();
        spelled.sort();
        spelled.dedup_by(|a, b| a.0 == b.0);
        let (keys, names): (Vec<String>, Vec<String>) = spelled.into_iter().unzip();
        exec(
            &tx,
            "INSERT INTO tags (key, display) SELECT * FROM UNNEST($1::text[], $2::text[])
             ON CONFLICT (key) DO UPDATE SET display = excluded.display",
            &[&keys, &names],
        )
        .await?;
        let others = register(&tx, &self.owner, &fingerprint).await?;
        notify(&tx).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(others)
    }

    /// Claims the feed for a poll: granted when no other instance holds an unexpired lease on
    /// it, no Retry-After holds its host, and (for `Claim::Due`) the shared schedule says it is
    /// due and fewer than `per_host` polls of its host are leased. The row is locked with SKIP
    /// LOCKED: an instance claiming it at the same moment is told "elsewhere", not made to
    /// wait; claims on one host take turns (an advisory lock on the host) so that two cannot
    /// both take its last place.
    pub(super) async fn start_poll(&self, url: &str, claim: Claim) -> Result<Started, StoreError> {
        let mut client = self.client().await?;
        // Next polls are stored in whole seconds, rounded down: the instance whose timer set
        // one finds the feed due when it fires; another may claim it up to a second early.
        let due_by = ts(Utc::now());
        let host = url::Url::parse(url)
            .map(|u| crate::model::host_key(&u))
            .unwrap_or_default();
        for _ in 0..2 {
            if let Some(poll) = self
                .try_claim(&mut client, url, &host, claim, due_by)
                .await?
            {
                return Ok(Started::Poll(poll));
            }
            let held = query_opt(
                &client,
                "SELECT next_poll,
                        CASE WHEN lease_until > clock_timestamp()
                             THEN extract(epoch FROM lease_until)::bigint END,
                        (SELECT until FROM host_holds WHERE host = $2 AND until > $3)
                     FROM feeds WHERE url = $1",
                &[&url, &host, &due_by],
            )
            .await?;
            match held {
                Some(r) => {
                    let (next, leased, held): (Option<i64>, Option<i64>, Option<i64>) =
                        (r.get(0), r.get(1), r.get(2));
                    let until = [leased, held].into_iter().flatten().max().or(next);
                    let until = until.map(from_ts);
                    return Ok(Started::Elsewhere { until });
                }
                // First sight of the feed: its row, then the claim again.
                None => {
                    exec(
                        &client,
                        "INSERT INTO feeds (url) VALUES ($1) ON CONFLICT (url) DO NOTHING",
                        &[&url],
                    )
                    .await?;
                }
            }
        }
        Err(StoreError::Engine(format!(
            "the row of feed {url} vanished while it was claimed"
        )))
    }

    /// Takes the lease on the feed at `url` if `claim` allows it now: no other instance holds
    /// it, it is due (or asked for now), its host is not held, and fewer than `per_host` of
    /// its host's feeds are being polled by all instances together. `None` otherwise, or when
    /// the feed has no row yet.
    async fn try_claim(
        &self,
        client: &mut Client,
        url: &str,
        host: &str,
        claim: Claim,
        due_by: i64,
    ) -> Result<Option<Poll>, StoreError> {
        let (any_time, per_host) = match claim {
            Claim::Due { per_host } => (false, per_host as i64),
            Claim::Now => (true, i64::MAX),
        };
        let tx = client.transaction().await.map_err(pg_err)?;
        if !any_time {
            exec(
                &tx,
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&host],
            )
            .await?;
        }
        let claimed = query_opt(
            &tx,
            CLAIM,
            &[
                &url,
                &&*self.owner,
                &self.lease.as_secs_f64(),
                &any_time,
                &due_by,
                &host,
                &per_host,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(claimed.map(|r| self.leased(&r)))
    }

    /// A granted claim: the feed's stored state, and the lease kept alive while the poll is.
    fn leased(&self, r: &tokio_postgres::Row) -> Poll {
        let state = FeedState {
            id: r.get(0),
            validators: Validators {
                etag: r.get(1),
                last_modified: r.get(2),
            },
            body_hash: r.get(3),
            current_url: r.get(4),
            fingerprint: r.get(5),
        };
        let token = r.get(6);
        let renewal = tokio::spawn(self.renew(state.id, token)).abort_handle();
        Poll {
            state,
            ticket: Ticket::Postgres(Lease { token, renewal }),
        }
    }

    /// Keeps a claimed poll's lease from running out while the poll is alive: a slow fetch,
    /// a long parse or a wait for the writers' turn is not taken for a dead instance. Renewed
    /// at a third of its length, until the poll's result ends it (`lease_until` cleared), the
    /// poll is dropped, or the lease ran out before it was renewed (it is forfeit then,
    /// whether or not another instance has claimed the feed). Only an instance that stops
    /// answering (killed, frozen, cut off) loses its feeds to the others.
    fn renew(&self, feed: i64, token: i64) -> impl std::future::Future<Output = ()> + use<> {
        let (pool, lease) = (self.pool.clone(), self.lease);
        async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let Ok(client) = pool.get().await else {
                    continue;
                };
                let renewed = exec(
                    &client,
                    "UPDATE feeds SET lease_until = clock_timestamp() + $3::float8 * interval '1 second'
                     WHERE id = $1 AND lease_token = $2 AND lease_until > clock_timestamp()",
                    &[&feed, &token, &lease.as_secs_f64()],
                )
                .await;
                if renewed.is_ok_and(|n| n == 0) {
                    return;
                }
            }
        }
    }

    /// When a poll's result is recorded, its lease ends and the feed is held back until
    /// this, for the scheduler that polled it to say when it is next due (set_next_poll,
    /// moments later). If that never comes (`--once`, or the instance died), any instance
    /// polls the feed again after a lease's length.
    fn hold_until(&self, now: DateTime<Utc>) -> i64 {
        ts(now) + self.lease.as_secs().max(1) as i64
    }

    fn token(poll: &Poll) -> i64 {
        match &poll.ticket {
            Ticket::Postgres(lease) => lease.token,
            _ => unreachable!("a poll is claimed from the store that records it"),
        }
    }

    pub(super) async fn record_unchanged(
        &self,
        poll: &Poll,
        seen: Unchanged,
    ) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE feeds SET etag = COALESCE($3, etag),
                    last_modified = COALESCE($4, last_modified),
                    current_url = COALESCE($5, current_url),
                    last_attempt = $6, last_success = $6, last_status = $7, last_error = NULL,
                    consecutive_failures = 0, lease_until = NULL, next_poll = $8
                 WHERE id = $1 AND lease_token = $2",
                &[
                    &poll.state.id,
                    &Self::token(poll),
                    &seen.validators.etag,
                    &seen.validators.last_modified,
                    &seen.moved_to,
                    &ts(seen.now),
                    &i32::from(seen.status),
                    &self.hold_until(seen.now),
                ],
            )
            .await
            .map_err(pg_err)?;
        held(n)
    }

    pub(super) async fn record_failure(
        &self,
        poll: &Poll,
        failure: Failure,
    ) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE feeds SET last_attempt = $3, last_status = $4, last_error = $5,
                    consecutive_failures = consecutive_failures + 1, lease_until = NULL,
                    next_poll = $6
                 WHERE id = $1 AND lease_token = $2",
                &[
                    &poll.state.id,
                    &Self::token(poll),
                    &ts(failure.now),
                    &failure.status.map(i32::from),
                    &failure.error,
                    &self.hold_until(failure.now),
                ],
            )
            .await
            .map_err(pg_err)?;
        held(n)
    }

    /// Records the next poll (the lease ended with the poll's result, which held the feed
    /// back until now: see `hold_until`). A feed another instance has claimed since is left
    /// alone: that instance records its own schedule.
    pub(super) async fn set_next_poll(
        &self,
        url: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE feeds SET next_poll = $2, lease_owner = NULL, lease_until = NULL
                 WHERE url = $1 AND (lease_owner IS NULL OR lease_owner = $3)",
                &[&url, &at.map(ts), &&*self.owner],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    pub(super) async fn hold_host(
        &self,
        host: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO host_holds (host, until) VALUES ($1, $2)
                 ON CONFLICT (host) DO UPDATE SET until = GREATEST(host_holds.until, excluded.until)",
                // Rounded up to the second: never earlier than the server asked.
                &[&host, &(ts(until) + 1)],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    pub(super) async fn mark_gone(&self, url: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE feeds SET gone = TRUE, next_poll = NULL, lease_owner = NULL,
                    lease_until = NULL
                 WHERE url = $1 AND (lease_owner IS NULL OR lease_owner = $2)",
                &[&url, &&*self.owner],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    pub(super) async fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT f.url, f.title, f.current_url, f.last_attempt, f.last_success,
                    f.last_status, f.last_error, f.consecutive_failures, f.next_poll, f.gone,
                    (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id), f.last_note, f.site_link
                 FROM feeds f ORDER BY f.id",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| FeedStatus {
                url: r.get(0),
                title: r.get(1),
                current_url: r.get(2),
                last_attempt: r.get::<_, Option<i64>>(3).map(from_ts),
                last_success: r.get::<_, Option<i64>>(4).map(from_ts),
                last_status: r.get::<_, Option<i32>>(5).map(|s| s as u16),
                last_error: r.get(6),
                consecutive_failures: r.get::<_, i32>(7) as u32,
                next_poll: r.get::<_, Option<i64>>(8).map(from_ts),
                gone: r.get(9),
                entries: r.get::<_, i64>(10) as u64,
                last_note: r.get(11),
                site_link: r.get(12),
            })
            .collect())
    }

    /// What feed `feed_id`'s last stored batch held (see `store::Held`).
    pub(super) async fn held(&self, feed_id: i64) -> Result<super::Held, StoreError> {
        let client = self.client().await?;
        let row = query_opt(&client, "SELECT held FROM feeds WHERE id = $1", &[&feed_id]).await?;
        let record: Option<Vec<u8>> = row.and_then(|r| r.get(0));
        Ok(record.map_or_else(super::Held::default, |r| super::Held::read(&r)))
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.client()
            .await?
            .query_one("SELECT 1", &[])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    pub(super) async fn entry_count(&self) -> Result<u64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM entries", &[])
            .await
            .map_err(pg_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// PostgreSQL checks its pages itself; what can be checked from here is that every row
    /// points at something (the constraints) and every story has a copy that leads it.
    /// Records `paths` as this host's output files; returns those recorded before and not
    /// among them.
    pub(super) async fn replace_output_files(
        &self,
        paths: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let before: Vec<String> = query(
            &tx,
            "DELETE FROM output_files WHERE host = $1 RETURNING path",
            &[&host],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        exec(
            &tx,
            "INSERT INTO output_files (host, path) SELECT $1, p FROM UNNEST($2::text[]) p
             ON CONFLICT DO NOTHING",
            &[&host, &paths],
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(before.into_iter().filter(|p| !paths.contains(p)).collect())
    }

    /// Reclaims the space of deleted rows and refreshes the planner's statistics (autovacuum
    /// does both in time; this does it now, after a large retention sweep).
    pub(super) async fn vacuum(&self) -> Result<(), StoreError> {
        self.client()
            .await?
            .batch_execute("VACUUM (ANALYZE)")
            .await
            .map_err(pg_err)
    }

    pub(super) async fn integrity_check(&self) -> Result<(), StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM stories s
                 WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.story_id = s.id AND e.leads)",
                &[],
            )
            .await
            .map_err(pg_err)?;
        match row.get::<_, i64>(0) {
            0 => Ok(()),
            n => Err(StoreError::Corrupt(format!("{n} stories have no lead"))),
        }
    }
}

/// Tells every listening instance, when `tx` commits, that what outputs show has changed.
async fn notify(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
    exec(tx, "SELECT pg_notify($1, '')", &[&listen::CHANNEL]).await?;
    Ok(())
}

/// A statement guarded by the poll's lease changed no row: the lease was lost.
fn held(rows: u64) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::LeaseLost)
    } else {
        Ok(())
    }
}

/// This instance's name in leases and the schema history: host, process id and a random
/// part (a restarted process with a reused pid is another instance).
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{:06x}",
        std::process::id(),
        fastrand::u32(..0x100_0000)
    )
}

/// The configured feeds exist, and only they are active; a feed dropped from the config
/// forgets it was gone, so that adding it back polls it again.
async fn set_feeds(tx: &Transaction<'_>, feeds: &[String]) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO feeds (url) SELECT * FROM UNNEST($1::text[]) ON CONFLICT (url) DO NOTHING",
        &[&feeds],
    )
    .await?;
    exec(
        tx,
        "UPDATE feeds SET gone = FALSE WHERE gone AND NOT (url = ANY($1))",
        &[&feeds],
    )
    .await?;
    exec(
        tx,
        "UPDATE feeds SET active = (url = ANY($1)) WHERE active IS DISTINCT FROM (url = ANY($1))",
        &[&feeds],
    )
    .await?;
    Ok(())
}

/// This instance's config recorded, instances not seen for a while forgotten; returns the
/// instances that run another config.
async fn register(
    tx: &Transaction<'_>,
    owner: &str,
    fingerprint: &str,
) -> Result<Vec<OtherConfig>, StoreError> {
    let now = ts(Utc::now());
    exec(
        tx,
        "INSERT INTO instances (name, config, seen_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET config = excluded.config, seen_at = excluded.seen_at",
        &[&owner, &fingerprint, &now],
    )
    .await?;
    let recent = now - INSTANCES_SEEN.as_secs() as i64;
    exec(tx, "DELETE FROM instances WHERE seen_at < $1", &[&recent]).await?;
    let others = query(
        tx,
        "SELECT name, seen_at FROM instances WHERE config != $1 ORDER BY seen_at DESC",
        &[&fingerprint],
    )
    .await?
    .iter()
    .map(|r| OtherConfig {
        instance: r.get(0),
        seen: from_ts(r.get(1)),
    })
    .collect();
    Ok(others)
}

/// The lease on one feed, granted only when no other instance holds it, it is due (or `$4`
/// says any time), no Retry-After holds its host, and fewer than `$7` polls of its host are
/// leased. SKIP LOCKED: an instance claiming it at the same moment is told "elsewhere".
const CLAIM: &str = "UPDATE feeds f SET lease_owner = $2, lease_token = nextval('lease_tokens'),
            lease_until = clock_timestamp() + $3::float8 * interval '1 second',
            host = $6
         FROM (SELECT id FROM feeds WHERE url = $1
                 AND (lease_until IS NULL OR lease_until < clock_timestamp())
                 AND ($4 OR next_poll IS NULL OR next_poll <= $5)
                 AND NOT EXISTS (SELECT 1 FROM host_holds
                                 WHERE host = $6 AND until > $5)
                 AND (SELECT COUNT(*) FROM feeds
                      WHERE host = $6 AND lease_until > clock_timestamp()) < $7
               FOR UPDATE SKIP LOCKED) c
         WHERE f.id = c.id
         RETURNING f.id, f.etag, f.last_modified, f.body_hash, f.current_url,
                   f.fingerprint, f.lease_token";

#[cfg(test)]
mod tests;
