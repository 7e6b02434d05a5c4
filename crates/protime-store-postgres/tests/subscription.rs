//! What replicas of one `protime serve` share through the store: the webhook keys, the
//! current webhook, and the renewal lease (taken over when its holder's session ends).
//! Needs a server (DATABASE_URL or PG*); skipped loudly without one, unless
//! PROTIME_REQUIRE_POSTGRES=1 (as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::{Duration, Instant};

use chrono::{TimeZone as _, Utc};
use protime_store_postgres::testing::TestDatabase;
use protime_store_postgres::{CurrentWebhook, PgStore};
use protime_webhooks::WebhookKey;

async fn open(database: &TestDatabase) -> PgStore {
    PgStore::connect_with(database.config()).await.unwrap()
}

#[tokio::test]
async fn a_replayed_dead_letter_is_marked_and_kept() {
    use protime_model::{ApplyOutcome, parse_delivery};
    use protime_webhooks::sink::{Delivery, Receipt, WebhookOrigin};
    let Some(database) = TestDatabase::create("replayed").await else {
        return;
    };
    let (one, two) = (open(&database).await, open(&database).await);
    let body = br#"{"changeType":"InsertOrUpdate","data":{"changeVersion":"A","id":0}}"#;
    let errors = parse_delivery(body).unwrap_err();
    for _ in 0..2 {
        let receipt = one
            .record(Delivery::DeadLetter {
                errors: errors.clone(),
                webhook: WebhookOrigin::new(body.to_vec().into(), "k1"),
            })
            .await
            .unwrap();
        assert_eq!(receipt, Receipt::DeadLettered);
    }
    let first = one.dead_letters().await.unwrap()[0].clone();
    assert_eq!(
        (first.replayed_at, first.replay_outcome.clone()),
        (None, None)
    );
    assert_eq!(
        two.dead_letter(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(two.dead_letter(first.id + 100).await.unwrap(), None);

    assert!(
        one.mark_dead_letter_replayed(first.id, Receipt::Applied(ApplyOutcome::Stale))
            .await
            .unwrap()
    );
    let marked = two.dead_letter(first.id).await.unwrap().unwrap();
    assert_eq!(marked.replay_outcome.as_deref(), Some("stale"));
    assert!(marked.replayed_at.is_some());
    assert_eq!(marked.raw_body, first.raw_body, "kept as evidence");
    assert_eq!(two.dead_letters().await.unwrap()[1].replay_outcome, None);
    assert!(
        !one.mark_dead_letter_replayed(first.id + 100, Receipt::Applied(ApplyOutcome::Applied))
            .await
            .unwrap()
    );
    assert!(
        one.mark_dead_letter_replayed(first.id, Receipt::DeadLettered)
            .await
            .is_err()
    );
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn keys_and_the_current_webhook_are_shared_between_replicas() {
    let Some(database) = TestDatabase::create("keys").await else {
        return;
    };
    let (one, two) = (open(&database).await, open(&database).await);
    assert!(one.webhook_keys().await.unwrap().is_empty());
    assert_eq!(one.current_webhook().await.unwrap(), None);

    // Kept exactly as given (spaces, commas and all), once.
    let first = WebhookKey::new(" first,key ").unwrap();
    let second = WebhookKey::new("second-key").unwrap();
    one.keep_webhook_key(&first, "w1").await.unwrap();
    one.keep_webhook_key(&first, "w1").await.unwrap();
    one.keep_webhook_key(&second, "w2").await.unwrap();
    let seen: Vec<String> = two
        .webhook_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.expose_secret().to_owned())
        .collect();
    assert_eq!(seen, [" first,key ", "second-key"]);

    let current = CurrentWebhook {
        webhook_id: "w2".into(),
        valid_until: Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
        key_fingerprint: second.fingerprint(),
    };
    one.save_current_webhook(&current).await.unwrap();
    assert_eq!(two.current_webhook().await.unwrap(), Some(current.clone()));
    let next = CurrentWebhook {
        webhook_id: "w3".into(),
        ..current
    };
    two.save_current_webhook(&next).await.unwrap();
    assert_eq!(one.current_webhook().await.unwrap(), Some(next));

    // Retiring keeps what is named, and never removes the last key by mistake.
    assert_eq!(
        one.retain_webhook_keys(&[second.fingerprint()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        one.retain_webhook_keys(&["unknown".into()]).await.unwrap(),
        0
    );
    assert_eq!(two.webhook_keys().await.unwrap().len(), 1);

    // A key PostgreSQL text cannot hold is refused, not truncated.
    let nul = WebhookKey::new("a\0b").unwrap();
    assert!(one.keep_webhook_key(&nul, "w4").await.is_err());

    one.close().await;
    two.close().await;
    database.cleanup().await;
}

#[tokio::test]
async fn one_replica_holds_the_lease_and_another_takes_it_over_when_it_dies() {
    let Some(database) = TestDatabase::create("lease").await else {
        return;
    };
    let (one, two) = (open(&database).await, open(&database).await);
    assert_eq!(one.lease_holder().await.unwrap(), None);

    let held = one.try_claim_lease("replica-one").await.unwrap().unwrap();
    assert!(two.try_claim_lease("replica-two").await.unwrap().is_none());
    assert!(two.try_claim_owner().await.unwrap().is_none());
    let holder = two.lease_holder().await.unwrap().unwrap();
    assert_eq!((holder.holder.as_str(), holder.held), ("replica-one", true));
    assert!(held.is_held().await);

    // The holder's session ends (as when its process is killed): the lease is free at once.
    let session = database.session().await.unwrap();
    session
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND ((classid::int8 << 32) | objid::int8)
                   = hashtext('protime owner protime_changes_' || $1)::int8",
            &[&database.schema()],
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), held.lost())
        .await
        .expect("the holder did not notice that its lease was lost");
    assert!(!held.is_held().await);
    let holder = two.lease_holder().await.unwrap().unwrap();
    assert!(!holder.held, "{holder:?}");

    let started = Instant::now();
    let taken = loop {
        if let Some(lease) = two.try_claim_lease("replica-two").await.unwrap() {
            break lease;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "not taken over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let holder = one.lease_holder().await.unwrap().unwrap();
    assert_eq!((holder.holder.as_str(), holder.held), ("replica-two", true));

    // Dropping a lease releases it as well.
    drop(taken);
    let started = Instant::now();
    while one.try_claim_lease("replica-one").await.unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(5), "not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    one.close().await;
    two.close().await;
    database.cleanup().await;
}
