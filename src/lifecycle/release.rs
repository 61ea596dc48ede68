//! Releases of the application and the restore points taken before they changed.
//!
//! Each switch of the release is recorded where the release lives (on hosts, one JSON line per
//! switch in `<dir>/releases/history.jsonl`; on Kubernetes, the Deployment's revisions), with the
//! restore point of the database taken just before it. `terroir rollback` reads that record:
//! the previous release, and with `--with-data`, the restore point to go back to and what going
//! back loses.

use serde::{Deserialize, Serialize};

/// A point the database can be restored to, taken before a release changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePoint {
    /// Its name (`pg_create_restore_point`'s; pgBackRest restores to it with --type=name).
    pub name: String,
    /// When it was taken: RFC 3339, UTC, and Unix seconds.
    pub time: String,
    pub unix: i64,
    /// The WAL position of the restore point.
    pub lsn: String,
    /// The transaction that took it (`pg_current_xact_id()`): rows written after it are newer.
    pub txid: u64,
    /// The pgBackRest backup it is replayed from.
    pub backup: String,
}

/// One switch of the application's release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Switch {
    /// Unix seconds.
    pub at: i64,
    /// The release switched to (its SHA-256 on hosts, its image on Kubernetes).
    pub release: String,
    /// The release it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The restore point taken before, when there was a database to take it of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<RestorePoint>,
    /// `apply`, `rollback` or `switch-back` (after a failed health check).
    pub by: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("no release was switched before {current}: there is nothing to roll back to")]
    NoPrevious { current: String },
    #[error("no kept release starts with `{0}`; kept: {1}")]
    Unknown(String, String),
    #[error("`{0}` names more than one kept release: {1}")]
    Ambiguous(String, String),
    #[error("{0} is the release running already")]
    Current(String),
    #[error(
        "no restore point was taken when {release} replaced {target} (the database had no backup repository then): its data cannot be rolled back; roll back the release alone (without --with-data)"
    )]
    NoRestorePoint { release: String, target: String },
}

/// A release as people read it: the first 12 hexadecimal digits of a SHA-256, an image as is.
pub fn short(release: &str) -> &str {
    if release.len() == 64 && release.bytes().all(|b| b.is_ascii_hexdigit()) {
        &release[..12]
    } else {
        release
    }
}

/// The record of one application host's (or Deployment's) switches, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History(pub Vec<Switch>);

impl History {
    /// Read `history.jsonl`; lines that are not a switch (a write cut short) are skipped.
    pub fn parse(text: &str) -> History {
        History(
            text.lines()
                .filter_map(|l| serde_json::from_str(l.trim()).ok())
                .collect(),
        )
    }

    pub fn current(&self) -> Option<&str> {
        self.0.last().map(|s| s.release.as_str())
    }

    /// The release to go back to: `to` (a prefix of a kept release), else the one the current
    /// replaced.
    pub fn target(&self, kept: &[String], to: Option<&str>) -> Result<String, ReleaseError> {
        let current = self.current().unwrap_or_default().to_owned();
        let target = match to {
            Some(prefix) => {
                let found: Vec<&String> = kept.iter().filter(|k| k.starts_with(prefix)).collect();
                let list =
                    |l: &[&String]| l.iter().map(|k| short(k)).collect::<Vec<_>>().join(", ");
                match found.as_slice() {
                    [one] => (*one).clone(),
                    [] => {
                        let all: Vec<&String> = kept.iter().collect();
                        return Err(ReleaseError::Unknown(prefix.to_owned(), list(&all)));
                    }
                    many => return Err(ReleaseError::Ambiguous(prefix.to_owned(), list(many))),
                }
            }
            None => self
                .0
                .iter()
                .rev()
                .find_map(|s| s.from.clone().filter(|f| *f != current))
                .filter(|f| kept.contains(f))
                .ok_or_else(|| ReleaseError::NoPrevious {
                    current: short(&current).to_owned(),
                })?,
        };
        if target == current {
            return Err(ReleaseError::Current(short(&current).to_owned()));
        }
        Ok(target)
    }

    /// The restore point to restore for going back to `target`: the one taken when the release
    /// after `target`'s last run replaced it (the oldest data the releases since have written
    /// over).
    pub fn restore_point(&self, target: &str) -> Result<RestorePoint, ReleaseError> {
        let last_run = self.0.iter().rposition(|s| s.release == target);
        let after = match last_run {
            Some(i) => self.0.get(i + 1),
            None => self.0.iter().find(|s| s.from.as_deref() == Some(target)),
        };
        let release = after
            .map(|s| short(&s.release).to_owned())
            .unwrap_or_default();
        after
            .and_then(|s| s.restore_point.clone())
            .ok_or_else(|| ReleaseError::NoRestorePoint {
                release,
                target: short(target).to_owned(),
            })
    }
}

/// Rows written since a restore point, in one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableLoss {
    /// `schema.table`
    pub table: String,
    /// Rows inserted or updated since (rows deleted since are not counted: they come back).
    pub rows: u64,
}

/// What restoring a restore point loses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Loss {
    pub database: String,
    pub restore_point: RestorePoint,
    /// Now, as the database tells it: RFC 3339, UTC, and the span lost in seconds.
    pub now: String,
    pub seconds: i64,
    /// Every table with rows written since, largest first.
    pub tables: Vec<TableLoss>,
}

