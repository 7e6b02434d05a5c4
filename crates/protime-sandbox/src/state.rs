//! The sandbox's in-memory state: clockings, the change log behind delta and webhooks,
//! deltas, webhooks and tokens. Everything here is synchronous and runs under one mutex.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use protime_raw::types::{
    ChangeType, Clocking, ClockingChange, ClockingStatus, CollectionName, Webhook, WebhookStatus,
};
use protime_webhooks::WebhookKey;

use crate::config::SandboxConfig;
use crate::data::{self, Catalog, ExternalRefRequest};
use crate::filter::ClockingFilter;
use crate::rng::SeededRng;
use crate::trigger::TriggerKind;

/// The first change version is this plus one; printed as 20 upper-case hex digits it looks
/// like the docs' `0000090200004BD0000A`.
const VERSION_BASE: u64 = 0x0902_0000_4BD0_0000;

/// Change-log entries kept before old ones that no live delta needs are dropped.
const LOG_SOFT_LIMIT: usize = 20_000;

/// Formats a change version: 20 upper-case hex digits, so that string order is numeric order.
pub(crate) fn format_version(version: u64) -> String {
    format!("{version:020X}")
}

/// One change, as recorded.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub(crate) version: u64,
    pub(crate) change_type: ChangeType,
    /// The clocking after the change; for a `Delete`, the last state before it (used to
    /// match delta filters, never sent).
    pub(crate) clocking: Clocking,
}

impl Applied {
    /// The wire change, with the requested external references on an `InsertOrUpdate`.
    pub(crate) fn to_wire(&self, catalog: &Catalog, refs: &ExternalRefRequest) -> ClockingChange {
        match self.change_type {
            ChangeType::InsertOrUpdate => ClockingChange {
                change_type: ChangeType::InsertOrUpdate,
                data: protime_client::convert::raw_change_data(
                    catalog.decorate(&self.clocking, refs),
                ),
            },
            ChangeType::Delete => ClockingChange {
                change_type: ChangeType::Delete,
                data: protime_client::convert::raw_deletion_data(
                    format_version(self.version),
                    self.clocking.id,
                ),
            },
        }
    }
}

/// A delta: the filter of its initial load, and when it was last used.
#[derive(Debug, Clone)]
struct Delta {
    filter: ClockingFilter,
    refs: ExternalRefRequest,
    last_used: Instant,
}

/// The decoded form of a delta token (base64url JSON, opaque to clients).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaTokenBody {
    delta_id: u64,
    starting_cursor: u64,
    time_stamp: DateTime<Utc>,
}

/// The decoded form of a continuation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Continuation {
    /// The last id of the previous page; the next page starts after it.
    pub(crate) after_id: u64,
    /// Number of the page this token asks for (0 is the first page).
    pub(crate) page: u64,
}

impl Continuation {
    pub(crate) fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self).unwrap_or_default())
    }

    pub(crate) fn decode(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Why a delta token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeltaRefusal {
    /// Not a token this sandbox issued, or its delta is gone (expired or pruned).
    Gone,
}

/// A webhook with its secret key.
#[derive(Debug, Clone)]
pub(crate) struct WebhookEntry {
    pub(crate) webhook: Webhook,
    pub(crate) key: WebhookKey,
    pub(crate) refs: ExternalRefRequest,
}

#[derive(Debug, Clone)]
struct TokenEntry {
    client_id: String,
    scopes: BTreeSet<String>,
    expires_at: Instant,
    window_start: Instant,
    window_count: u32,
}

/// Why a bearer token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    Unknown,
    Expired,
    RateLimited { retry_after_seconds: u64 },
}

/// Who made an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) client_id: String,
    pub(crate) scopes: BTreeSet<String>,
}

/// What a clockings listing page holds.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) items: Vec<Clocking>,
    /// The continuation of the next page, `None` on the last page.
    pub(crate) next: Option<Continuation>,
}

pub(crate) struct State {
    pub(crate) catalog: Catalog,
    clockings: BTreeMap<u64, Clocking>,
    next_clocking_id: u64,
    version: u64,
    log: VecDeque<Applied>,
    /// Versions up to this one may have been dropped from the log.
    log_floor: u64,
    deltas: HashMap<u64, Delta>,
    next_delta_id: u64,
    webhooks: Vec<WebhookEntry>,
    tokens: HashMap<String, TokenEntry>,
    rng: SeededRng,
    first_day: NaiveDate,
    days: u32,
}

