//! The product's operations: each one reads what it needs, applies the pure rules of
//! `domain`, and writes the outcome in one transaction through `store`. Handlers call exactly
//! one of these; no business rule lives in a handler.
//!
//! Reads return what they found, as domain types. A mutation decides an outcome (a type of its
//! own, in domain terms) and asks its caller's [`Mutation`] for the [`Reply`] it makes of it: the
//! status and body the caller is sent, stored with the request's idempotency key in the same
//! transaction as the change, so that a replay is sent the same thing. The HTTP shapes are the
//! caller's (the `api` crate's answers), never an operation's.

mod autotopup;
mod balance_alerts;
mod cards;
mod catalog;
mod charging;
mod events;
mod load;
mod managers;
mod partner_wallet;
mod partner_webhooks;
mod partners;
mod payments;
mod plan_edits;
mod plans;
mod quote;
mod receipts;
mod reconcile;
mod refill;
mod renewal;
mod renewal_warnings;
mod statements;
mod topup;
mod usage;
mod webhook;
mod workspace;

use std::sync::Arc;

use serde_json::{Value, json};

use domain::{Balance, Clock, Meters, PartnerId, Points, Workspace, WorkspaceId};
use store::{IdempotencyKey, Store, StoreError, Table, keys, records};
use stripe_gateway::gateway::GatewayError;

pub use autotopup::{AUTO_TOPUP_ACTOR, AutoTopupTerms};
pub use balance_alerts::{AlertsTold, BalanceAlerts, MAX_THRESHOLDS};
pub use cards::{CardSession, RemovedCard, SOURCE_CARD, SavedCard};
pub use charging::RefillRun;
pub use events::{PartnerEvent, PartnerEventKind};
pub use load::{Asker, NOT_A_BILLING_MANAGER};
pub use managers::{BillingAccess, MAX_BILLING_MANAGERS, ManagersChanged, SUB_MAX_LEN};
pub use partner_wallet::{PARTNER_REFILL_ACTOR, PartnerRefillTerms, SOURCE_PARTNER_REFILL, SOURCE_PARTNER_WALLET};
pub use partner_webhooks::{
    Delivery, DeliveryRun, DeliveryStatus, EVENT_ID_HEADER, EndpointChanged, PartnerEndpoint, RETRY_DELAYS_S,
    ROLLED_SECRET_LIFETIME, SIGNATURE_HEADER, SigningSecret, WebhookSender, check_endpoint_url, delivery_position,
    is_public,
};
pub use partners::{NewPartner, PartnerDetails, PartnerTerms, check_partner_name};
pub use payments::{CheckoutCreated, CheckoutRequest, Payments, WebhookEndpoint};
pub use plan_edits::{PlanEditLimits, PlanEditRun};
pub use plans::{
    AddonBilled, ChargedNow, FALLBACK_PLAN, PlanChanged, PlanOffer, PlanOffers, SubscriptionCheckout,
    SubscriptionDetails, UnpaidRun, addon_product, plan_product,
};
pub use quote::AddonQuote;
pub use receipts::Receipt;
pub use reconcile::{LOOKBACK, SWEPT_TYPES, SweepLimits, SweepRun};
pub use refill::{REFILL_RESUME_AFTER, RefillState};
pub use renewal::{RENEWAL_ACTOR, RenewalLimits, RenewalOutcome, RenewalRun, join_all};
pub use renewal_warnings::{WARN_DAYS, WarningRun};
pub use statements::{PartnerStatement, Statement, WorkspaceMonth};
/// A workspace's invoices as Stripe holds them, for the answers that list them.
pub use stripe_gateway::subscription::{Invoice, InvoicePage, InvoiceStatus};
pub use topup::{MAX_TOPUP_OPTIONS, PartnerTopupTerms, PlatformConfig, TopupOffers, TopupOptionDraft};
pub use usage::{
    BillingModeSet, FOLD_ACTOR, FoldRun, MAX_CACHED_WORKSPACES, PartnerWallet, UsageCharge, UsageEvent, UsageRecorded,
};
pub use webhook::WebhookOutcome;
pub use workspace::{
    AddonAdded, AddonOrder, LabelledAddon, LedgerPage, ListedStatus, NewWorkspace, PointsAdjustment, REASON_MAX_CHARS,
    ShownBrand, WorkspaceAddons, WorkspaceDetails, WorkspaceDraft, WorkspaceState,
};

