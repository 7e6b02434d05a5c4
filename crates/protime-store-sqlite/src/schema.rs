//! The schema and its migrations.
//!
//! The migrations are the SQL files in `migrations/` (`V1__initial.sql`,
//! `V2__origins_and_log_pointers.sql`, …), embedded at compile time and applied by
//! [refinery](https://docs.rs/refinery), which records every applied migration (version,
//! name, checksum of its SQL) in the table `protime_schema_history`. That history is the
//! schema version. After migrating, `PRAGMA user_version` is set to the latest version as
//! well: protime 0.1 checked only that, so it refuses a file it cannot read.
//!
//! Files made before refinery have no history, only `user_version` 1 (protime 0.1) or 2:
//! their migrations are recorded as applied without running them (refinery's fake target),
//! then the later ones are applied as usual. A version-1 file is checked before version 2
//! is applied: every state row must have an applied change-log entry.
//!
//! Refused: a history or `user_version` above the latest migration known here
//! ([`StoreError::Unsupported`]), a recorded migration whose name or checksum differs from
//! the one embedded here (idem: the file was migrated by other code), and a history that
//! cannot be read ([`StoreError::Corrupt`]).
//!
//! # Several openers at once
//!
//! refinery runs each of its steps in a transaction of its own, so checking and migrating
//! cannot be one transaction, and two stores (threads or processes) may open one file at
//! the same moment. The migration is therefore a loop: read the state (history and
//! `user_version`, in one read transaction, with the checks that decide what to do), take
//! one step, read again. A refinery run is one transaction for all its migrations (grouped)
//! and, like every transaction on this connection while migrating, begins `IMMEDIATE`, so
//! it waits for another writer (busy timeout) instead of failing to upgrade a read. A step
//! that fails while the state changed under it (another opener migrated first: its run then
//! collides with the tables or history rows already there, and is rolled back) is retried
//! from the new state; a step that fails on a state nobody changed is the error. The last
//! step (setting `user_version`, checking the tables) re-reads the state inside its own
//! `IMMEDIATE` transaction.

use refinery::error::Kind;
use refinery::{Migration, Runner, SchemaVersion, Target};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, TransactionBehavior};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::StoreError;

/// `embedded::migrations::runner()`: a refinery [`Runner`] with the files of `migrations/`.
mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Version of the schema this code writes: the latest migration in `migrations/`.
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// refinery's table of applied migrations (its default name would be
/// `refinery_schema_history`).
pub(crate) const HISTORY_TABLE: &str = "protime_schema_history";

/// The last `user_version` written before the schema history existed.
const LAST_VERSION_WITHOUT_HISTORY: i64 = 2;

/// The migration that carries version-1 state rows over (they are checked first).
const FROM_VERSION_1: i64 = 2;

/// The tables of every schema version.
const TABLES: [&str; 3] = ["clocking_state", "change_log", "dead_letters"];

/// Steps of one migration, retries included. Opening a version-1 file takes three (record
/// V1, apply V2, finish), a retry one more; the state only moves forward (history rows are
/// added, `user_version` rises), so other openers can force only a few retries.
const MAX_STEPS: usize = 12;

/// A migration recorded in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Applied {
    version: i64,
    name: String,
    checksum: u64,
}

/// What the file says about its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    user_version: i64,
    /// By version; empty when the history table does not exist (yet).
    history: Vec<Applied>,
}

/// The next step of the migration.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// A refinery run to this target.
    Run(Target),
    /// Every migration is recorded: set `user_version` and check the tables.
    Finish,
}

/// Creates the schema on a new file, migrates an older one, checks the current one, and
/// refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // refinery begins its transactions with `Connection::transaction`: make them wait for
    // the write lock up front. The writer names its own behavior; reset the default anyway.
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    let result = migrate_in_steps(conn);
    conn.set_transaction_behavior(TransactionBehavior::Deferred);
    result
}

fn migrate_in_steps(conn: &mut Connection) -> Result<(), StoreError> {
    for _ in 0..MAX_STEPS {
        let (state, step) = next_step(conn)?;
        if take_step(conn, &state, step)? == Progress::Done {
            return Ok(());
        }
    }
    Err(StoreError::Migration {
        what: format!(
            "the schema kept changing while it was migrated ({MAX_STEPS} steps): is another \
             program migrating this file?"
        ),
        source: None,
    })
}

/// Where the migration stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The schema is current and checked.
    Done,
    /// Read the state again and take the next step.
    Again,
}