impl State {
    /// The seeded state: reference data and `people × days` of clockings.
    pub(crate) fn seeded(config: &SandboxConfig) -> Self {
        let mut root = SeededRng::new(config.seed);
        let mut catalog_rng = root.fork(1);
        let mut day_rng = root.fork(2);
        let rng = root.fork(3);
        let catalog = Catalog::generate(&mut catalog_rng, config.people);
        let mut state = Self {
            catalog,
            clockings: BTreeMap::new(),
            next_clocking_id: 19_250,
            version: VERSION_BASE,
            log: VecDeque::new(),
            log_floor: VERSION_BASE,
            deltas: HashMap::new(),
            next_delta_id: 1,
            webhooks: Vec::new(),
            tokens: HashMap::new(),
            rng,
            first_day: config.start_date,
            days: config.days,
        };
        for day in 0..config.days {
            let Some(date) = config
                .start_date
                .checked_add_days(chrono::Days::new(u64::from(day)))
            else {
                break;
            };
            let people = state.catalog.people.clone();
            for person in &people {
                for draft in data::day_of(&mut day_rng, &state.catalog, person, date) {
                    let id = state.next_clocking_id;
                    state.next_clocking_id += 1 + day_rng.below(3);
                    state.version += 1;
                    if let Some(clocking) = draft.into_clocking(id, format_version(state.version)) {
                        state.clockings.insert(id, clocking);
                    }
                }
            }
        }
        // The seed is history: deltas start after it.
        state.log_floor = state.version;
        state
    }