/// An operation whose workspace changed under it is attempted again, at most this often.
pub const MAX_OP_ATTEMPTS: u32 = 5;

/// A page of a listing, and the cursor of the next page if there is one (opaque to the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// What a mutation returns: the reply to send (the one stored with its idempotency key), or why
/// nothing happened.
pub type Replied = Result<Reply, OpError>;

/// How the caller answers a mutation's outcome `O`.
pub type Respond<'a, O> = &'a (dyn Fn(&O) -> Reply + Sync);

/// A change as its caller asks for it: the request's idempotency key, and how to answer the
/// outcome. The operation calls [`Mutation::answer`] once it has decided (again on each attempt
/// after a conflict) and stores the reply with the key, in the same transaction as the change,
/// so that a replay is sent the same thing.
pub struct Mutation<'a, O: ?Sized> {
    key: &'a IdempotencyKey,
    respond: Respond<'a, O>,
}

impl<'a, O: ?Sized> Mutation<'a, O> {
    pub fn new(key: &'a IdempotencyKey, respond: Respond<'a, O>) -> Self {
        Self { key, respond }
    }

    /// The request's idempotency key.
    pub fn key(&self) -> &'a IdempotencyKey {
        self.key
    }

    /// The reply to `outcome`, to store with the key.
    pub fn answer(&self, outcome: &O) -> Reply {
        (self.respond)(outcome)
    }
}

impl<O: ?Sized> Clone for Mutation<'_, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O: ?Sized> Copy for Mutation<'_, O> {}

/// The status and body a mutation answers with, and answers again on a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// The form kept in the idempotency record.
    pub fn to_stored(&self) -> Value {
        json!({ "status": self.status, "body": self.body })
    }

    pub fn from_stored(v: Value) -> Result<Self, OpError> {
        let status = v.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
        match (status, v.get("body")) {
            (Some(status), Some(body)) => Ok(Self { status, body: body.clone() }),
            _ => Err(OpError::Internal("stored response is malformed".into())),
        }
    }
}

