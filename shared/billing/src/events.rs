//! Events for partners: the state changes a partner reacts to, written as an outbox item in the
//! SAME transaction as the change, so an event exists exactly when its change does (no event
//! lost, none invented). Infrastructure delivers them (DynamoDB Streams, then EventBridge Pipes
//! to the partners' event bus: template.yaml); `GET /partner/events` lists them.
//!
//! Items: `PARTNER#p / EVENT#<unix ns, 20 digits><process sequence, 10 digits>#<id>`,
//! `entity_type = partner_event`, newest last in key order. A partner's events share its partition: they are rare next to the
//! changes that cause them (a pause, a top-up, a lapse), never one per usage event.

use serde_json::{Value, json};
use time::OffsetDateTime;

use domain::{PartnerId, WalletId, WorkspaceId, WorkspaceStatus};
use store::records::rfc3339;
use store::{Attr, Condition, EventCursor, Guard, Item, Key, Order, PageRequest, Query, Table, Write, keys};

use super::{Billing, OpError, Page};

pub use store::keys::EVENT_PREFIX;

/// Events this process wrote: breaks ties between events written in the same nanosecond.
static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub const EVENT_ENTITY: &str = "partner_event";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerEventKind {
    WorkspacePaused,
    WorkspaceResumed,
    TopupSucceeded,
    TopupFailed,
    AutotopupDisabled,
    AddonLapsed,
    RefundClawedBack,
    DisputeWon,
    WalletLowBalance,
    BillingAccessGranted,
    BillingAccessRevoked,
    CardExpiring,
    BalanceLow,
    BalanceRecovered,
    RenewalAtRisk,
    SubscriptionStarted,
    SubscriptionPastDue,
    SubscriptionRecovered,
    SubscriptionEnded,
    PlanChanged,
}

impl PartnerEventKind {
    /// Every kind, for what lists them (openapi.yaml's enum, checked by a test).
    pub const ALL: [PartnerEventKind; 20] = [
        PartnerEventKind::WorkspacePaused,
        PartnerEventKind::WorkspaceResumed,
        PartnerEventKind::TopupSucceeded,
        PartnerEventKind::TopupFailed,
        PartnerEventKind::AutotopupDisabled,
        PartnerEventKind::AddonLapsed,
        PartnerEventKind::RefundClawedBack,
        PartnerEventKind::DisputeWon,
        PartnerEventKind::WalletLowBalance,
        PartnerEventKind::BillingAccessGranted,
        PartnerEventKind::BillingAccessRevoked,
        PartnerEventKind::CardExpiring,
        PartnerEventKind::BalanceLow,
        PartnerEventKind::BalanceRecovered,
        PartnerEventKind::RenewalAtRisk,
        PartnerEventKind::SubscriptionStarted,
        PartnerEventKind::SubscriptionPastDue,
        PartnerEventKind::SubscriptionRecovered,
        PartnerEventKind::SubscriptionEnded,
        PartnerEventKind::PlanChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PartnerEventKind::WorkspacePaused => "workspace.paused",
            PartnerEventKind::WorkspaceResumed => "workspace.resumed",
            PartnerEventKind::TopupSucceeded => "topup.succeeded",
            PartnerEventKind::TopupFailed => "topup.failed",
            PartnerEventKind::AutotopupDisabled => "autotopup.disabled",
            PartnerEventKind::AddonLapsed => "addon.lapsed",
            PartnerEventKind::RefundClawedBack => "refund.clawed_back",
            PartnerEventKind::DisputeWon => "dispute.won",
            PartnerEventKind::WalletLowBalance => "wallet.low_balance",
            PartnerEventKind::BillingAccessGranted => "billing_access.granted",
            PartnerEventKind::BillingAccessRevoked => "billing_access.revoked",
            PartnerEventKind::CardExpiring => "card.expiring",
            PartnerEventKind::BalanceLow => "balance.low",
            PartnerEventKind::BalanceRecovered => "balance.recovered",
            PartnerEventKind::RenewalAtRisk => "renewal.at_risk",
            PartnerEventKind::SubscriptionStarted => "subscription.started",
            PartnerEventKind::SubscriptionPastDue => "subscription.past_due",
            PartnerEventKind::SubscriptionRecovered => "subscription.recovered",
            PartnerEventKind::SubscriptionEnded => "subscription.ended",
            PartnerEventKind::PlanChanged => "plan.changed",
        }
    }
}