    /// The current (last issued) change version.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn clocking(&self, id: u64) -> Option<&Clocking> {
        self.clockings.get(&id)
    }

    pub(crate) fn clockings(&self) -> impl Iterator<Item = &Clocking> {
        self.clockings.values()
    }

    fn record(&mut self, change_type: ChangeType, clocking: Clocking) -> Applied {
        let applied = Applied {
            version: self.version,
            change_type,
            clocking,
        };
        self.log.push_back(applied.clone());
        if self.log.len() > LOG_SOFT_LIMIT {
            self.prune_log();
        }
        applied
    }

    /// Drops the older half of the log: a delta whose cursor falls before what is left gets
    /// `410 Gone`, as an expired one does.
    fn prune_log(&mut self) {
        let keep = LOG_SOFT_LIMIT / 2;
        while self.log.len() > keep {
            if let Some(entry) = self.log.pop_front() {
                self.log_floor = entry.version;
            }
        }
    }

    fn bump(&mut self) -> String {
        self.version += 1;
        format_version(self.version)
    }

    /// Inserts a new clocking from a draft.
    pub(crate) fn insert(&mut self, draft: data::Draft) -> Option<Applied> {
        let id = self.next_clocking_id;
        let version = format_version(self.version + 1);
        let clocking = draft.into_clocking(id, version)?;
        self.version += 1;
        self.next_clocking_id += 1 + self.rng.below(3);
        self.clockings.insert(id, clocking.clone());
        Some(self.record(ChangeType::InsertOrUpdate, clocking))
    }

    /// One random change: a new clocking, an edit, a soft delete or a hard delete.
    pub(crate) fn random_change(&mut self) -> Option<Applied> {
        let live: Vec<u64> = self
            .clockings
            .values()
            .filter(|c| c.status != Some(ClockingStatus::Deleted))
            .map(|c| c.id.get())
            .collect();
        let roll = self.rng.below(100);
        let target = match roll {
            0..=39 => None,
            40..=84 => self.rng.pick(&live).copied(),
            _ => {
                let all: Vec<u64> = self.clockings.keys().copied().collect();
                self.rng.pick(&all).copied()
            }
        };
        match (roll, target) {
            (40..=69, Some(id)) => self.edit(id),
            (70..=84, Some(id)) => self.soft_delete(id),
            (85.., Some(id)) => self.hard_delete(id),
            _ => {
                let draft =
                    data::random_draft(&mut self.rng, &self.catalog, self.first_day, self.days)?;
                self.insert(draft)
            }
        }
    }

    /// Ids of the clockings that exist and are not soft-deleted.
    pub(crate) fn live_ids(&self) -> Vec<u64> {
        self.clockings
            .values()
            .filter(|c| c.status != Some(ClockingStatus::Deleted))
            .map(|c| c.id.get())
            .collect()
    }

    /// One of `ids`, chosen by the sandbox's generator.
    pub(crate) fn pick_id(&mut self, ids: &[u64]) -> Option<u64> {
        self.rng.pick(ids).copied()
    }

    /// A new clocking on a day of the seeded range, of `kind` when one is asked for.
    pub(crate) fn insert_random(&mut self, kind: Option<TriggerKind>) -> Option<Applied> {
        let mut draft =
            data::random_draft(&mut self.rng, &self.catalog, self.first_day, self.days)?;
        if let Some(kind) = kind {
            draft.kind = match kind {
                TriggerKind::InOut => data::DraftKind::InOut,
                TriggerKind::Reason => data::DraftKind::Reason {
                    reason: self.rng.pick(&self.catalog.reasons)?.id,
                    is_open: self.rng.chance(0.5),
                },
                TriggerKind::Activity => data::DraftKind::Activity {
                    levels: self.catalog.activity_levels(&mut self.rng),
                },
                TriggerKind::ActivityEnd => data::DraftKind::ActivityEnd,
            };
        }
        self.insert(draft)
    }

    /// The next version of clocking `id` as it stands, neither stored nor logged: the
    /// content of a delivery that a receiver must refuse (`Sandbox::trigger`'s `invalid`).
    pub(crate) fn unapplied_version(&mut self, id: u64) -> Option<Applied> {
        let mut clocking = self.clockings.get(&id)?.clone();
        clocking.change_version = Some(self.bump());
        Some(Applied {
            version: self.version,
            change_type: ChangeType::InsertOrUpdate,
            clocking,
        })
    }

    pub(crate) fn edit(&mut self, id: u64) -> Option<Applied> {
        if !self.clockings.contains_key(&id) {
            return None;
        }
        let version = self.bump();
        let clocking = self.clockings.get_mut(&id)?;
        data::edit(&mut self.rng, clocking);
        clocking.change_version = Some(version);
        let clocking = clocking.clone();
        Some(self.record(ChangeType::InsertOrUpdate, clocking))
    }

    fn soft_delete(&mut self, id: u64) -> Option<Applied> {
        if !self.clockings.contains_key(&id) {
            return None;
        }
        let version = self.bump();
        let clocking = self.clockings.get_mut(&id)?;
        clocking.status = Some(ClockingStatus::Deleted);
        clocking.change_version = Some(version);
        let clocking = clocking.clone();
        Some(self.record(ChangeType::InsertOrUpdate, clocking))
    }

    pub(crate) fn hard_delete(&mut self, id: u64) -> Option<Applied> {
        let mut clocking = self.clockings.remove(&id)?;
        clocking.change_version = Some(self.bump());
        Some(self.record(ChangeType::Delete, clocking))
    }

    /// One page of a listing: clockings matching `filter` with an id after the continuation.
    pub(crate) fn page(
        &self,
        filter: &ClockingFilter,
        at: Continuation,
        page_size: usize,
        empty_page_every: Option<usize>,
    ) -> Page {
        let mut rest = self
            .clockings
            .range(at.after_id.saturating_add(1)..)
            .map(|(_, c)| c)
            .filter(|c| filter.matches(c))
            .peekable();
        let empty = empty_page_every
            .and_then(|n| u64::try_from(n).ok())
            .is_some_and(|n| n > 1 && (at.page + 1).is_multiple_of(n));
        if empty && rest.peek().is_some() {
            return Page {
                items: Vec::new(),
                next: Some(Continuation {
                    after_id: at.after_id,
                    page: at.page + 1,
                }),
            };
        }
        let items: Vec<Clocking> = rest.by_ref().take(page_size).cloned().collect();
        let next = match (rest.peek(), items.last()) {
            (Some(_), Some(last)) => Some(Continuation {
                after_id: last.id.get(),
                page: at.page + 1,
            }),
            _ => None,
        };
        Page { items, next }
    }

    // -- deltas ---------------------------------------------------------------------------

    /// Starts a delta at the current version; returns its token.
    pub(crate) fn start_delta(
        &mut self,
        filter: ClockingFilter,
        refs: ExternalRefRequest,
        now: Instant,
    ) -> String {
        let id = self.next_delta_id;
        self.next_delta_id += 1;
        self.deltas.insert(
            id,
            Delta {
                filter,
                refs,
                last_used: now,
            },
        );
        delta_token(id, self.version)
    }

    /// Checks a delta token of an initial load's `nextLink` and returns the token unchanged.
    pub(crate) fn touch_delta(
        &mut self,
        token: &str,
        now: Instant,
        ttl: Duration,
    ) -> Result<(), DeltaRefusal> {
        let (id, _) = self.live_delta(token, now, ttl)?;
        if let Some(delta) = self.deltas.get_mut(&id) {
            delta.last_used = now;
        }
        Ok(())
    }

    fn live_delta(
        &mut self,
        token: &str,
        now: Instant,
        ttl: Duration,
    ) -> Result<(u64, u64), DeltaRefusal> {
        let body = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<DeltaTokenBody>(&bytes).ok())
            .ok_or(DeltaRefusal::Gone)?;
        let delta = self.deltas.get(&body.delta_id).ok_or(DeltaRefusal::Gone)?;
        if now.saturating_duration_since(delta.last_used) > ttl {
            self.deltas.remove(&body.delta_id);
            return Err(DeltaRefusal::Gone);
        }
        if body.starting_cursor > self.version || body.starting_cursor < self.log_floor {
            return Err(DeltaRefusal::Gone);
        }
        Ok((body.delta_id, body.starting_cursor))
    }

    /// Every change after the token's cursor that matches its delta, and the next token.
    pub(crate) fn delta_changes(
        &mut self,
        token: &str,
        now: Instant,
        ttl: Duration,
    ) -> Result<(Vec<ClockingChange>, String), DeltaRefusal> {
        let (id, cursor) = self.live_delta(token, now, ttl)?;
        let delta = self.deltas.get_mut(&id).ok_or(DeltaRefusal::Gone)?;
        delta.last_used = now;
        let delta = delta.clone();
        let changes = self
            .log
            .iter()
            .filter(|entry| entry.version > cursor && delta.filter.matches(&entry.clocking))
            .map(|entry| entry.to_wire(&self.catalog, &delta.refs))
            .collect();
        Ok((changes, delta_token(id, self.version)))
    }

    /// Forgets every delta (their tokens get `410`).
    pub(crate) fn expire_deltas(&mut self) {
        self.deltas.clear();
    }

    // -- webhooks -------------------------------------------------------------------------

    pub(crate) fn add_webhook(&mut self, entry: WebhookEntry) {
        self.webhooks.push(entry);
    }

    /// Disables every enabled webhook whose `validUntil` has passed; returns how many.
    pub(crate) fn expire_webhooks(&mut self, now: DateTime<Utc>) -> usize {
        let mut expired = 0;
        for entry in &mut self.webhooks {
            if entry.webhook.status == WebhookStatus::Enabled && entry.webhook.valid_until <= now {
                entry.webhook.status = WebhookStatus::Disabled;
                tracing::info!(webhook = %entry.webhook.id, "webhook expired: disabled");
                expired += 1;
            }
        }
        expired
    }

    pub(crate) fn webhooks(&self) -> impl Iterator<Item = &WebhookEntry> {
        self.webhooks.iter()
    }

    pub(crate) fn webhook(&self, id: &str) -> Option<&WebhookEntry> {
        self.webhooks.iter().find(|w| w.webhook.id == id)
    }

    /// Sets a webhook's status; `false` when there is no such webhook.
    pub(crate) fn set_webhook_status(&mut self, id: &str, status: WebhookStatus) -> bool {
        match self.webhooks.iter_mut().find(|w| w.webhook.id == id) {
            Some(entry) => {
                entry.webhook.status = status;
                true
            }
            None => false,
        }
    }

    /// Moves a webhook's `validUntil` to `at`.
    pub(crate) fn set_webhook_valid_until(&mut self, id: &str, at: DateTime<Utc>) -> bool {
        match self.webhooks.iter_mut().find(|w| w.webhook.id == id) {
            Some(entry) => {
                entry.webhook.valid_until = at;
                true
            }
            None => false,
        }
    }

    /// Whether deliveries for this webhook should still be made.
    pub(crate) fn webhook_enabled(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        self.expire_webhooks(now);
        self.webhook(id)
            .is_some_and(|w| w.webhook.status == WebhookStatus::Enabled)
    }

    /// Enabled `clockings` webhooks, after expiring the old ones.
    pub(crate) fn clockings_subscribers(&mut self, now: DateTime<Utc>) -> Vec<WebhookEntry> {
        self.expire_webhooks(now);
        self.webhooks
            .iter()
            .filter(|w| {
                w.webhook.status == WebhookStatus::Enabled
                    && w.webhook.collection_name == CollectionName::Clockings
            })
            .cloned()
            .collect()
    }

    // -- tokens ---------------------------------------------------------------------------

    pub(crate) fn issue_token(
        &mut self,
        token: String,
        client_id: &str,
        scopes: BTreeSet<String>,
        lifetime: Duration,
        now: Instant,
    ) {
        self.tokens.retain(|_, t| t.expires_at > now);
        self.tokens.insert(
            token,
            TokenEntry {
                client_id: client_id.to_owned(),
                scopes,
                expires_at: now + lifetime,
                window_start: now,
                window_count: 0,
            },
        );
    }

    /// Authenticates a bearer token and applies its rate limit.
    pub(crate) fn authenticate(
        &mut self,
        token: &str,
        rate_limit: Option<u32>,
        now: Instant,
    ) -> Result<Caller, TokenRefusal> {
        let entry = self.tokens.get_mut(token).ok_or(TokenRefusal::Unknown)?;
        if entry.expires_at <= now {
            return Err(TokenRefusal::Expired);
        }
        if let Some(limit) = rate_limit {
            let elapsed = now.saturating_duration_since(entry.window_start);
            if elapsed >= Duration::from_secs(1) {
                entry.window_start = now;
                entry.window_count = 0;
            }
            if entry.window_count >= limit {
                let left = Duration::from_secs(1).saturating_sub(elapsed);
                return Err(TokenRefusal::RateLimited {
                    retry_after_seconds: left.as_secs_f64().ceil().max(1.0) as u64,
                });
            }
            entry.window_count += 1;
        }
        Ok(Caller {
            client_id: entry.client_id.clone(),
            scopes: entry.scopes.clone(),
        })
    }

    /// Makes every issued token expired.
    pub(crate) fn expire_tokens(&mut self, now: Instant) {
        for token in self.tokens.values_mut() {
            token.expires_at = now;
        }
    }
}

