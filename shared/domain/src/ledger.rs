//! What a ledger entry says: why a wallet changed, and who changed it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    AddonCode, AddonId, Balance, LedgerEntryId, MeterCode, Points, PointsDelta, RenewalLine, TopupOptionId, UnitRate,
    UsageQuantity,
};

/// Why a wallet changed. Each kind carries exactly the facts that explain it; new kinds arrive
/// with the features that create them (purchases, top-ups, renewals, usage, refunds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EntryKind {
    /// A partner added or deducted points by hand.
    Adjustment { reason: String },
    /// An add-on bought mid-cycle at the prorated price: `unit_points x quantity x
    /// days_remaining / days_in_cycle`, rounded once. `by_partner` when the partner added it
    /// for the workspace (then the amount is zero unless the partner chose to charge).
    AddonPurchase {
        addon_id: AddonId,
        addon: AddonCode,
        quantity: u32,
        unit_points: Points,
        days_remaining: u32,
        days_in_cycle: u32,
        by_partner: bool,
    },
    /// Points bought with money: `payment` is the paid Checkout Session (`cs_...`), or an
    /// off-session PaymentIntent (`pi_...`), `amount` what was paid in `currency` (major units,
    /// as a string), `topup_option_id` the option picked, if one was (else the points were
    /// bought at the partner's credit rate). `receipt` is the Stripe object whose receipt the
    /// customer got for it: the invoice Checkout made (`in_...`) or the off-session charge
    /// (`ch_...`); `None` when the crediting event named neither, as every entry written before
    /// receipts were kept (absent from the stored JSON, so those entries read as they are).
    TopUp {
        payment: String,
        topup_option_id: Option<TopupOptionId>,
        amount: String,
        currency: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
    /// Points taken back because money went back to the customer. `refunded` and `disputed` are
    /// the payment's totals so far (major units; `disputed` counts the disputes not won); the
    /// amount is what those totals newly take back: `points x min(paid, refunded + disputed) /
    /// paid`, less what was taken before.
    ClawBack { payment_intent: String, cause: ClawBackCause, refunded: String, disputed: String, currency: String },
    /// Points given back because the bank decided `dispute` (of `amount`) for the merchant: the
    /// money came back, so the points its claw-back took come back, once. `refunded` and
    /// `disputed` are the payment's totals after it (the won dispute no longer counted); the
    /// amount is what was taken before less what those totals take: `points x min(paid,
    /// refunded + disputed) / paid`.
    DisputeWon {
        payment_intent: String,
        dispute: String,
        amount: String,
        refunded: String,
        disputed: String,
        currency: String,
    },
    /// The cycle's add-ons paid for the next cycle (`cycle_start..=cycle_end`), at the partner's
    /// price then; the amount is the sum of the lines.
    Renewal { cycle_start: String, cycle_end: String, lines: Vec<RenewalLine> },
    /// The renewal could not be paid by the end of the grace days: these add-ons lapsed. Zero
    /// points; `shortfall` is what the balance lacked.
    Lapse { cycle_start: String, cycle_end: String, lines: Vec<RenewalLine>, shortfall: Points, reason: String },
    /// Metered usage re-billed to the workspace: `quantity` units of `meter` at `rate` points
    /// each, rounded once to 4 places. `event_id` is the platform's id for the usage.
    Usage { meter: MeterCode, quantity: UsageQuantity, rate: UnitRate, event_id: String },
    /// A partner wallet's wholesale costs, folded from the charges its workspaces accrued
    /// (usage at the platform's unit cost, add-on cost prices): `charges` of them, summed per
    /// workspace and source in `lines`.
    WholesaleCharges { charges: u32, lines: Vec<WholesaleLine> },
}

/// One line of a fold: what one workspace's charges of one source came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WholesaleLine {
    pub workspace_id: String,
    /// `usage:<meter>`, `addon_purchase:<add-on>` or `renewal`.
    pub source: String,
    pub charges: u32,
    /// Units of the meter, for usage.
    pub quantity: Option<String>,
    pub amount: String,
}

/// What made money go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClawBackCause {
    Refund,
    Dispute,
}

