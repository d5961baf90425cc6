//! The SQLite incident file: schema, batched upserts, queries for the CLI
//! and API, operator closing, retention. A row written by the daemon never
//! reopens an incident an operator closed, nor overwrites its notes.

use std::{path::Path, time::SystemTime};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{Incident, Note, Status, from_ms, to_ms};
use crate::finding::Severity;

/// Register database errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no (locked, read-only, corrupt, full disk...).
    #[error("incident database {path}: {source}")]
    Sql {
        /// The file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Creating the directory.
    #[error("incident database {path}: cannot create its directory: {source}")]
    Dir {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No such incident.
    #[error("no incident {0}")]
    NotFound(i64),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS incidents (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    status        TEXT NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    detected_at   INTEGER NOT NULL,
    mitigated_at  INTEGER,
    closed_at     INTEGER,
    source        TEXT NOT NULL,
    token_id      TEXT,
    subject       TEXT,
    endpoint      TEXT NOT NULL,
    count         INTEGER NOT NULL,
    decision      TEXT NOT NULL,
    evidence      TEXT NOT NULL,
    actions       TEXT NOT NULL,
    notes         TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS incidents_first_seen ON incidents(first_seen);
CREATE INDEX IF NOT EXISTS incidents_kind ON incidents(kind);
";

const UPSERT: &str = "
INSERT INTO incidents (id, kind, severity, status, first_seen, last_seen, detected_at,
    mitigated_at, closed_at, source, token_id, subject, endpoint, count, decision, evidence,
    actions, notes)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, '[]')
ON CONFLICT(id) DO UPDATE SET
    severity = excluded.severity,
    status = CASE WHEN incidents.status = 'closed' THEN 'closed' ELSE excluded.status END,
    last_seen = excluded.last_seen,
    mitigated_at = excluded.mitigated_at,
    token_id = excluded.token_id,
    subject = excluded.subject,
    count = excluded.count,
    decision = excluded.decision,
    actions = excluded.actions
";

const COLUMNS: &str = "id, kind, severity, status, first_seen, last_seen, detected_at, \
    mitigated_at, closed_at, source, token_id, subject, endpoint, count, decision, evidence, \
    actions, notes";

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// First seen at or after.
    pub since: Option<SystemTime>,
    /// First seen before.
    pub until: Option<SystemTime>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Most rows (newest first); 0 = all.
    pub limit: usize,
}

/// An open register file.
pub struct Store {
    conn: Connection,
    path: String,
}

fn severity_of(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        _ => Severity::Low,
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(Incident {
        id: r.get(0)?,
        kind: r.get(1)?,
        severity: severity_of(&r.get::<_, String>(2)?),
        status: Status::parse(&r.get::<_, String>(3)?).unwrap_or(Status::Open),
        first_seen: from_ms(r.get(4)?),
        last_seen: from_ms(r.get(5)?),
        detected_at: from_ms(r.get(6)?),
        mitigated_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
        closed_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
        source: r.get(9)?,
        token_id: r.get(10)?,
        subject: r.get(11)?,
        endpoint: r.get(12)?,
        count: r.get::<_, i64>(13)?.max(0) as u64,
        decision: r.get(14)?,
        evidence: r.get(15)?,
        actions: serde_json::from_str(&json(16)?).unwrap_or_default(),
        notes: serde_json::from_str(&json(17)?).unwrap_or_default(),
    })
}

impl Store {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens (creating the file, its directory and the schema).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: shown.clone(),
                source,
            })?;
        }
        let sql = |source| StoreError::Sql {
            path: shown.clone(),
            source,
        };
        let fresh = !path.exists();
        let conn = Connection::open(path).map_err(sql)?;
        if fresh {
            // Subjects and pseudonyms are personal data: owner only.
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_millis(500))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Self { conn, path: shown })
    }

    /// Opens an existing file for reading only (CLI listing and reports).
    pub fn open_readonly(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sql {
            path: shown.clone(),
            source,
        })?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(2));
        Ok(Self { conn, path: shown })
    }

    /// Writes a batch in one transaction (all or nothing).
    pub fn upsert(&mut self, batch: &[Incident]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut stmt = tx.prepare_cached(UPSERT).map_err(sql)?;
            for i in batch {
                stmt.execute(params![
                    i.id,
                    i.kind,
                    i.severity.to_string(),
                    i.status.as_str(),
                    to_ms(i.first_seen),
                    to_ms(i.last_seen),
                    to_ms(i.detected_at),
                    i.mitigated_at.map(to_ms),
                    i.closed_at.map(to_ms),
                    i.source,
                    i.token_id,
                    i.subject,
                    i.endpoint,
                    i.count as i64,
                    i.decision,
                    i.evidence,
                    serde_json::to_string(&i.actions).unwrap_or_else(|_| "[]".into()),
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// The highest id stored (0 for none).
    pub fn max_id(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM incidents", [], |r| {
                r.get(0)
            })
            .map_err(self.err())
    }

    /// Incidents matching `q`, newest first.
    pub fn list(&self, q: &Query) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE first_seen >= ?1 AND first_seen < ?2 \
             AND (?3 IS NULL OR kind = ?3) ORDER BY first_seen DESC, id DESC LIMIT ?4"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map(
                params![
                    q.since.map_or(i64::MIN, to_ms),
                    q.until.map_or(i64::MAX, to_ms),
                    q.kind,
                    if q.limit == 0 { -1 } else { q.limit as i64 },
                ],
                row,
            )
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// One incident.
    pub fn get(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1"),
                [id],
                row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Closes an incident with a note; returns it as it now stands.
    pub fn close(&mut self, id: i64, note: &str, at: SystemTime) -> Result<Incident, StoreError> {
        let mut inc = self.get(id)?.ok_or(StoreError::NotFound(id))?;
        inc.notes.push(Note {
            at,
            text: note.to_string(),
        });
        inc.status = Status::Closed;
        inc.closed_at.get_or_insert(at);
        self.conn
            .execute(
                "UPDATE incidents SET status = 'closed', closed_at = ?2, notes = ?3 WHERE id = ?1",
                params![
                    id,
                    inc.closed_at.map(to_ms),
                    serde_json::to_string(&inc.notes).unwrap_or_else(|_| "[]".into())
                ],
            )
            .map_err(self.err())?;
        Ok(inc)
    }

    /// Deletes incidents first seen before `cutoff`; returns how many.
    pub fn delete_before(&self, cutoff: SystemTime) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM incidents WHERE first_seen < ?1",
                [to_ms(cutoff)],
            )
            .map_err(self.err())
    }
}