fn delta_token(delta_id: u64, cursor: u64) -> String {
    let body = DeltaTokenBody {
        delta_id,
        starting_cursor: cursor,
        time_stamp: DateTime::<Utc>::from(std::time::SystemTime::now()),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SandboxConfig {
        SandboxConfig {
            people: 6,
            days: 10,
            ..SandboxConfig::default()
        }
    }

    #[test]
    fn version_format() {
        assert_eq!(format_version(VERSION_BASE + 10), "0000090200004BD0000A");
        assert_eq!(format_version(u64::MAX).len(), 20);
    }

    #[test]
    fn seeding_is_deterministic_and_versions_increase() {
        let a = State::seeded(&config());
        let b = State::seeded(&config());
        let a_all: Vec<_> = a.clockings().cloned().collect();
        let b_all: Vec<_> = b.clockings().cloned().collect();
        assert_eq!(a_all, b_all);
        assert!(a_all.len() > 50, "{}", a_all.len());
        let other = State::seeded(&SandboxConfig {
            seed: 7,
            ..config()
        });
        assert_ne!(a_all, other.clockings().cloned().collect::<Vec<_>>());
        let mut versions: Vec<_> = a_all
            .iter()
            .map(|c| c.change_version.clone().unwrap())
            .collect();
        let unique: BTreeSet<_> = versions.iter().cloned().collect();
        assert_eq!(unique.len(), versions.len());
        versions.sort();
        assert_eq!(versions.last().unwrap(), &format_version(a.version()));
    }

    #[test]
    fn random_changes_bump_the_global_version() {
        let mut state = State::seeded(&config());
        let mut last = state.version();
        let mut kinds = BTreeSet::new();
        for _ in 0..300 {
            let applied = state.random_change().unwrap();
            assert_eq!(applied.version, last + 1);
            assert_eq!(
                applied.clocking.change_version.as_deref(),
                Some(format_version(applied.version).as_str())
            );
            last = applied.version;
            let label = match (applied.change_type, applied.clocking.status) {
                (ChangeType::Delete, _) => "hard",
                (_, Some(ClockingStatus::Deleted)) => "soft",
                (_, _) if applied.clocking.original_time_of_day_in_minutes.is_some() => {
                    "edited-or-new"
                }
                _ => "new",
            };
            kinds.insert(label);
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    }

    #[test]
    fn continuation_round_trips() {
        let c = Continuation {
            after_id: 19_999,
            page: 3,
        };
        assert_eq!(Continuation::decode(&c.encode()), Some(c));
        assert_eq!(Continuation::decode("not a token"), None);
    }
}
