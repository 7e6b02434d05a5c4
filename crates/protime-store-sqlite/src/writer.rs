//! The writer thread and group commit: one connection, one transaction for everything
//! queued, one sync to disk, then every waiter is answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use protime_webhooks::sink::Receipt;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::apply::{Applier, Prepared};
use crate::file_watch::FileWatch;

/// Most deliveries committed in one transaction when several jobs are queued; a single job
/// (one `record_batch` call) is never split, whatever its size.
const MAX_GROUP: usize = 4096;

pub(crate) type Outcome = Result<Receipt, StoreError>;

/// One `record` or `record_batch` call and who waits for it.
pub(crate) struct Job {
    pub(crate) deliveries: Vec<Prepared>,
    pub(crate) reply: Reply,
}

/// A step of retention or erasure (`retention.rs`): run by the writer thread on its own
/// connection between two groups, so it never contends with deliveries for SQLite's write
/// lock; deliveries queued meanwhile wait at most one step.
pub(crate) type Task = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the writer thread is given: deliveries or a task.
pub(crate) enum Work {
    Deliver(Job),
    Task(Task),
}

impl From<Job> for Work {
    fn from(job: Job) -> Self {
        Self::Deliver(job)
    }
}

/// Where the writer sends the outcomes, one per delivery in order: an async waiter or a
/// blocked thread.
pub(crate) enum Reply {
    Async(oneshot::Sender<Vec<Outcome>>),
    Blocking(mpsc::SyncSender<Vec<Outcome>>),
}

impl Reply {
    fn send(self, outcomes: Vec<Outcome>) {
        // A waiter that stopped waiting (a dropped future) is not an error: the deliveries
        // are committed all the same, and Protime redelivers what it saw unacknowledged.
        match self {
            Self::Async(sender) => {
                let _ = sender.send(outcomes);
            }
            Self::Blocking(sender) => {
                let _ = sender.send(outcomes);
            }
        }
    }
}

/// What the writer did since the store was opened.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
}

/// Group commit until every sender is gone, then return (closing the write connection,
/// which checkpoints the WAL).
pub(crate) fn run_writer(
    mut conn: Connection,
    jobs: &mpsc::Receiver<Work>,
    counters: &Counters,
    file: &FileWatch,
) {
    // A task met while collecting a group runs right after that group.
    let mut next: Option<Work> = None;
    loop {
        let work = match next.take() {
            Some(work) => work,
            None => match jobs.recv() {
                Ok(work) => work,
                Err(_) => break,
            },
        };
        let first = match work {
            Work::Task(task) => {
                task(&mut conn);
                continue;
            }
            Work::Deliver(job) => job,
        };
        let mut count = first.deliveries.len();
        let mut group = vec![first];
        while count < MAX_GROUP {
            match jobs.try_recv() {
                Ok(Work::Deliver(job)) => {
                    count += job.deliveries.len();
                    group.push(job);
                }
                Ok(task @ Work::Task(_)) => {
                    next = Some(task);
                    break;
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        // Checked before (no use committing into a file nobody will open) and after the
        // commit (the file may go while it runs): only a commit into the file at the path
        // is acknowledged.
        let written = file
            .check()
            .map_err(Refused::File)
            .and_then(|()| write_group(&mut conn, &group).map_err(Refused::Sqlite))
            .and_then(|outcomes| file.check().map(|()| outcomes).map_err(Refused::File));
        match written {
            Ok(outcomes) => {
                counters.batches.fetch_add(1, Ordering::Relaxed);
                counters
                    .largest_batch
                    .fetch_max(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
                tracing::debug!(
                    count,
                    duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "batch committed"
                );
                for (job, outcomes) in group.into_iter().zip(outcomes) {
                    job.reply.send(outcomes);
                }
            }
            Err(Refused::Sqlite(error)) => {
                tracing::warn!(count, %error, "batch not committed; nothing of it is acknowledged");
                let error = Arc::new(error);
                for job in group {
                    let outcomes = job
                        .deliveries
                        .iter()
                        .map(|_| Err(StoreError::Batch(Arc::clone(&error))))
                        .collect();
                    job.reply.send(outcomes);
                }
            }
            Err(Refused::File(error)) => {
                tracing::error!(count, %error, "batch refused: the store file is not the one at its path");
                for job in group {
                    let outcomes = job
                        .deliveries
                        .iter()
                        .map(|_| match &error {
                            StoreError::FileGone { path, what } => Err(StoreError::FileGone {
                                path: path.clone(),
                                what: what.clone(),
                            }),
                            _ => Err(StoreError::Closed),
                        })
                        .collect();
                    job.reply.send(outcomes);
                }
            }
        }
    }
    tracing::debug!("writer stopped: the store was closed or dropped");
}

/// Why a group was not acknowledged.
enum Refused {
    /// The transaction failed: nothing was stored.
    Sqlite(rusqlite::Error),
    /// The file at the store's path is not the one written to (see `file_watch.rs`).
    File(StoreError),
}

/// Applies a group of jobs in one transaction. Each job first runs in one savepoint; only a
/// job in which some delivery fails is rolled back and replayed with a savepoint per
/// delivery, so that a failing delivery gets its own error without taking the others down
/// (the same outcomes as a savepoint per delivery, without paying for one per delivery).
/// The outer error means the transaction itself failed: nothing was stored.
fn write_group(conn: &mut Connection, group: &[Job]) -> Result<Vec<Vec<Outcome>>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(group.len());
    {
        let mut applier = Applier::new(&tx)?;
        for job in group {
            tx.execute_batch("SAVEPOINT job")?;
            let whole: Result<Vec<Receipt>, StoreError> = job
                .deliveries
                .iter()
                .map(|delivery| applier.apply(delivery))
                .collect();
            match whole {
                Ok(receipts) => {
                    tx.execute_batch("RELEASE job")?;
                    results.push(receipts.into_iter().map(Ok).collect());
                }
                Err(_) => {
                    tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
                    let mut outcomes = Vec::with_capacity(job.deliveries.len());
                    for delivery in &job.deliveries {
                        tx.execute_batch("SAVEPOINT delivery")?;
                        match applier.apply(delivery) {
                            Ok(receipt) => {
                                tx.execute_batch("RELEASE delivery")?;
                                outcomes.push(Ok(receipt));
                            }
                            Err(error) => {
                                tx.execute_batch("ROLLBACK TO delivery; RELEASE delivery")?;
                                outcomes.push(Err(error));
                            }
                        }
                    }
                    results.push(outcomes);
                }
            }
        }
    }
    tx.commit()?;
    Ok(results)
}
