//! The PostgreSQL schema: the SQLite backend's tables in PostgreSQL's dialect (the same
//! columns and encodings, see `store::rows`), plus what instances sharing the database need:
//! poll leases on `feeds`, Retry-After holds per host, and a counter of retention sweeps.
//! Versioned like SQLite's: `schema_history` records each migration applied, by whom and
//! when. Never edit a shipped migration: add the next one.

use deadpool_postgres::Client;

use super::pg_err;
use crate::store::StoreError;

pub const MIGRATIONS: &[&str] = &[
    // 1: the schema of SQLite's migration 4, and the shared-polling columns.
    r#"
    CREATE TABLE feeds (
        id BIGSERIAL PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        current_url TEXT,
        title TEXT,
        site_link TEXT,
        etag TEXT,
        last_modified TEXT,
        body_hash TEXT,
        fingerprint TEXT,
        last_attempt BIGINT,
        last_success BIGINT,
        last_status INTEGER,
        last_error TEXT,
        last_note TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_poll BIGINT,
        gone BOOLEAN NOT NULL DEFAULT FALSE,
        -- The instance polling the feed now, until when, and the claim's token: a batch is
        -- stored only by the holder of the token it was claimed with.
        lease_owner TEXT,
        lease_until TIMESTAMPTZ,
        lease_token BIGINT
    );
    CREATE SEQUENCE lease_tokens;

    CREATE TABLE stories (
        id BIGSERIAL PRIMARY KEY,
        guid TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX stories_by_created ON stories (created_at);

    CREATE TABLE entries (
        id BIGSERIAL PRIMARY KEY,
        feed_id BIGINT NOT NULL REFERENCES feeds(id),
        key TEXT NOT NULL,
        guid TEXT NOT NULL,
        story_key TEXT,
        source_id TEXT,
        title TEXT NOT NULL,
        link TEXT,
        summary TEXT,
        content TEXT,
        authors TEXT NOT NULL DEFAULT '[]',
        categories TEXT NOT NULL DEFAULT '[]',
        enclosures TEXT NOT NULL DEFAULT '[]',
        published BIGINT,
        updated BIGINT,
        date BIGINT NOT NULL,
        first_seen BIGINT NOT NULL,
        changed_at BIGINT NOT NULL,
        content_hash TEXT NOT NULL,
        story_id BIGINT REFERENCES stories(id),
        leads BOOLEAN NOT NULL DEFAULT FALSE,
        UNIQUE (feed_id, key)
    );
    CREATE INDEX entries_by_date ON entries (date DESC, id DESC);
    CREATE INDEX entries_by_story_key ON entries (story_key);
    CREATE INDEX entries_by_story_id ON entries (story_id);

    CREATE TABLE entry_tags (
        tag TEXT NOT NULL,
        entry_id BIGINT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        date BIGINT NOT NULL,
        PRIMARY KEY (tag, date, entry_id)
    );
    CREATE INDEX entry_tags_by_entry ON entry_tags (entry_id);

    CREATE TABLE tags (
        key TEXT PRIMARY KEY,
        display TEXT NOT NULL
    );

    CREATE TABLE tombstones (
        feed_id BIGINT NOT NULL,
        key TEXT NOT NULL,
        seen_at BIGINT NOT NULL,
        PRIMARY KEY (feed_id, key)
    );

    -- A host that answered Retry-After: no instance fetches from it before `until`.
    CREATE TABLE host_holds (
        host TEXT PRIMARY KEY,
        until BIGINT NOT NULL
    );

    -- Counters every instance reads: `sweeps` moves when retention deleted stories, so that
    -- each writer's index of recent stories is read again.
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('sweeps', 0);
    "#,
    // 2: polls under way per host, counted across instances (fetch.per_host).
    r#"
    ALTER TABLE feeds ADD COLUMN host TEXT;
    CREATE INDEX feeds_leased_by_host ON feeds (host) WHERE lease_until IS NOT NULL;
    "#,
    // 3: each instance's config, so that instances running different ones are told.
    r#"
    CREATE TABLE instances (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        seen_at BIGINT NOT NULL
    );
    "#,
    // 4: whether the config still has the feed (one it dropped keeps its entries until
    // retention, so re-adding it finds them with their guids, but outputs stop showing them),
    // and the output files each machine writes.
    r#"
    ALTER TABLE feeds ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
    -- The output files each machine's config last wrote (absolute paths on that host).
    CREATE TABLE output_files (
        host TEXT NOT NULL,
        path TEXT NOT NULL,
        PRIMARY KEY (host, path)
    );
    "#,
    // 5: each feed's last polls, for its page: a row per poll, written by a trigger on what
    // every poll records (last_attempt), the newest 20 per feed kept. Titles are searched with
    // ILIKE: the stories page's search is an operator's, over at most the retention window.
    r#"
    CREATE TABLE polls (
        id BIGSERIAL PRIMARY KEY,
        feed_id BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        at BIGINT NOT NULL,
        status INTEGER,
        error TEXT,
        note TEXT
    );
    CREATE INDEX polls_by_feed ON polls (feed_id, id);
    CREATE FUNCTION record_poll() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO polls (feed_id, at, status, error, note)
            VALUES (NEW.id, NEW.last_attempt, NEW.last_status, NEW.last_error,
                    CASE WHEN NEW.last_error IS NULL THEN NEW.last_note END);
        DELETE FROM polls WHERE feed_id = NEW.id AND id <= (
            SELECT id FROM polls WHERE feed_id = NEW.id ORDER BY id DESC LIMIT 1 OFFSET 20);
        RETURN NULL;
    END $$;
    CREATE TRIGGER feeds_polled AFTER UPDATE OF last_attempt ON feeds
        FOR EACH ROW WHEN (NEW.last_attempt IS NOT NULL) EXECUTE FUNCTION record_poll();
    "#,
    // 6: each entry's story signature (dedup::stored), as in SQLite's migration 7 (there a
    // table of its own, for SQLite's page layout): an instance loading or catching up its
    // index reads it instead of deriving it again.
    r#"
    ALTER TABLE entries ADD COLUMN signature BYTEA;
    "#,
    // 7: what each feed's last stored batch held (store::Held), as in SQLite's migration 8.
    r#"
    ALTER TABLE feeds ADD COLUMN held BYTEA;
    "#,
];

/// Advisory lock keys (one namespace per database): migrations, the writers' turn, and
/// retention.
pub const MIGRATE_LOCK: i64 = 0x6167_6772_0001;
pub const WRITE_LOCK: i64 = 0x6167_6772_0002;
pub const SWEEP_LOCK: i64 = 0x6167_6772_0003;
pub const CONFIG_LOCK: i64 = 0x6167_6772_0004;

/// Brings the database to the newest schema, in one transaction, holding an advisory lock:
/// instances starting together wait for the first, then find nothing left to do.
pub async fn migrate(client: &mut Client, instance: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_history (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            applied_by TEXT NOT NULL
        )",
    )
    .await
    .map_err(pg_err)?;
    let version: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_history", &[])
        .await
        .map_err(pg_err)?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if version > known {
        return Err(StoreError::TooNew {
            found: version.into(),
            known: known.into(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.map_err(pg_err)?;
        tx.execute(
            "INSERT INTO schema_history (version, applied_by) VALUES ($1, $2)",
            &[&(i as i32 + 1), &instance],
        )
        .await
        .map_err(pg_err)?;
        tracing::info!(version = i + 1, "PostgreSQL schema migrated");
    }
    tx.commit().await.map_err(pg_err)
}