/// The outbox write of one event about workspace `w`, to add to the change's transaction.
pub fn event_write(p: &PartnerId, w: &WorkspaceId, kind: PartnerEventKind, data: Value, at: OffsetDateTime) -> Write {
    outbox_write(p, Some(w), kind, data, at)
}

/// The outbox write of an event about `wallet`: a workspace's (as [`event_write`]), or the
/// partner's own (no `workspace_id`).
pub fn wallet_event_write(
    p: &PartnerId,
    wallet: &WalletId,
    kind: PartnerEventKind,
    data: Value,
    at: OffsetDateTime,
) -> Write {
    match wallet {
        WalletId::Workspace(w) => outbox_write(p, Some(w), kind, data, at),
        WalletId::Partner(_) => outbox_write(p, None, kind, data, at),
    }
}

fn outbox_write(
    p: &PartnerId,
    w: Option<&WorkspaceId>,
    kind: PartnerEventKind,
    data: Value,
    at: OffsetDateTime,
) -> Write {
    let id = format!("evt_{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..));
    // Ordered by when it was written (the real clock, with this process's sequence for ties),
    // not by `at`, the business time it shows (which tests and demos move at will).
    let ns = u128::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0);
    let seq = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = Key::new(keys::partner_pk(p), keys::event_sk(ns, seq, &id));
    let item = Item::new(&key, EVENT_ENTITY)
        .with("id", Attr::s(&id))
        .with("type", Attr::s(kind.as_str()))
        .with("partner_id", Attr::s(p.as_str()))
        .with("workspace_id", w.map_or(Attr::Null, |w| Attr::s(w.as_str())))
        .with("data", Attr::s(data.to_string()))
        .with("created_at", Attr::s(rfc3339(at)));
    Write::Put { item, condition: Condition::not_exists(Guard::EventNew) }
}

/// `workspace.paused` or `workspace.resumed` when a change moves the status (what it exceeds
/// now, when paused).
pub fn status_event(
    p: &PartnerId,
    w: &WorkspaceId,
    before: &WorkspaceStatus,
    after: &WorkspaceStatus,
    at: OffsetDateTime,
) -> Option<Write> {
    match (before.is_paused(), after) {
        (false, WorkspaceStatus::Paused { exceeded, unpaid }) => {
            let data =
                if *unpaid { json!({ "exceeded": exceeded, "unpaid": true }) } else { json!({ "exceeded": exceeded }) };
            Some(event_write(p, w, PartnerEventKind::WorkspacePaused, data, at))
        }
        (true, WorkspaceStatus::Active) => Some(event_write(p, w, PartnerEventKind::WorkspaceResumed, json!({}), at)),
        _ => None,
    }
}

/// One of a partner's events, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerEvent {
    pub id: String,
    /// Its type, as [`PartnerEventKind::as_str`] wrote it.
    pub kind: String,
    /// None: an event about the partner's own wallet.
    pub workspace: Option<String>,
    pub data: Value,
    /// RFC 3339, as written.
    pub created_at: String,
}

fn partner_event_from(item: &Item) -> Result<PartnerEvent, OpError> {
    let data: Value = serde_json::from_str(item.str("data")?).map_err(|e| OpError::Internal(e.to_string()))?;
    Ok(PartnerEvent {
        id: item.str("id")?.to_owned(),
        kind: item.str("type")?.to_owned(),
        workspace: match item.get("workspace_id") {
            None | Some(Attr::Null) => None,
            Some(_) => Some(item.str("workspace_id")?.to_owned()),
        },
        data,
        created_at: item.str("created_at")?.to_owned(),
    })
}

impl<T: Table> Billing<T> {
    /// `GET /partner/events`: newest first.
    pub async fn partner_events(
        &self,
        p: &PartnerId,
        page: PageRequest<EventCursor>,
    ) -> Result<Page<PartnerEvent>, OpError> {
        self.partner_settings(p).await?;
        let (start, limit) = (page.after.as_ref().map(EventCursor::sort_key), page.limit);
        let mut items = self
            .store
            .table()
            .query(Query {
                pk: &keys::partner_pk(p),
                sk_prefix: EVENT_PREFIX,
                start_after: start.as_deref(),
                limit: limit + 1,
                order: Order::Descending,
            })
            .await
            .map_err(store::StoreError::from_table)?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = match items.last() {
            Some(last) if more => {
                let sk = last.str(store::item::SK)?;
                let position = EventCursor::from_sort_key(sk)
                    .ok_or_else(|| OpError::Internal(format!("partner event sort key {sk:?}")))?;
                Some(position.encode(p))
            }
            _ => None,
        };
        let items = items.iter().map(partner_event_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }
}
