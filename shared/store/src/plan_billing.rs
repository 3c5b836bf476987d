//! How plans billed in money are stored: a workspace's subscription (in its profile), an add-on
//! on the plan's bill (in the profile's `addons`), the Stripe prices made for a partner's plans and
//! add-ons, the invoices a workspace's subscription was charged, and the index of unpaid plans
//! the grace pass reads.
//!
//! | PK | SK | entity_type |
//! |---|---|---|
//! | `PARTNER#p` | `PRICE#<product>` | `stripe_price` (the Stripe price a plan or add-on is billed at: account, amount, price id) |
//! | `UNPAID` | `<pauses_on>#<w>` | `unpaid_plan` (a workspace whose plan invoice failed: paused on that day if still unpaid) |

use serde::{Deserialize, Serialize};
use time::Date;

use domain::stripe_ids::{AccountId, PriceId, SubscriptionId, SubscriptionItemId};
use domain::{AnchorDay, BilledAddon, Currency, Money, PartnerId, PlanId, PlanPayment, PlanSubscription, WorkspaceId};

use super::attrs::{self, date, word};
use super::item::{Attr, Item, Key, MalformedItem};
use super::keys;

pub const PRICE_PREFIX: &str = "PRICE#";
pub const UNPAID_PK: &str = "UNPAID";

/// The price a partner's `product` (a plan or an add-on) is billed at on its Stripe account. Its
/// key names neither the account nor the amount, so that an operation reads it with the rest
/// before it knows them: a price made on another account, or at another amount, is made again
/// and replaces it (subscriptions keep the prices they were billed at).
pub fn stripe_price(p: &PartnerId, product: &str) -> Key {
    Key::new(keys::partner_pk(p), format!("{PRICE_PREFIX}{product}"))
}

/// The Stripe price of one of a partner's plans or add-ons at one amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripePrice {
    pub account: AccountId,
    pub product: String,
    #[serde(with = "money_map")]
    pub amount: Money,
    pub price_id: PriceId,
}

pub fn stripe_price_item(key: &Key, price: &StripePrice) -> Item {
    Item::record(key, "stripe_price", price)
}

pub fn stripe_price_from(item: &Item) -> Result<StripePrice, MalformedItem> {
    item.read()
}

/// A workspace whose plan's invoice failed, by the day it pauses if still unpaid.
pub fn unpaid_plan(pauses_on: Date, w: &WorkspaceId) -> Key {
    Key::new(UNPAID_PK, format!("{}#{w}", super::records::format_date(pauses_on)))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpaidPlan {
    #[serde(rename = "workspace_id")]
    pub workspace: WorkspaceId,
    #[serde(with = "date")]
    pub pauses_on: Date,
}

pub fn unpaid_plan_item(u: &UnpaidPlan) -> Item {
    Item::record(&unpaid_plan(u.pauses_on, &u.workspace), "unpaid_plan", u)
}

pub fn unpaid_plan_from(item: &Item) -> Result<UnpaidPlan, MalformedItem> {
    item.read()
}

/// `#[serde(with = "money_map")]`: money as `{"currency": "usd", "amount_minor": 4900}`.
pub mod money_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Currency, Money};

    #[derive(Serialize, Deserialize)]
    struct Stored {
        currency: String,
        amount_minor: i64,
    }

    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        Stored { currency: m.currency().code().to_owned(), amount_minor: m.amount_minor() }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let stored = Stored::deserialize(d)?;
        let currency = Currency::parse(&stored.currency).map_err(serde::de::Error::custom)?;
        Money::from_minor(stored.amount_minor, currency).map_err(serde::de::Error::custom)
    }

    /// The same, absent for `None`.
    pub mod optional {
        use super::*;

        pub fn serialize<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
            match m {
                Some(m) => super::serialize(m, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
            Ok(Some(super::deserialize(d)?))
        }
    }
}