/// Why an operation did not happen. Nothing was written in any of these cases.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    #[error("{param}: {message}")]
    Invalid { param: String, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The workspace may not use (or buy) now: paused, or the wallet that pays is depleted.
    #[error("{0}")]
    AccessDenied(domain::AccessDenied),
    #[error("insufficient points: balance {balance}, required {required}")]
    InsufficientPoints { balance: Balance, required: Points },
    /// The workspace holds as many add-ons as one renewal carries.
    #[error(transparent)]
    AddonLimit(domain::AddonLimitReached),
    #[error("idempotency key reused with a different request")]
    KeyReused,
    #[error("the resource changed concurrently; retry")]
    Conflict,
    /// Storage stayed unavailable through the store's retries: retry with the same key.
    #[error("storage temporarily unavailable; retry")]
    Unavailable(#[source] StoreError),
    /// Storage refused outright or holds data that breaks an invariant: nothing retries it away.
    #[error("storage failed")]
    Storage(#[source] StoreError),
    /// Stripe could not be reached or is rate limiting: retry with the same key.
    #[error("Stripe is unavailable; retry")]
    StripeUnavailable(#[source] GatewayError),
    /// Stripe refused a call that should have worked.
    #[error("Stripe refused the request")]
    StripeFailed(#[source] GatewayError),
    /// The card was declined (or needs its holder present): nothing was charged or changed.
    #[error("the payment was declined ({code})")]
    PaymentDeclined { code: String },
    /// Something this depends on has not happened yet (a refund of a payment whose crediting
    /// event is still on its way): retry later.
    #[error("{0}; retry later")]
    RetryLater(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl OpError {
    pub fn invalid(param: &str, message: impl ToString) -> Self {
        Self::Invalid { param: param.to_owned(), message: message.to_string() }
    }
}

/// The most sources of an error [`error_chain`] follows.
const MAX_CHAIN_DEPTH: usize = 16;

/// `e` and its sources, outermost first (`a: b: c`): what a log line or an invocation's error
/// says of a failure. Never an answer's body.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .take(MAX_CHAIN_DEPTH)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => OpError::Conflict,
            e @ StoreError::Unavailable(_) => OpError::Unavailable(e),
            StoreError::BalanceOutOfRange => OpError::invalid("amount", "the balance would leave the allowed range"),
            // A caller's condition that reaches here was not expected by the operation.
            StoreError::ConditionFailed { .. } => OpError::Conflict,
            e @ (StoreError::Corrupt(_) | StoreError::Fatal(_)) => OpError::Storage(e),
        }
    }
}

impl From<store::MalformedItem> for OpError {
    fn from(e: store::MalformedItem) -> Self {
        OpError::Internal(e.to_string())
    }
}

/// The operations, over a table and a clock, with the platform's own figures.
pub struct Billing<T> {
    pub store: Store<T>,
    pub clock: Arc<dyn Clock>,
    pub platform: PlatformConfig,
    /// The deployment's Stripe, for the functions that take payments ([`Billing::with_payments`]).
    pub payments: Option<Arc<Payments>>,
    /// The platform's meters and their wholesale unit costs ([`Billing::with_meters`]).
    pub meters: Meters,
    /// Which partner each workspace belongs to, as read before: a workspace never changes
    /// partner, so the access check can name the partner's items without reading the workspace
    /// first. Bounded by [`usage::MAX_CACHED_WORKSPACES`].
    partner_of: std::sync::Mutex<std::collections::HashMap<WorkspaceId, PartnerId>>,
}

impl<T: Table> Billing<T> {
    /// With the platform's defaults ([`PlatformConfig::default`]); see [`Billing::with_platform`].
    pub fn new(store: Store<T>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            platform: PlatformConfig::default(),
            payments: None,
            meters: Meters::default_usd(),
            partner_of: Default::default(),
        }
    }

    /// A workspace by id, whoever owns it (for the workspace's own and the platform's routes).
    pub async fn workspace(&self, w: &WorkspaceId) -> Result<Workspace, OpError> {
        let item = self.store.get(&keys::workspace_profile(w)).await?.ok_or(OpError::NotFound("workspace"))?;
        Ok(records::workspace_from(&item)?)
    }

    /// The workspace a workspace user's token names. A token that also names a partner must
    /// name the workspace's own partner: a mismatch is "not found", never a way in.
    pub async fn caller_workspace(
        &self,
        w: &WorkspaceId,
        partner_claim: Option<&PartnerId>,
    ) -> Result<Workspace, OpError> {
        let ws = self.workspace(w).await?;
        if partner_claim.is_some_and(|p| p != &ws.partner) {
            return Err(OpError::NotFound("workspace"));
        }
        Ok(ws)
    }

    /// A workspace of partner `p`. Another partner's workspace is "not found", exactly like
    /// one that does not exist, so ids can't be probed.
    pub async fn partner_workspace(&self, p: &PartnerId, w: &WorkspaceId) -> Result<Workspace, OpError> {
        load::owned_by(self.workspace(w).await?, p)
    }
}

/// Maps the outcome of a replayable step to the reply.
pub(crate) fn replayed(response: Value) -> Result<Reply, OpError> {
    Reply::from_stored(response)
}