/// Reads the state and decides the next step, in one read transaction.
pub(crate) fn next_step(conn: &mut Connection) -> Result<(State, Step), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let state = read_state(&tx)?;
    let step = plan(&tx, &state)?;
    tx.commit()?;
    Ok((state, step))
}

/// Takes `step`, planned on `state`. A failure while the state changed (another opener
/// moved it on) is not an error: the caller reads the state again.
pub(crate) fn take_step(
    conn: &mut Connection,
    state: &State,
    step: Step,
) -> Result<Progress, StoreError> {
    match step {
        Step::Finish => {
            if finish(conn, state)? {
                return Ok(Progress::Done);
            }
            tracing::debug!("the schema changed while it was checked; reading it again");
        }
        Step::Run(target) => match runner(target).run(conn) {
            Ok(report) => log_run(state, target, report.applied_migrations()),
            Err(error) => {
                let error = from_refinery(error);
                match read_state(conn) {
                    Ok(now) if now != *state => {}
                    _ => return Err(error),
                }
                tracing::debug!(
                    "a schema migration failed while the schema changed (another opener \
                     migrated it first?); reading it again: {error}"
                );
            }
        },
    }
    Ok(Progress::Again)
}

/// The embedded migrations, recorded in [`HISTORY_TABLE`], all in one transaction.
fn runner(target: Target) -> Runner {
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name(HISTORY_TABLE);
    runner.set_target(target).set_grouped(true)
}

fn log_run(state: &State, target: Target, applied: &[Migration]) {
    let names: Vec<String> = applied.iter().map(ToString::to_string).collect();
    match target {
        Target::Fake | Target::FakeVersion(_) => tracing::info!(
            "store of schema version {} (made before {HISTORY_TABLE}): its migrations were \
             recorded as applied",
            state.user_version
        ),
        _ if applied.is_empty() => {
            tracing::debug!("no migration left to apply (another opener applied them)");
        }
        _ if state.user_version == 0 && state.history.is_empty() => {
            tracing::debug!("new store: applied {}", names.join(", "));
        }
        _ => tracing::info!("store migrated: applied {}", names.join(", ")),
    }
}

fn read_state(conn: &Connection) -> Result<State, StoreError> {
    let user_version = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let history = if table_exists(conn, HISTORY_TABLE)? {
        read_history(conn)?
    } else {
        Vec::new()
    };
    Ok(State {
        user_version,
        history,
    })
}

/// Reads the history, checking every value refinery will read: it panics on a timestamp or
/// checksum it cannot parse, and such a file must be refused, not crash the process.
fn read_history(conn: &Connection) -> Result<Vec<Applied>, StoreError> {
    let mut statement = conn.prepare(&format!(
        "SELECT version, name, applied_on, checksum FROM {HISTORY_TABLE} ORDER BY version"
    ))?;
    let mut rows = statement.query([])?;
    let mut history = Vec::new();
    while let Some(row) = rows.next()? {
        let bad = |what: &str| StoreError::corrupt(format!("{HISTORY_TABLE}: {what}"));
        let version = match row.get_ref(0)? {
            ValueRef::Integer(version) if SchemaVersion::try_from(version).is_ok() => version,
            ValueRef::Integer(version) => {
                return Err(bad(&format!("version {version} is out of range")));
            }
            other => return Err(bad(&format!("a version is {}", other.data_type()))),
        };
        let text = |index: usize, column: &str| match row.get_ref(index)? {
            ValueRef::Text(text) => std::str::from_utf8(text)
                .map_err(|_| bad(&format!("{column} of version {version} is not UTF-8"))),
            other => Err(bad(&format!(
                "{column} of version {version} is {}",
                other.data_type()
            ))),
        };
        let name = text(1, "name")?.to_owned();
        let applied_on = text(2, "applied_on")?;
        if OffsetDateTime::parse(applied_on, &Rfc3339).is_err() {
            return Err(bad(&format!(
                "applied_on {applied_on:?} of version {version} is not an RFC 3339 timestamp"
            )));
        }
        let checksum = text(3, "checksum")?;
        let checksum = checksum.parse::<u64>().map_err(|_| {
            bad(&format!(
                "checksum {checksum:?} of version {version} is not a number"
            ))
        })?;
        history.push(Applied {
            version,
            name,
            checksum,
        });
    }
    Ok(history)
}

