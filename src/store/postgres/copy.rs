//! The PostgreSQL side of `aggregate migrate --to`: COPY of each table's CSV, into an empty
//! database, in one transaction, then the id sequences moved past the ids copied.

use futures_util::SinkExt;

use super::schema::WRITE_LOCK;
use super::{Postgres, pg_err};
use crate::store::StoreError;
use crate::store::copy::{Chunk, Copied, TABLES};

impl Postgres {
    pub(in crate::store) async fn import(
        &self,
        mut from: tokio::sync::mpsc::Receiver<Chunk>,
    ) -> Result<Copied, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(pg_err)?;
        let used: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM feeds)", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        if used {
            return Err(StoreError::Engine(
                "the PostgreSQL database already holds feeds: migrate copies into an empty database only".into(),
            ));
        }
        let mut copied = Copied::default();
        for (table, columns) in TABLES {
            let written = copy_table(&tx, (table, columns), &mut from).await?;
            copied.tables.push((table, written));
        }
        for table in ["feeds", "stories", "entries"] {
            tx.execute(
                &format!(
                    "SELECT setval('{table}_id_seq', GREATEST((SELECT MAX(id) FROM {table}), 1))"
                ),
                &[],
            )
            .await
            .map_err(pg_err)?;
        }
        // Every instance's index of recent stories reads them again.
        tx.execute(
            "UPDATE counters SET value = value + 1 WHERE name = 'sweeps'",
            &[],
        )
        .await
        .map_err(pg_err)?;
        super::notify(&tx).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(copied)
    }
}

/// One table's rows, as the SQLite reader sends them, copied in; the counts read and written
/// must agree.
async fn copy_table(
    tx: &deadpool_postgres::Transaction<'_>,
    (table, columns): (&str, &str),
    from: &mut tokio::sync::mpsc::Receiver<Chunk>,
) -> Result<u64, StoreError> {
    let sink = tx
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} ({columns}) FROM STDIN (FORMAT csv)"))
        .await
        .map_err(pg_err)?;
    let mut sink = std::pin::pin!(sink);
    let read = loop {
        match from.recv().await {
            Some(Chunk::Rows(rows)) => sink.send(rows.into()).await.map_err(pg_err)?,
            Some(Chunk::End(n)) => break n,
            Some(Chunk::Failed(e)) => return Err(e),
            None => return Err(StoreError::Crashed("the SQLite reader stopped".into())),
        }
    };
    let written = sink.as_mut().finish().await.map_err(pg_err)?;
    if written != read {
        return Err(StoreError::Corrupt(format!(
            "{table}: {read} rows read from SQLite, {written} written"
        )));
    }
    Ok(written)
}