/// How an add-on on the plan's bill is stored, in the add-on's entry (`billed`).
#[derive(Serialize, Deserialize)]
#[serde(remote = "BilledAddon")]
struct BilledAddonDef {
    #[serde(rename = "stripe_item")]
    item: SubscriptionItemId,
    #[serde(with = "money_map")]
    unit_price: Money,
}

/// `#[serde(with = "billed")]` on an `Option<BilledAddon>`.
pub mod billed {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{BilledAddon, BilledAddonDef};

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "BilledAddonDef")] BilledAddon);

    pub fn serialize<S: Serializer>(b: &Option<BilledAddon>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => BilledAddonDef::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BilledAddon>, D::Error> {
        Ok(Some(Wrap::deserialize(d)?.0))
    }
}

/// How a workspace's subscription is stored: its profile's `subscription` map.
#[derive(Serialize, Deserialize)]
struct StoredSubscription {
    subscription_id: SubscriptionId,
    plan_item: SubscriptionItemId,
    #[serde(with = "money_map")]
    plan_price: Money,
    anchor_day: u8,
    #[serde(with = "date")]
    cycle_start: Date,
    #[serde(with = "date")]
    cycle_end: Date,
    /// `paid`, `past_due` or `unpaid`.
    payment: String,
    /// The day the cycle's invoice failed (`past_due`, `unpaid`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_date")]
    payment_failed_on: Option<Date>,
    cancel_at_cycle_end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_plan")]
    next_plan: Option<PlanId>,
}

mod optional_date {
    use serde::{Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::date::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Ok(Some(super::date::deserialize(d)?))
    }
}

mod optional_plan {
    use serde::{Deserializer, Serializer};

    use super::{PlanId, word};

    pub fn serialize<S: Serializer>(p: &Option<PlanId>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => word::serialize(p, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PlanId>, D::Error> {
        Ok(Some(word::deserialize(d)?))
    }
}

pub(crate) fn subscription_attr(s: &PlanSubscription) -> Attr {
    let (payment, payment_failed_on) = match s.payment {
        PlanPayment::Paid => ("paid", None),
        PlanPayment::PastDue { since } => ("past_due", Some(since)),
        PlanPayment::Unpaid { since } => ("unpaid", Some(since)),
    };
    let stored = StoredSubscription {
        subscription_id: s.id.clone(),
        plan_item: s.plan_item.clone(),
        plan_price: s.plan_price,
        anchor_day: s.anchor.get(),
        cycle_start: s.cycle_start,
        cycle_end: s.cycle_end,
        payment: payment.to_owned(),
        payment_failed_on,
        cancel_at_cycle_end: s.cancel_at_cycle_end,
        next_plan: s.next_plan,
    };
    attrs::to_attr_with(|ser| stored.serialize(ser)).expect("a subscription stores")
}

/// A profile's subscription; absent (a workspace whose plan is not billed in money, or one
/// stored before plans were) is `None`.
pub(crate) fn subscription_from(item: &Item) -> Result<Option<PlanSubscription>, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: format!("subscription.{attr}") };
    let Some(attr) = item.get("subscription").filter(|a| !matches!(a, Attr::Null)) else {
        return Ok(None);
    };
    let s: StoredSubscription =
        attrs::from_attr_with(attr, StoredSubscription::deserialize).map_err(|e| bad(&e.attr()))?;
    let since = || s.payment_failed_on.ok_or_else(|| bad("payment_failed_on"));
    let payment = match s.payment.as_str() {
        "paid" => PlanPayment::Paid,
        "past_due" => PlanPayment::PastDue { since: since()? },
        "unpaid" => PlanPayment::Unpaid { since: since()? },
        _ => return Err(bad("payment")),
    };
    let anchor = AnchorDay::new(s.anchor_day).map_err(|_| bad("anchor_day"))?;
    Ok(Some(PlanSubscription {
        id: s.subscription_id,
        plan_item: s.plan_item,
        plan_price: s.plan_price,
        anchor,
        cycle_start: s.cycle_start,
        cycle_end: s.cycle_end,
        payment,
        cancel_at_cycle_end: s.cancel_at_cycle_end,
        next_plan: s.next_plan,
    }))
}
