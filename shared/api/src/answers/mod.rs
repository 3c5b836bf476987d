//! The bodies the API answers with: one serde type per answer, built from what `billing`'s
//! operations return. openapi.yaml documents these shapes, and a test checks every route's
//! answer against it. What a workspace is shown never includes a cost price: only labels and
//! points.
//!
//! A mutation's answer is made here and handed to the operation as its `respond`: the operation
//! stores it with the request's idempotency record, in the same transaction as the change, so a
//! replay is answered exactly as the first request was.

mod partners;
mod plans;
mod statements;
mod webhooks;
mod workspaces;

pub use partners::*;
pub use plans::*;
pub use statements::*;
pub use webhooks::*;
pub use workspaces::*;

use serde::{Serialize, Serializer};
use time::{Date, OffsetDateTime};

use billing::Reply;
use domain::{Cycle, LedgerEntry, LimitKind, PartnerAddon, WalletId, WorkspaceAddon, WorkspaceStatus};

/// `body` as the answer with `status`.
pub fn reply(status: u16, body: &impl Serialize) -> Reply {
    Reply::new(status, serde_json::to_value(body).expect("answers serialize to JSON"))
}

/// `{"<name>": body}`: an answer that names the one thing it holds.
fn named<T: Serialize>(status: u16, name: &'static str, body: T) -> Reply {
    reply(status, &std::collections::BTreeMap::from([(name, body)]))
}

fn date<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&store::records::format_date(*d))
}

fn instant<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&store::records::rfc3339(*at))
}

fn optional_instant<S: Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => instant(at, s),
        None => s.serialize_none(),
    }
}

/// `{"start": "2026-05-01", "end": "2026-05-31"}`.
#[derive(Serialize)]
pub struct CycleBody {
    #[serde(serialize_with = "date")]
    start: Date,
    #[serde(serialize_with = "date")]
    end: Date,
}

impl From<&Cycle> for CycleBody {
    fn from(c: &Cycle) -> Self {
        Self { start: c.start(), end: c.end() }
    }
}

impl CycleBody {
    /// A cycle from its first to its last day.
    pub fn between(start: Date, end: Date) -> Self {
        Self { start, end }
    }
}

/// `"status": "active"` or `"paused"`, and the limits it is over (`[]` when active): flattened
/// into the body that shows a workspace.
#[derive(Serialize)]
pub struct StatusBody<'a> {
    status: &'static str,
    exceeded: &'a [LimitKind],
    /// Paused because its plan's invoice is unpaid past the grace days (only then present).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unpaid: bool,
}

impl<'a> From<&'a WorkspaceStatus> for StatusBody<'a> {
    fn from(s: &'a WorkspaceStatus) -> Self {
        match s {
            WorkspaceStatus::Active => Self { status: "active", exceeded: &[], unpaid: false },
            WorkspaceStatus::Paused { exceeded, unpaid } => Self { status: "paused", exceeded, unpaid: *unpaid },
        }
    }
}

/// An add-on on offer, as a workspace sees it: label and points only.
#[derive(Serialize)]
pub struct AddonOffer<'a> {
    code: &'static str,
    label: &'a str,
    effect: AddonEffect,
    points: domain::Points,
    /// Its price a month in money, on the plan's bill (only when the partner sells it so).
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<domain::Money>,
}

#[derive(Serialize)]
struct AddonEffect {
    limit: &'static str,
    amount: u32,
}

impl<'a> From<&'a PartnerAddon> for AddonOffer<'a> {
    fn from(a: &'a PartnerAddon) -> Self {
        let (limit, amount) = a.code.effect();
        Self {
            code: a.code.as_str(),
            label: &a.label,
            effect: AddonEffect { limit: limit.as_str(), amount },
            points: a.points,
            price: a.price,
        }
    }
}

/// An add-on a workspace holds, with its partner's label.
#[derive(Serialize)]
pub struct OwnedAddon<'a> {
    id: &'a str,
    addon: &'static str,
    label: &'a str,
    quantity: u32,
    unit_points: domain::Points,
    status: &'static str,
    #[serde(serialize_with = "date")]
    period_end: Date,
    /// An add-on on the plan's bill: its price a month, in money (only then present).
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_price: Option<domain::Money>,
}

impl<'a> OwnedAddon<'a> {
    pub fn new(a: &'a WorkspaceAddon, label: &'a str) -> Self {
        Self {
            id: a.id.as_str(),
            addon: a.code.as_str(),
            label,
            quantity: a.quantity,
            unit_points: a.unit_points,
            status: a.status.as_str(),
            period_end: a.period_end,
            unit_price: a.billed.as_ref().map(|b| b.unit_price),
        }
    }
}

impl<'a> From<&'a billing::LabelledAddon> for OwnedAddon<'a> {
    fn from(a: &'a billing::LabelledAddon) -> Self {
        Self::new(&a.addon, &a.label)
    }
}

/// A ledger entry: its kind's name, and the kind's fields as `detail`. In a listing across a
/// partner's workspaces it names the workspace.
#[derive(Serialize)]
pub struct EntryBody<'a> {
    id: String,
    seq: u64,
    amount: domain::PointsDelta,
    balance_after: domain::Balance,
    kind: serde_json::Value,
    detail: serde_json::Value,
    actor: &'a domain::Actor,
    #[serde(serialize_with = "instant")]
    created_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
}

impl<'a> EntryBody<'a> {
    pub fn new(e: &'a LedgerEntry) -> Self {
        let (kind, detail) = match serde_json::to_value(&e.kind).expect("entry kinds serialize") {
            serde_json::Value::Object(mut m) => {
                let kind = m.remove("type").unwrap_or_default();
                (kind, serde_json::Value::Object(m))
            }
            other => (serde_json::Value::Null, other),
        };
        Self {
            id: e.id.to_string(),
            seq: e.id.seq,
            amount: e.amount,
            balance_after: e.balance_after,
            kind,
            detail,
            actor: &e.actor,
            created_at: e.created_at,
            workspace_id: None,
        }
    }

    /// The entry with the workspace whose wallet it is in (none for a partner wallet's).
    pub fn naming_workspace(e: &'a LedgerEntry) -> Self {
        let workspace_id = match &e.id.wallet {
            WalletId::Workspace(w) => Some(w.as_str()),
            WalletId::Partner(_) => None,
        };
        Self { workspace_id, ..Self::new(e) }
    }
}

/// A page of a listing: `{"data": [...], "next_cursor": "..." | null}`.
#[derive(Serialize)]
pub struct Page<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, next_cursor: Option<String>) -> Self {
        Self { data, next_cursor }
    }

    /// A page of what an operation listed, each item shown by `show`.
    pub fn of<'a, I>(page: &'a billing::Page<I>, show: impl Fn(&'a I) -> T) -> Self {
        Self::new(page.items.iter().map(show).collect(), page.next_cursor.clone())
    }
}

/// A listing without pages: `{"data": [...]}`.
#[derive(Serialize)]
pub struct List<T> {
    data: Vec<T>,
}

impl<T> List<T> {
    pub fn new(data: Vec<T>) -> Self {
        Self { data }
    }
}

/// What a Stripe webhook delivery answers: received, and what it did.
#[derive(Serialize)]
pub struct WebhookReceived {
    received: bool,
    outcome: &'static str,
}

impl WebhookReceived {
    pub fn new(outcome: billing::WebhookOutcome) -> Self {
        Self { received: true, outcome: outcome.as_str() }
    }
}
