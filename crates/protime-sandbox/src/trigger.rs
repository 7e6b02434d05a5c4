//! One change on demand, like `stripe trigger`: insert, update or delete a clocking, or
//! send a partial or an invalid event, and deliver it to every enabled `clockings` webhook.
//! Served as `POST /sandbox/trigger` (a sandbox control route, not part of the Protime
//! API) and used by `protime trigger`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Sandbox;

/// The route of [`Sandbox::trigger`]: `POST` a [`TriggerRequest`], get a [`Triggered`].
pub(crate) const TRIGGER: &str = "/sandbox/trigger";
use crate::state::Applied;

/// What to trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TriggerAction {
    /// A new clocking (of [`TriggerRequest::kind`], if given) on a day of the seeded range.
    Insert,
    /// An edit of a clocking: a new time, the registered one kept as
    /// `originalTimeOfDayInMinutes`.
    Update,
    /// A hard delete (`changeType: Delete`).
    Delete,
    /// An edit delivered the way the docs' delta examples look: `data` holds only
    /// `changeVersion`, `id` and `date`.
    Partial,
    /// A delivery no profile accepts (`timeOfDayInMinutes` 4000, outside -1440..=2880),
    /// signed like any other, for testing dead letters. The sandbox's data does not change.
    Invalid,
}

/// Kinds a triggered insert can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TriggerKind {
    /// `InOut`.
    InOut,
    /// `Reason`, with one of the seeded reasons.
    Reason,
    /// `Activity`, with a path down the seeded activity hierarchy.
    Activity,
    /// `ActivityEnd`.
    ActivityEnd,
}

/// A trigger: the action, and optionally the clocking and the kind.
///
/// ```
/// use protime_sandbox::{TriggerAction, TriggerRequest};
/// let request: TriggerRequest = serde_json::from_str(r#"{"action":"update","id":19250}"#).unwrap();
/// assert_eq!(request.action, TriggerAction::Update);
/// assert_eq!(request.id, Some(19250));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TriggerRequest {
    /// What to do.
    pub action: TriggerAction,
    /// The clocking to update, delete or send partially or invalidly; a random live one
    /// when absent. Ignored by `insert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The kind of an inserted clocking; random when absent. Only for `insert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TriggerKind>,
}

impl TriggerRequest {
    /// A request for `action` on a random clocking.
    pub fn new(action: TriggerAction) -> Self {
        Self {
            action,
            id: None,
            kind: None,
        }
    }

    /// On clocking `id`.
    #[must_use]
    pub fn id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// An insert of this kind.
    #[must_use]
    pub fn kind(mut self, kind: TriggerKind) -> Self {
        self.kind = Some(kind);
        self
    }
}

/// What a trigger did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Triggered {
    /// The action.
    pub action: TriggerAction,
    /// The clocking's id.
    pub id: u64,
    /// The change version of the delivered change.
    pub change_version: String,
    /// Enabled `clockings` webhooks it is delivered to.
    pub subscribers: usize,
    /// The body as delivered (to a webhook without external references).
    pub body: Value,
}

/// Why a trigger did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// There is no such clocking (or it is soft-deleted).
    #[error("there is no live clocking {id} in the sandbox")]
    NoSuchClocking {
        /// The id asked for.
        id: u64,
    },
    /// Nothing to update or delete: every clocking is gone.
    #[error("the sandbox has no live clocking left")]
    NoClockings,
    /// `kind` was given for another action than `insert`.
    #[error("a kind is only for an insert")]
    KindWithoutInsert,
    /// The seeded reference data cannot make a clocking of this kind.
    #[error("the sandbox cannot make this clocking (no people or reasons seeded)")]
    CannotInsert,
}

/// `data` reduced to what the docs' `InsertOrUpdate` examples carry.
fn partial(mut body: Value) -> Value {
    if let Some(Value::Object(data)) = body.get_mut("data") {
        data.retain(|name, _| matches!(name.as_str(), "changeVersion" | "id" | "date"));
    }
    body
}

/// A minute outside every profile's range.
fn invalid(mut body: Value) -> Value {
    if let Some(Value::Object(data)) = body.get_mut("data") {
        data.insert("timeOfDayInMinutes".into(), Value::from(4000));
    }
    body
}

impl Sandbox {
    /// Makes one change (or, for `invalid`, only a delivery) and queues its delivery to every
    /// enabled `clockings` webhook, signed as usual.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use protime_sandbox::{Sandbox, SandboxConfig, TriggerAction, TriggerKind, TriggerRequest};
    /// let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    /// let request = TriggerRequest::new(TriggerAction::Insert).kind(TriggerKind::Reason);
    /// let inserted = sandbox.trigger(&request).unwrap();
    /// assert_eq!(inserted.body["data"]["kind"], "Reason");
    /// let partial = sandbox.trigger(&TriggerRequest::new(TriggerAction::Partial).id(inserted.id)).unwrap();
    /// assert_eq!(partial.body["data"].as_object().unwrap().len(), 3);
    /// # }
    /// ```
    pub fn trigger(&self, request: &TriggerRequest) -> Result<Triggered, TriggerError> {
        if request.kind.is_some() && request.action != TriggerAction::Insert {
            return Err(TriggerError::KindWithoutInsert);
        }
        let mut outcome = Ok(());
        let shape: Option<&dyn Fn(Value) -> Value> = match request.action {
            TriggerAction::Partial => Some(&partial),
            TriggerAction::Invalid => Some(&invalid),
            _ => None,
        };
        let published = self.publish_shaped(
            |state| {
                let target = match (request.action, request.id) {
                    (TriggerAction::Insert, _) => None,
                    (_, Some(id)) if state.live_ids().contains(&id) => Some(id),
                    (_, Some(id)) => {
                        outcome = Err(TriggerError::NoSuchClocking { id });
                        return Vec::new();
                    }
                    (_, None) => {
                        let live = state.live_ids();
                        match state.pick_id(&live) {
                            Some(id) => Some(id),
                            None => {
                                outcome = Err(TriggerError::NoClockings);
                                return Vec::new();
                            }
                        }
                    }
                };
                let applied: Option<Applied> = match (request.action, target) {
                    (TriggerAction::Insert, _) => state.insert_random(request.kind),
                    (TriggerAction::Update | TriggerAction::Partial, Some(id)) => state.edit(id),
                    (TriggerAction::Delete, Some(id)) => state.hard_delete(id),
                    (TriggerAction::Invalid, Some(id)) => state.unapplied_version(id),
                    _ => None,
                };
                if applied.is_none() && outcome.is_ok() {
                    outcome = Err(TriggerError::CannotInsert);
                }
                applied.into_iter().collect()
            },
            shape,
        );
        outcome?;
        let change = published
            .changes
            .into_iter()
            .next()
            .ok_or(TriggerError::CannotInsert)?;
        let id = change.data.id.get();
        let change_version = change.data.change_version.clone();
        let wire = serde_json::to_value(&change).map_err(|_| TriggerError::CannotInsert)?;
        let body = match shape {
            Some(shape) => shape(wire),
            None => wire,
        };
        Ok(Triggered {
            action: request.action,
            id,
            change_version,
            subscribers: published.subscribers,
            body,
        })
    }
}
