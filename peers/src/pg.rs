//! PostgreSQL as a queue, the way pgmq builds one: a table per queue with a visibility-timeout
//! column, a read that takes the oldest visible rows with `FOR UPDATE SKIP LOCKED` and pushes
//! their visibility out in the same statement, and a delete by id (pgmq's `delete`; its
//! `archive` moves the rows to an archive table instead). Every thread has its own connection
//! and its statements prepared once; every statement is its own transaction, committed with
//! `synchronous_commit=on`.
//!
//! FIFO (`fifo_cycle`): the same table with a group column; a read only takes a message that
//! has no earlier message of its group still in the table (waiting or in flight), which is the
//! ordering an SQS FIFO group gives, and sends are deduplicated on a dedup-id table in the same
//! statement.

use postgres::{Client, NoTls, Statement};

use crate::systems::{Receiver, Sender, Setup};

/// Visibility timeout of a read, seconds (as the other systems' 30 s).
const VT_SECONDS: i32 = 30;

fn err(e: postgres::Error) -> String {
    // The server's own message, when it sent one.
    match e.as_db_error() {
        Some(db) => format!("postgres: {}", db.message()),
        None => format!("postgres: {e}"),
    }
}

pub struct PgQueue {
    conninfo: String,
    table: String,
    fifo: bool,
}

impl PgQueue {
    /// Creates a fresh queue table (and its dedup table for FIFO).
    pub fn create(conninfo: &str, fifo: bool) -> Result<PgQueue, String> {
        let table = format!("q_{}", crate::systems::run_id());
        let mut c = Client::connect(conninfo, NoTls).map_err(err)?;
        let ddl = if fifo {
            format!(
                "CREATE TABLE {table} (
                    msg_id BIGINT PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
                    grp TEXT NOT NULL,
                    read_ct INT NOT NULL DEFAULT 0,
                    enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    vt TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                    message BYTEA NOT NULL);
                 CREATE INDEX ON {table} (vt);
                 CREATE INDEX ON {table} (grp, msg_id);
                 CREATE TABLE {table}_dedup (dedup TEXT PRIMARY KEY, expires_at TIMESTAMPTZ NOT NULL);"
            )
        } else {
            format!(
                "CREATE TABLE {table} (
                    msg_id BIGINT PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
                    read_ct INT NOT NULL DEFAULT 0,
                    enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    vt TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                    message BYTEA NOT NULL);
                 CREATE INDEX ON {table} (vt);"
            )
        };
        c.batch_execute(&ddl).map_err(err)?;
        Ok(PgQueue { conninfo: conninfo.to_string(), table, fifo })
    }

    fn connect(&self) -> Result<Client, String> {
        Client::connect(&self.conninfo, NoTls).map_err(err)
    }
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        if let Ok(mut c) = self.connect() {
            let t = &self.table;
            let _ = c.batch_execute(&format!("DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {t}_dedup;"));
        }
    }
}

struct PgSender {
    client: Client,
    send: Statement,
    fifo: bool,
    n: u64,
    thread: usize,
}

impl Sender for PgSender {
    fn send(&mut self, body: &[u8]) -> Result<(), String> {
        if self.fifo {
            self.n += 1;
            let dedup = format!("dedup-{}-{}", self.thread, self.n);
            let group = format!("group-{}", (self.n * 7 + self.thread as u64) % crate::weir_side::GROUPS);
            self.client.execute(&self.send, &[&group, &dedup, &body]).map_err(err)?;
        } else {
            self.client.execute(&self.send, &[&body]).map_err(err)?;
        }
        Ok(())
    }
}

struct PgReceiver {
    client: Client,
    read: Statement,
    delete: Statement,
}

impl Receiver for PgReceiver {
    fn receive(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<u64, String> {
        let rows = self.client.query(&self.read, &[&VT_SECONDS, &10i64]).map_err(err)?;
        if rows.is_empty() {
            // pgmq's read_with_poll polls inside the server; polling from here every 1 ms
            // costs the same round trip without holding a connection in a sleep.
            std::thread::sleep(std::time::Duration::from_millis(1));
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(r.get::<_, i64>(0));
            on_body(r.get::<_, &[u8]>(1));
        }
        let deleted = self.client.query(&self.delete, &[&ids]).map_err(err)?;
        Ok(deleted.len() as u64)
    }
}

impl Setup for PgQueue {
    fn sender(&self, i: usize) -> Result<Box<dyn Sender + '_>, String> {
        let mut client = self.connect()?;
        let t = &self.table;
        let sql = if self.fifo {
            // Deduplicated in one statement: the insert happens only if the dedup id is new.
            format!(
                "WITH d AS (INSERT INTO {t}_dedup (dedup, expires_at) VALUES ($2, now() + interval '5 minutes')
                            ON CONFLICT DO NOTHING RETURNING 1)
                 INSERT INTO {t} (grp, message) SELECT $1, $3 FROM d"
            )
        } else {
            format!("INSERT INTO {t} (message) VALUES ($1)")
        };
        let send = client.prepare(&sql).map_err(err)?;
        Ok(Box::new(PgSender { client, send, fifo: self.fifo, n: 0, thread: i }))
    }

    fn receiver(&self, _: usize) -> Result<Box<dyn Receiver + '_>, String> {
        let mut client = self.connect()?;
        let t = &self.table;
        let pick = if self.fifo {
            format!(
                "SELECT m.msg_id FROM {t} m
                 WHERE m.vt <= clock_timestamp()
                   AND NOT EXISTS (SELECT 1 FROM {t} e WHERE e.grp = m.grp AND e.msg_id < m.msg_id)
                 ORDER BY m.msg_id LIMIT $2 FOR UPDATE SKIP LOCKED"
            )
        } else {
            format!(
                "SELECT msg_id FROM {t} WHERE vt <= clock_timestamp() ORDER BY msg_id LIMIT $2 FOR UPDATE SKIP LOCKED"
            )
        };
        // pgmq's read: hide the picked rows for the visibility timeout and count the read.
        let read = client
            .prepare(&format!(
                "WITH cte AS ({pick})
                 UPDATE {t} m SET vt = clock_timestamp() + $1::int4 * interval '1 second', read_ct = read_ct + 1
                 FROM cte WHERE m.msg_id = cte.msg_id
                 RETURNING m.msg_id, m.message"
            ))
            .map_err(err)?;
        let delete =
            client.prepare(&format!("DELETE FROM {t} WHERE msg_id = ANY($1) RETURNING msg_id")).map_err(err)?;
        Ok(Box::new(PgReceiver { client, read, delete }))
    }
}

/// What the report says of PostgreSQL's durability and configuration.
pub fn durability_text() -> String {
    let settings: Vec<String> = crate::servers::POSTGRES_SETTINGS.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("every commit waits for its WAL fsync; {}", settings.join(", "))
}
