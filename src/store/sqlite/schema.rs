//! Versioned schema migrations, applied in order; `PRAGMA user_version` records how far a
//! database has come. Never edit a shipped migration: add the next one.

pub const MIGRATIONS: &[&str] = &[
    // 1: feeds, entries, tags, tombstones.
    r#"
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        -- The subscribed URL as configured: the feed's identity across restarts.
        url TEXT NOT NULL UNIQUE,
        -- Where a permanent redirect said the feed now lives.
        current_url TEXT,
        title TEXT,
        site_link TEXT,
        etag TEXT,
        last_modified TEXT,
        -- XXH3-128 of the last body parsed (with the settings it was parsed under): a server
        -- that ignores validators costs no parse.
        body_hash TEXT,
        -- Fingerprint of the settings that shaped the stored entries (tag rules, feed tags,
        -- program version): when it changes, validators and body_hash no longer vouch for them.
        fingerprint TEXT,
        last_attempt INTEGER,
        last_success INTEGER,
        last_status INTEGER,
        last_error TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_poll INTEGER,
        gone INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id),
        -- Identity within the feed: ids are unique only per feed.
        key TEXT NOT NULL,
        -- Published guid, fixed at first insert.
        guid TEXT NOT NULL UNIQUE,
        story_key TEXT,
        source_id TEXT,
        title TEXT NOT NULL,
        link TEXT,
        summary TEXT,
        content TEXT,
        authors TEXT NOT NULL DEFAULT '[]',
        categories TEXT NOT NULL DEFAULT '[]',
        enclosures TEXT NOT NULL DEFAULT '[]',
        published INTEGER,
        updated INTEGER,
        -- The date shown and sorted on (see model::effective_date).
        date INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        changed_at INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        UNIQUE (feed_id, key)
    );
    CREATE INDEX entries_by_date ON entries (date DESC, id DESC);
    CREATE INDEX entries_by_story ON entries (story_key, first_seen, id);
    CREATE INDEX entries_by_first_seen ON entries (first_seen);

    -- One row per (tag, entry), the entry's date copied in, so "newest N with any of these
    -- tags" walks an index instead of scanning entries.
    CREATE TABLE entry_tags (
        tag TEXT NOT NULL,
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        date INTEGER NOT NULL,
        PRIMARY KEY (tag, entry_id)
    ) WITHOUT ROWID;
    CREATE INDEX entry_tags_newest ON entry_tags (tag, date DESC, entry_id DESC);
    CREATE INDEX entry_tags_by_entry ON entry_tags (entry_id);

    -- Display spelling of each tag key: the config's, else the first seen.
    CREATE TABLE tags (
        key TEXT PRIMARY KEY,
        display TEXT NOT NULL
    ) WITHOUT ROWID;

    -- Entries removed by retention, so one still in its feed is not stored again as new.
    CREATE TABLE tombstones (
        feed_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (feed_id, key)
    ) WITHOUT ROWID;
    "#,
    // 2: fewer indexes for a write to touch. Every commit rewrites each index page it
    // touched, and a cold pass's entries land all over the indexes keyed by random values.
    // - The UNIQUE on entries.guid goes: a guid is a hash of (feed URL, key), already unique
    //   through UNIQUE (feed_id, key), and nothing looks entries up by guid.
    // - entry_tags is keyed by what tag queries walk, (tag, date, entry), instead of carrying
    //   that as a second index beside a (tag, entry) key. An entry's tags share its date and
    //   are replaced together, so the new key is as unique as the old.
    // SQLite cannot drop a constraint in place: both tables are rebuilt (foreign keys are off
    // while migrations run, see Store::migrate).
    r#"
    CREATE TABLE entries_v2 (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id),
        -- Identity within the feed: ids are unique only per feed.
        key TEXT NOT NULL,
        -- Published guid, fixed at first insert.
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
        published INTEGER,
        updated INTEGER,
        -- The date shown and sorted on (see model::effective_date).
        date INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        changed_at INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        UNIQUE (feed_id, key)
    );
    INSERT INTO entries_v2 (id, feed_id, key, guid, story_key, source_id, title, link, summary, content,
            authors, categories, enclosures, published, updated, date, first_seen, changed_at, content_hash)
        SELECT id, feed_id, key, guid, story_key, source_id, title, link, summary, content,
            authors, categories, enclosures, published, updated, date, first_seen, changed_at, content_hash
        FROM entries;

    CREATE TABLE entry_tags_v2 (
        tag TEXT NOT NULL,
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        date INTEGER NOT NULL,
        PRIMARY KEY (tag, date DESC, entry_id DESC)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO entry_tags_v2 (tag, entry_id, date) SELECT tag, entry_id, date FROM entry_tags;

    DROP TABLE entry_tags;
    DROP TABLE entries;
    ALTER TABLE entries_v2 RENAME TO entries;
    ALTER TABLE entry_tags_v2 RENAME TO entry_tags;
    CREATE INDEX entries_by_date ON entries (date DESC, id DESC);
    CREATE INDEX entries_by_story ON entries (story_key, first_seen, id);
    CREATE INDEX entries_by_first_seen ON entries (first_seen);
    CREATE INDEX entry_tags_by_entry ON entry_tags (entry_id);
    "#,
    // 3: what the last successful read of a feed should tell its reader though nothing
    // failed ("repaired: ...", "2 of 40 entries could not be read", a limit applied).
    r#"
    ALTER TABLE feeds ADD COLUMN last_note TEXT;
    "#,
    // 4: stories as facts. Which entries are one story was worked out at every read from
    // shared links; it is now decided once, when an entry is written (dedup::cluster), and
    // recorded. The entries already stored are clustered once, by `stories::recluster`, in
    // the same transaction.
    r#"
    CREATE TABLE stories (
        id INTEGER PRIMARY KEY,
        -- Published guid: its first copy's, fixed when the story is created (unique as that
        -- copy's is; not indexed again: an index of random hashes costs every insert a
        -- random page).
        guid TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        -- The item's updated date: its lead's date, and later when another copy joined.
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX stories_by_created ON stories (created_at);
    ALTER TABLE entries ADD COLUMN story_id INTEGER REFERENCES stories(id);
    -- 1 for the copy whose headline, link and text the story shows.
    ALTER TABLE entries ADD COLUMN leads INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX entries_by_story_id ON entries (story_id);
    "#,
    // 5: whether the config still has the feed (one it dropped keeps its entries until
    // retention, so re-adding it finds them with their guids, but outputs stop showing them),
    // and the output files it writes.
    r#"
    ALTER TABLE feeds ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
    -- The output files the config last wrote (absolute paths): one it no longer writes is
    -- deleted, by the next --once as by a reload.
    CREATE TABLE output_files (path TEXT PRIMARY KEY) WITHOUT ROWID;
    "#,
    // 6: what the status pages show. Each feed's last polls, for its page: a row per poll,
    // written by a trigger on what every poll records (last_attempt), so no write path can
    // forget it; the newest 20 per feed are kept. And a full-text index of the entries'
    // titles (FTS5) for the stories page's search. It is brought up to date in one statement
    // before a search (`Db::index_titles`), not by a trigger on every insert: FTS5 flushes a
    // segment at every commit, and per-commit indexing added a third to a cold pass's time.
    // `fts_state.indexed` is the highest entry id indexed; deletes and title edits of rows up
    // to it are applied to the index by triggers.
    r#"
    CREATE TABLE polls (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        status INTEGER,
        error TEXT,
        note TEXT
    );
    CREATE INDEX polls_by_feed ON polls (feed_id, id);
    CREATE TRIGGER feeds_polled AFTER UPDATE OF last_attempt ON feeds
    WHEN NEW.last_attempt IS NOT NULL
    BEGIN
        INSERT INTO polls (feed_id, at, status, error, note)
            VALUES (NEW.id, NEW.last_attempt, NEW.last_status, NEW.last_error,
                    CASE WHEN NEW.last_error IS NULL THEN NEW.last_note END);
        DELETE FROM polls WHERE feed_id = NEW.id AND id <= (
            SELECT id FROM polls WHERE feed_id = NEW.id ORDER BY id DESC LIMIT 1 OFFSET 20);
    END;

    CREATE VIRTUAL TABLE entries_fts USING fts5(
        title, content = 'entries', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TABLE fts_state (indexed INTEGER NOT NULL);
    INSERT INTO fts_state (indexed) VALUES (0);
    CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries
    WHEN OLD.id <= (SELECT indexed FROM fts_state)
    BEGIN
        INSERT INTO entries_fts (entries_fts, rowid, title) VALUES ('delete', OLD.id, OLD.title);
    END;
    CREATE TRIGGER entries_fts_update AFTER UPDATE OF title ON entries
    WHEN OLD.id <= (SELECT indexed FROM fts_state)
    BEGIN
        INSERT INTO entries_fts (entries_fts, rowid, title) VALUES ('delete', OLD.id, OLD.title);
        INSERT INTO entries_fts (rowid, title) VALUES (NEW.id, NEW.title);
    END;
    "#,
    // 7: each entry's story signature (dedup::stored), so that loading the story index reads
    // signatures instead of deriving every recent entry's again from its text. No row for the
    // entries stored before: the first load derives theirs and writes them here. A table of
    // their own, not a column of `entries`: an entry's row is about 1.8 KiB, and 260 bytes
    // more took most rows past two to a 4 KiB page (a 1000-feed database 26% larger, not 10%).
    r#"
    CREATE TABLE signatures (
        entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
        signature BLOB NOT NULL
    );
    "#,
    // 8: what each feed's last stored batch held (store::Held: a digest of each entry's key
    // and content hash), so that a poll of a changed feed signs only its new and edited
    // entries. NULL until the feed's next batch: that poll signs every entry, as before.
    r#"
    ALTER TABLE feeds ADD COLUMN held BLOB;
    "#,
    // 9: the index of entries by story covers what loading the story index reads of an entry
    // whose signature record is stored (the record holds the rest: dedup::stored::Facts), so
    // a load, which every --once is, reads this index and the records, not every row of the
    // window (about 130 MB of pages for 1000 feeds). Integers only: about 30 bytes an entry.
    r#"
    DROP INDEX entries_by_story_id;
    CREATE INDEX entries_by_story_id
        ON entries (story_id, id, feed_id, date, published, first_seen);
    "#,
];

/// The migration after which the stored entries are clustered into stories.
pub const CLUSTERED_AT: usize = 4;