impl Loss {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// What is lost, as people read it, one line each.
    pub fn statement(&self) -> Vec<String> {
        let mut out = vec![format!(
            "the database {} goes back to the restore point {} taken at {}: everything written in the {} since (until {}) is lost",
            self.database,
            self.restore_point.name,
            self.restore_point.time,
            crate::text::duration(std::time::Duration::from_secs(
                self.seconds.max(0).unsigned_abs()
            )),
            self.now
        )];
        if self.tables.is_empty() {
            out.push("no row was written since in any table".into());
        }
        for t in &self.tables {
            out.push(format!(
                "{}: {} row{} written since (inserted or updated)",
                t.table,
                t.rows,
                crate::text::plural(t.rows as usize)
            ));
        }
        out
    }
}

/// The query counting, in each table of the database it runs in, the rows written by
/// transactions after `txid` (their `xmin` is younger): `schema.table|rows` lines, the tables
/// with none left out. `query_to_xml` runs one count per table in one statement.
pub fn rows_since_sql(txid: u64) -> String {
    let xid = txid % (1 << 32);
    format!(
        "select n.nspname || '.' || c.relname, q.rows from pg_class c join pg_namespace n on n.oid = c.relnamespace, \
         lateral (select (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I where age(xmin) < age(%L::xid)', n.nspname, c.relname, '{xid}'), false, true, '')))[1]::text::bigint as rows) q \
         where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and q.rows > 0 \
         order by q.rows desc, 1"
    )
}

/// `rows_since_sql`'s output (psql -XAt) read.
pub fn parse_rows(text: &str) -> Vec<TableLoss> {
    text.lines()
        .filter_map(|l| {
            let (table, rows) = l.trim().rsplit_once('|')?;
            Some(TableLoss {
                table: table.to_owned(),
                rows: rows.trim().parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn point(name: &str) -> RestorePoint {
        RestorePoint {
            name: name.into(),
            time: "2026-12-05T10:00:00Z".into(),
            unix: 1,
            lsn: "0/3000090".into(),
            txid: 750,
            backup: "20261205-095000F".into(),
        }
    }

    fn switch(release: &str, from: Option<&str>, rp: Option<&str>) -> Switch {
        Switch {
            at: 0,
            release: release.into(),
            from: from.map(Into::into),
            restore_point: rp.map(point),
            by: "apply".into(),
        }
    }

    fn history() -> History {
        History(vec![
            switch(A, None, None),
            switch(B, Some(A), Some("before-b")),
            switch(C, Some(B), Some("before-c")),
        ])
    }

    #[test]
    fn the_previous_release_is_the_one_the_current_replaced() {
        let kept = vec![A.to_owned(), B.to_owned(), C.to_owned()];
        assert_eq!(history().target(&kept, None), Ok(B.to_owned()));
        assert_eq!(history().target(&kept, Some("aaaa")), Ok(A.to_owned()));
        assert_eq!(
            history().target(&kept, Some("cc")),
            Err(ReleaseError::Current("cccccccccccc".into()))
        );
        assert!(matches!(
            history().target(&kept, Some("dd")),
            Err(ReleaseError::Unknown(..))
        ));
        // a previous release no longer kept cannot be gone back to
        assert!(matches!(
            history().target(&[C.to_owned()], None),
            Err(ReleaseError::NoPrevious { .. })
        ));
    }

    #[test]
    fn after_a_rollback_the_previous_release_is_not_the_one_rolled_back_from() {
        let mut h = history();
        h.0.push(switch(B, Some(C), None));
        let kept = vec![A.to_owned(), B.to_owned(), C.to_owned()];
        // C replaced B, then B replaced C: going back again means A, not C again
        assert_eq!(h.target(&kept, None), Ok(C.to_owned()));
    }

    #[test]
    fn the_restore_point_is_the_one_taken_when_the_target_was_replaced() {
        assert_eq!(
            history().restore_point(B).map(|p| p.name),
            Ok("before-c".into())
        );
        assert_eq!(
            history().restore_point(A).map(|p| p.name),
            Ok("before-b".into())
        );
        let h = History(vec![switch(A, None, None), switch(B, Some(A), None)]);
        assert!(matches!(
            h.restore_point(A),
            Err(ReleaseError::NoRestorePoint { .. })
        ));
    }

    #[test]
    fn a_history_line_cut_short_is_skipped() {
        let line = serde_json::to_string(&switch(A, None, None)).unwrap_or_default();
        let h = History::parse(&format!("{line}\n{{\"at\": 3, \"rel"));
        assert_eq!(h.0.len(), 1);
        assert_eq!(h.current(), Some(A));
    }

    #[test]
    fn rows_are_read_per_table_and_the_statement_names_each() {
        let tables = parse_rows("public.smoke_rows|12\npublic.audit|3\n\n");
        assert_eq!(tables.len(), 2);
        let loss = Loss {
            database: "crm".into(),
            restore_point: point("before-c"),
            now: "2026-12-05T10:05:00Z".into(),
            seconds: 300,
            tables,
        };
        assert_eq!(loss.rows(), 15);
        let s = loss.statement().join("\n");
        assert!(
            s.contains("public.smoke_rows: 12 rows written since"),
            "{s}"
        );
        assert!(
            s.contains("restore point before-c taken at 2026-12-05T10:00:00Z"),
            "{s}"
        );
        assert!(rows_since_sql((1 << 32) + 7).contains("'7'"));
    }
}