/// Decides the next step from the state, refusing what cannot be migrated. Runs inside the
/// read transaction that read `state`.
fn plan(conn: &Connection, state: &State) -> Result<Step, StoreError> {
    let runner = embedded::migrations::runner();
    let migrations = runner.get_migrations();

    let found = state
        .history
        .iter()
        .map(|applied| applied.version)
        .chain([state.user_version])
        .max()
        .unwrap_or(state.user_version);
    if found > SCHEMA_VERSION {
        return Err(newer(found));
    }
    if state.user_version < 0 {
        return Err(StoreError::Unsupported {
            what: format!(
                "schema version {} is not one of protime's",
                state.user_version
            ),
        });
    }
    for applied in &state.history {
        match migrations
            .iter()
            .find(|migration| i64::from(migration.version()) == applied.version)
        {
            None => {
                return Err(StoreError::corrupt(format!(
                    "{HISTORY_TABLE} records migration V{}__{}, which protime never had",
                    applied.version, applied.name
                )));
            }
            Some(migration)
                if migration.name() != applied.name || migration.checksum() != applied.checksum =>
            {
                return Err(divergent(
                    applied.version,
                    &applied.name,
                    applied.checksum,
                    migration,
                ));
            }
            Some(_) => {}
        }
    }

    if state.history.is_empty() {
        match state.user_version {
            0 => {}
            made_before_history @ 1..=LAST_VERSION_WITHOUT_HISTORY => {
                check_tables(conn, made_before_history)?;
                let version = SchemaVersion::try_from(made_before_history).map_err(|_| {
                    StoreError::corrupt(format!("schema version {made_before_history}"))
                })?;
                return Ok(Step::Run(Target::FakeVersion(version)));
            }
            other => {
                return Err(StoreError::corrupt(format!(
                    "schema version {other} without {HISTORY_TABLE}"
                )));
            }
        }
    }

    let pending: Vec<i64> = migrations
        .iter()
        .map(|migration| i64::from(migration.version()))
        .filter(|version| {
            !state
                .history
                .iter()
                .any(|applied| applied.version == *version)
        })
        .collect();
    if pending.is_empty() {
        return Ok(Step::Finish);
    }
    if pending.contains(&FROM_VERSION_1) && table_exists(conn, "clocking_state")? {
        check_version_1_state(conn)?;
    }
    Ok(Step::Run(Target::Latest))
}

/// Every version-1 state row was made by an applied, logged webhook delivery; one that was
/// not cannot be carried over to version 2 without making up its origin.
fn check_version_1_state(conn: &Connection) -> Result<(), StoreError> {
    let orphans: i64 = conn.query_row(
        "SELECT COUNT(*) FROM clocking_state s WHERE NOT EXISTS (SELECT 1 FROM change_log l
         WHERE l.clocking_id = s.id AND l.change_version = s.change_version AND l.outcome = 'applied')",
        [],
        |row| row.get(0),
    )?;
    if orphans > 0 {
        return Err(StoreError::corrupt(format!(
            "{orphans} clocking_state rows of schema version 1 have no applied change-log entry"
        )));
    }
    Ok(())
}

/// Sets `user_version` to the latest version and checks the tables, inside one `IMMEDIATE`
/// transaction that first checks the state is still `expected`; `false` if it is not.
fn finish(conn: &mut Connection, expected: &State) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if read_state(&tx)? != *expected {
        return Ok(false);
    }
    check_tables(&tx, SCHEMA_VERSION)?;
    if expected.user_version != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(true)
}

fn check_tables(conn: &Connection, version: i64) -> Result<(), StoreError> {
    for table in TABLES {
        if !table_exists(conn, table)? {
            return Err(StoreError::corrupt(format!(
                "schema version {version} without table {table}"
            )));
        }
    }
    Ok(())
}

fn table_exists(conn: &Connection, table: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [table],
        |row| row.get(0),
    )?)
}

fn newer(found: i64) -> StoreError {
    StoreError::Unsupported {
        what: format!(
            "schema version {found} is newer than this protime-store-sqlite, which knows up to \
             {SCHEMA_VERSION}"
        ),
    }
}

fn divergent(version: i64, name: &str, checksum: u64, embedded: &Migration) -> StoreError {
    StoreError::Unsupported {
        what: format!(
            "migration {version} recorded in {HISTORY_TABLE} ({name}, checksum {checksum}) differs \
             from this protime-store-sqlite's {embedded} (checksum {}): the file was migrated \
             by other code",
            embedded.checksum()
        ),
    }
}