impl EntryKind {
    /// Every kind's [`EntryKind::name`], in the order the enum declares them.
    pub const NAMES: [&'static str; 9] = [
        "adjustment",
        "addon_purchase",
        "top_up",
        "claw_back",
        "dispute_won",
        "renewal",
        "lapse",
        "usage",
        "wholesale_charges",
    ];

    /// The stable name stored beside the entry (and used to filter ledgers).
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::Adjustment { .. } => "adjustment",
            EntryKind::AddonPurchase { .. } => "addon_purchase",
            EntryKind::TopUp { .. } => "top_up",
            EntryKind::ClawBack { .. } => "claw_back",
            EntryKind::DisputeWon { .. } => "dispute_won",
            EntryKind::Renewal { .. } => "renewal",
            EntryKind::Lapse { .. } => "lapse",
            EntryKind::Usage { .. } => "usage",
            EntryKind::WholesaleCharges { .. } => "wholesale_charges",
        }
    }
}

/// Who caused a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A person, by the `sub` claim of their token.
    User(String),
    /// A scheduled or internal process, by name (`renewal`, `usage-fold`).
    System(String),
    /// Stripe, by the event id that carried the news.
    Stripe(String),
}

/// May this change take the balance below zero? Purchases and renewals: never. Usage: yes
/// (minutes already spoken can't be refused afterwards). A partner's deduction: only when
/// the partner says so explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdraft {
    Forbid,
    Allow,
}

impl Overdraft {
    /// Whether moving to `after` is allowed. A credit is always allowed, even to a wallet that
    /// stays negative; a debit under `Forbid` must leave the balance at zero or above.
    pub fn permits(self, delta: PointsDelta, after: Balance) -> bool {
        match self {
            Overdraft::Allow => true,
            Overdraft::Forbid => !delta.is_debit() || !after.is_negative(),
        }
    }
}

/// One change of one wallet. `id.seq` is the wallet version the change created, so a wallet's
/// entries are numbered 1, 2, 3... without gaps, and `balance_after` of the last one is the
/// wallet's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: LedgerEntryId,
    pub amount: PointsDelta,
    pub balance_after: Balance,
    pub kind: EntryKind,
    pub actor: Actor,
    pub created_at: OffsetDateTime,
    /// The idempotency key of the request that made the change.
    pub idempotency_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdraft_guard() {
        let d = |s| PointsDelta::parse(s).unwrap();
        let b = |s| Balance::parse(s).unwrap();
        assert!(Overdraft::Forbid.permits(d("-10"), b("0")));
        assert!(!Overdraft::Forbid.permits(d("-10.01"), b("-0.01")));
        assert!(Overdraft::Forbid.permits(d("5"), b("-3")), "a credit to a negative wallet is fine");
        assert!(Overdraft::Allow.permits(d("-10"), b("-7")));
    }

    #[test]
    fn kinds_serialize_with_their_name() {
        let k = EntryKind::Adjustment { reason: "goodwill".into() };
        assert_eq!(serde_json::to_string(&k).unwrap(), r#"{"type":"adjustment","reason":"goodwill"}"#);
        assert_eq!(k.name(), "adjustment");
        let a = Actor::User("user-1".into());
        // A top-up without a receipt is stored as before receipts were kept, and one stored then
        // reads back as one without.
        let before = r#"{"type":"top_up","payment":"cs_1","topup_option_id":null,"amount":"10.00","currency":"usd"}"#;
        let read: EntryKind = serde_json::from_str(before).unwrap();
        assert_eq!(
            read,
            EntryKind::TopUp {
                payment: "cs_1".into(),
                topup_option_id: None,
                amount: "10.00".into(),
                currency: "usd".into(),
                receipt: None
            }
        );
        assert_eq!(serde_json::to_string(&read).unwrap(), before);
        let with = EntryKind::TopUp {
            payment: "cs_1".into(),
            topup_option_id: None,
            amount: "10.00".into(),
            currency: "usd".into(),
            receipt: Some("in_1".into()),
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.ends_with(r#""currency":"usd","receipt":"in_1"}"#), "{json}");
        assert_eq!(serde_json::from_str::<EntryKind>(&json).unwrap(), with);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"type":"user","id":"user-1"}"#);
    }
}