/// refinery's verdicts on the history become the errors [`plan`] gives for them (it finds
/// them first, unless the history changed in between); a failed run stays a
/// [`StoreError::Migration`] with refinery's error as its source.
fn from_refinery(error: refinery::Error) -> StoreError {
    let mapped = match error.kind() {
        Kind::DivergentVersion(applied, embedded) => Some(divergent(
            i64::from(applied.version()),
            applied.name(),
            applied.checksum(),
            embedded,
        )),
        Kind::MissingVersion(migration) if i64::from(migration.version()) > SCHEMA_VERSION => {
            Some(newer(i64::from(migration.version())))
        }
        Kind::MissingVersion(migration) => Some(StoreError::corrupt(format!(
            "migration {migration} is missing from {HISTORY_TABLE} although a later one is \
             recorded, or is recorded but unknown here"
        ))),
        _ => None,
    };
    mapped.unwrap_or_else(|| StoreError::Migration {
        what: error.to_string(),
        source: Some(error),
    })
}

/// The SQL of an embedded migration (tests make files of older versions with it).
#[cfg(test)]
pub(crate) fn migration_sql(version: SchemaVersion) -> Option<String> {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .find(|migration| migration.version() == version)
        .and_then(|migration| migration.sql().map(str::to_owned))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A file as protime 0.1 (version 1) or the first 0.2 builds (version 2) left it: the
    /// schema and `user_version`, no history.
    fn made_before_history(version: SchemaVersion) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for step in 1..=version {
            conn.execute_batch(&migration_sql(step).unwrap()).unwrap();
        }
        conn.pragma_update(None, "user_version", version).unwrap();
        conn
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    fn history(conn: &Connection) -> Vec<(i64, String)> {
        read_state(conn)
            .unwrap()
            .history
            .into_iter()
            .map(|applied| (applied.version, applied.name))
            .collect()
    }

    fn every_migration() -> Vec<(i64, String)> {
        vec![
            (1, "initial".to_owned()),
            (2, "origins_and_log_pointers".to_owned()),
            (3, "dead_letter_replays".to_owned()),
            (4, "retention_and_erasure".to_owned()),
        ]
    }

    fn message(error: &StoreError) -> String {
        error.to_string()
    }

    #[test]
    fn the_latest_migration_is_the_schema_version() {
        let runner = embedded::migrations::runner();
        let versions: Vec<i64> = runner
            .get_migrations()
            .iter()
            .map(|migration| i64::from(migration.version()))
            .collect();
        assert_eq!(versions.iter().max(), Some(&SCHEMA_VERSION));
        assert_eq!(versions.len(), usize::try_from(SCHEMA_VERSION).unwrap());
    }

    #[test]
    fn a_new_file_gets_every_migration_and_the_user_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(history(&conn), every_migration());
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
        check_tables(&conn, SCHEMA_VERSION).unwrap();
        let log_seq: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('clocking_state') WHERE name = 'log_seq')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(log_seq, "version 2 was applied");
        // Migrating again changes nothing.
        migrate(&mut conn).unwrap();
        assert_eq!(history(&conn), every_migration());
    }

    #[test]
    fn a_version_1_file_is_migrated_keeping_its_log() {
        let mut conn = made_before_history(1);
        conn.execute(
            "INSERT INTO change_log (received_at, clocking_id, change_version, change_type, outcome, raw_body)
             VALUES ('2026-01-01T00:00:00Z', 7, '0A', 'Delete', 'applied', X'7B7D')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (origin, body): (String, Vec<u8>) = conn
            .query_row(
                "SELECT origin, raw_body FROM change_log WHERE seq = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (origin.as_str(), body.as_slice()),
            ("webhook", b"{}".as_slice())
        );
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
        assert_eq!(history(&conn), every_migration());
    }

    #[test]
    fn a_version_1_state_row_without_its_log_entry_is_refused() {
        let mut conn = made_before_history(1);
        conn.execute_batch(
            "INSERT INTO clocking_state (id, change_version, deleted, clocking_json) VALUES (7, '0A', 1, NULL);",
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
        // Version 2 was not applied; the file stays a version-1 file (V1 recorded).
        assert_eq!(user_version(&conn), 1);
        assert_eq!(history(&conn), every_migration()[..1]);
        // And it is refused again, the same way.
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    }

    #[test]
    fn a_version_2_file_is_recorded_without_running_its_migrations() {
        let mut conn = made_before_history(2);
        conn.execute_batch(
            "INSERT INTO change_log (received_at, clocking_id, change_version, change_type, outcome, origin, raw_body)
             VALUES ('2026-01-01T00:00:00Z', 7, '0A', 'Delete', 'applied', 'webhook', X'7B7D');
             INSERT INTO clocking_state (id, change_version, deleted, log_seq) VALUES (7, '0A', 1, 1);",
        )
        .unwrap();
        // Running version 2 again would fail (`key_fingerprint` exists): it must be faked.
        migrate(&mut conn).unwrap();
        assert_eq!(history(&conn), every_migration());
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
        let rows: (i64, i64) = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM change_log), (SELECT log_seq FROM clocking_state WHERE id = 7)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(rows, (1, 1));
    }

    #[test]
    fn a_version_2_file_without_its_tables_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
        assert!(
            message(&error).contains("schema version 2 without table clocking_state"),
            "{error}"
        );
    }

    #[test]
    fn a_history_without_the_user_version_is_completed() {
        // As if the process died between refinery's run and setting `user_version`.
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", 0).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
        assert_eq!(history(&conn), every_migration());
    }

    #[test]
    fn a_newer_history_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            &format!(
                "INSERT INTO {HISTORY_TABLE} (version, name, applied_on, checksum)
                 VALUES (5, 'from_the_future', '2030-01-01T00:00:00Z', '1')"
            ),
            [],
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
        assert!(
            message(&error).contains(
                "schema version 5 is newer than this protime-store-sqlite, which knows up to 4"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_newer_user_version_is_refused_with_or_without_history() {
        for with_history in [false, true] {
            let mut conn = Connection::open_in_memory().unwrap();
            if with_history {
                migrate(&mut conn).unwrap();
            }
            conn.pragma_update(None, "user_version", 5).unwrap();
            let error = migrate(&mut conn).unwrap_err();
            assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
            assert!(
                message(&error).contains(
                    "schema version 5 is newer than this protime-store-sqlite, which knows up to 4"
                ),
                "{error}"
            );
        }
    }

    #[test]
    fn a_divergent_migration_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            &format!("UPDATE {HISTORY_TABLE} SET checksum = '12345' WHERE version = 2"),
            [],
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
        let text = message(&error);
        assert!(
            text.contains("migration 2 recorded in protime_schema_history")
                && text.contains("checksum 12345")
                && text.contains("V2__origins_and_log_pointers")
                && text.contains("migrated by other code"),
            "{text}"
        );

        // refinery finds the same on its own, and its error maps to the same refusal.
        let refinery_error = runner(Target::Latest).run(&mut conn).unwrap_err();
        assert!(
            matches!(refinery_error.kind(), Kind::DivergentVersion(..)),
            "{refinery_error}"
        );
        let mapped = from_refinery(refinery_error);
        assert!(matches!(mapped, StoreError::Unsupported { .. }), "{mapped}");
        assert_eq!(message(&mapped), text);
    }

    #[test]
    fn a_renamed_migration_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            &format!("UPDATE {HISTORY_TABLE} SET name = 'something_else' WHERE version = 1"),
            [],
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
        assert!(message(&error).contains("something_else"), "{error}");
    }

    #[test]
    fn a_malformed_history_row_is_refused_not_a_panic() {
        for (column, value) in [
            ("applied_on", "'yesterday'"),
            ("applied_on", "NULL"),
            ("checksum", "'not a number'"),
            ("checksum", "X'00'"),
            ("name", "NULL"),
        ] {
            let mut conn = Connection::open_in_memory().unwrap();
            migrate(&mut conn).unwrap();
            conn.execute(
                &format!("UPDATE {HISTORY_TABLE} SET {column} = {value} WHERE version = 1"),
                [],
            )
            .unwrap();
            let error = migrate(&mut conn).unwrap_err();
            assert!(
                matches!(error, StoreError::Corrupt { .. }),
                "{column} = {value}: {error}"
            );
        }
    }

    #[test]
    fn a_gap_in_the_history_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            &format!("DELETE FROM {HISTORY_TABLE} WHERE version = 1"),
            [],
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    }

    #[test]
    fn a_failing_migration_is_a_migration_error_and_leaves_nothing() {
        // Version-2 tables without any history or user_version: refinery runs V1 (a no-op)
        // and V2, which fails; its one transaction is rolled back.
        let mut conn = made_before_history(2);
        conn.pragma_update(None, "user_version", 0).unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Migration { .. }), "{error}");
        assert!(std::error::Error::source(&error).is_some());
        assert!(history(&conn).is_empty());
        assert_eq!(user_version(&conn), 0);
    }
}
