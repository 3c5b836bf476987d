//! Subscriptions: made by a Checkout Session in `subscription` mode when it is paid, read
//! (`GET /v1/subscriptions/{id}`), changed (`POST /v1/subscriptions/{id}`: items, the end of the
//! period, metadata) and cancelled now (`DELETE /v1/subscriptions/{id}`). Their renewals, as the
//! clock passes the end of a period, are in `renewals.rs`.
//!
//! Shapes are those of the API versions from 2025-03-31: the current period is on each item
//! (`items.data[].current_period_start|end`), not on the subscription.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::invoices::{InvoiceLine, LineSource};
use super::{
    Acct, NextPaymentIntent, R, Reply, State, bool_param, check_known_params, invalid, metadata_json, of_account,
    owned, random_id,
};
use super::{Currency, Money};
use crate::form::Param;

/// Stripe's limit on a subscription's items.
pub const MAX_ITEMS: usize = 20;
/// Stripe's limit on a quantity, as the fake takes it.
const MAX_QUANTITY: u64 = 999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SubscriptionStatus {
    Active,
    PastDue,
    Canceled,
}

impl SubscriptionStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct SubscriptionItem {
    pub(super) id: String,
    created: i64,
    pub(super) price: String,
    pub(super) quantity: u64,
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(super) struct Subscription {
    pub(super) seq: u64,
    pub(super) id: String,
    pub(super) account: Acct,
    pub(super) customer: String,
    created: i64,
    pub(super) currency: String,
    pub(super) status: SubscriptionStatus,
    pub(super) items: Vec<SubscriptionItem>,
    /// The periods start on this one's day of the month (clamped to the month's last day).
    pub(super) billing_cycle_anchor: i64,
    /// Which period is current: the `n`th month from the anchor (0: the first).
    pub(super) period_index: u32,
    pub(super) cancel_at_period_end: bool,
    pub(super) canceled_at: Option<i64>,
    pub(super) ended_at: Option<i64>,
    pub(super) default_payment_method: Option<String>,
    pub(super) latest_invoice: Option<String>,
    metadata: BTreeMap<String, String>,
    /// Set by a control: how every charge of this subscription's invoices ends, until cleared
    /// (a card that keeps declining); `None`: the usual rules.
    pub(super) payment_outcome: Option<NextPaymentIntent>,
}

owned_by_account_field!(Subscription);

impl Subscription {
    pub(super) fn current_period(&self) -> (i64, i64) {
        (
            super::period_end(self.billing_cycle_anchor, self.period_index),
            super::period_end(self.billing_cycle_anchor, self.period_index + 1),
        )
    }
}

/// What a paid `subscription` Checkout Session hands the new subscription.
pub(super) struct NewSubscription {
    pub(super) account: Acct,
    pub(super) customer: String,
    pub(super) currency: String,
    /// Price and quantity of each line item.
    pub(super) items: Vec<(String, u64)>,
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) default_payment_method: String,
}

/// One `items[n]` of an update, checked.
enum ItemUpdate {
    Add { price: String, quantity: u64, metadata: BTreeMap<String, String> },
    Change { id: String, price: Option<String>, quantity: Option<u64>, metadata: Option<BTreeMap<String, String>> },
    Delete { id: String },
}

fn quantity_param(item: &Param, at: &str) -> R<Option<u64>> {
    item.str_at(&["quantity"])
        .map(|q| {
            q.parse::<u64>()
                .ok()
                .filter(|q| *q <= MAX_QUANTITY)
                .ok_or_else(|| invalid(Some("parameter_invalid_integer"), &format!("Invalid integer: {q}"), Some(at)))
        })
        .transpose()
}

impl State {
    fn subscription_item_json(&self, s: &Subscription, item: &SubscriptionItem) -> Value {
        let (start, end) = s.current_period();
        let price = self.prices.get(&item.price).map(Self::price_json).unwrap_or(Value::Null);
        // The legacy `plan`, which Stripe still renders for a recurring price.
        let plan = json!({
            "id": item.price,
            "object": "plan",
            "active": true,
            "amount": price["unit_amount"],
            "amount_decimal": price["unit_amount_decimal"],
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": price["currency"],
            "interval": price["recurring"]["interval"],
            "interval_count": 1,
            "livemode": false,
            "metadata": price["metadata"],
            "meter": null,
            "nickname": price["nickname"],
            "product": price["product"],
            "tiers_mode": null,
            "transform_usage": null,
            "trial_period_days": null,
            "usage_type": "licensed",
        });
        json!({
            "id": item.id,
            "object": "subscription_item",
            "billing_thresholds": null,
            "created": item.created,
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": metadata_json(&item.metadata),
            "plan": plan,
            "price": price,
            "quantity": item.quantity,
            "subscription": s.id,
            "tax_rates": [],
        })
    }

    fn subscription_items_json(&self, s: &Subscription) -> Value {
        let data: Vec<Value> = s.items.iter().map(|i| self.subscription_item_json(s, i)).collect();
        json!({
            "object": "list",
            "data": data,
            "has_more": false,
            "total_count": s.items.len(),
            "url": format!("/v1/subscription_items?subscription={}", s.id),
        })
    }

    pub(super) fn subscription_json(&self, s: &Subscription) -> Value {
        let (_, end) = s.current_period();
        json!({
            "id": s.id,
            "object": "subscription",
            "application": null,
            "application_fee_percent": null,
            "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
            "billing_cycle_anchor": s.billing_cycle_anchor,
            "billing_cycle_anchor_config": null,
            "billing_mode": { "flexible": null, "type": "classic", "updated_at": null },
            "billing_schedules": [],
            "billing_thresholds": null,
            "cancel_at": if s.cancel_at_period_end { Some(end) } else { None },
            "cancel_at_period_end": s.cancel_at_period_end,
            "canceled_at": s.canceled_at,
            "cancellation_details": {
                "comment": null,
                "feedback": null,
                "reason": s.canceled_at.map(|_| "cancellation_requested"),
            },
            "collection_method": "charge_automatically",
            "created": s.created,
            "currency": s.currency,
            "customer": s.customer,
            "customer_account": null,
            "days_until_due": null,
            "default_payment_method": s.default_payment_method,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
            "ended_at": s.ended_at,
            "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
            "items": self.subscription_items_json(s),
            "latest_invoice": s.latest_invoice,
            "livemode": false,
            "metadata": metadata_json(&s.metadata),
            "next_pending_invoice_item_invoice": null,
            "on_behalf_of": null,
            "pause_collection": null,
            "payment_settings": {
                "payment_method_options": null,
                "payment_method_types": null,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": null,
            "pending_setup_intent": null,
            "pending_update": null,
            "schedule": null,
            "start_date": s.created,
            "status": s.status.as_str(),
            "test_clock": null,
            "transfer_data": null,
            "trial_end": null,
            "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
            "trial_start": null,
        })
    }

    pub(super) fn subscription(&self, acct: &Acct, id: &str, param: Option<&str>) -> R<&Subscription> {
        owned(&self.subscriptions, acct, "subscription", id, param)
    }

    /// The `subscription` parameter's subscription, refused as Stripe does unless it is
    /// `customer`'s.
    pub(super) fn customer_subscription(&self, acct: &Acct, id: &str, customer: &str) -> R<&Subscription> {
        let s = self.subscription(acct, id, Some("subscription"))?;
        if s.customer != customer {
            return Err(invalid(
                None,
                &format!("The subscription {id} does not belong to customer {customer}."),
                Some("subscription"),
            ));
        }
        Ok(s)
    }

    /// A paid `subscription` session's subscription: active, anchored now, its first period
    /// starting now; event `customer.subscription.created`. Its first invoice is the caller's.
    pub(super) fn new_subscription(&mut self, new: NewSubscription) -> String {
        let now = self.now();
        let items = new
            .items
            .into_iter()
            .map(|(price, quantity)| SubscriptionItem {
                id: random_id("si_", 14),
                created: now,
                price,
                quantity,
                metadata: BTreeMap::new(),
            })
            .collect();
        let s = Subscription {
            seq: self.next_seq(),
            id: random_id("sub_", 24),
            account: new.account,
            customer: new.customer,
            created: now,
            currency: new.currency,
            status: SubscriptionStatus::Active,
            items,
            billing_cycle_anchor: now,
            period_index: 0,
            cancel_at_period_end: false,
            canceled_at: None,
            ended_at: None,
            default_payment_method: Some(new.default_payment_method),
            latest_invoice: None,
            metadata: new.metadata,
            payment_outcome: None,
        };
        let id = s.id.clone();
        self.subscriptions.insert(id.clone(), s);
        id
    }

    /// A subscription's invoice lines for `period`: each item's price x quantity, described as
    /// Stripe describes them (`2 × Starter (at 15.00 USD / month)`).
    pub(super) fn subscription_lines(&self, s: &Subscription, period: (i64, i64)) -> Vec<InvoiceLine> {
        s.items
            .iter()
            .map(|item| {
                let price = &self.prices[&item.price];
                let name = self.product(&s.account, &price.product).map_or("", |p| p.name.as_str());
                let at = Currency::parse(&price.currency)
                    .ok()
                    .and_then(|c| Money::from_minor(price.unit_amount, c).ok())
                    .map_or_else(
                        || format!("{} {}", price.unit_amount, price.currency),
                        |m| format!("{} {}", m.format_major(), m.currency().code()),
                    );
                InvoiceLine {
                    id: random_id("il_", 24),
                    name: format!("{} × {name} (at {at} / month)", item.quantity),
                    unit_amount: price.unit_amount,
                    quantity: i64::try_from(item.quantity).expect("at most 999,999"),
                    period,
                    source: LineSource::SubscriptionItem {
                        subscription: s.id.clone(),
                        item: item.id.clone(),
                        price: price.id.clone(),
                        product: price.product.clone(),
                    },
                    metadata: BTreeMap::new(),
                }
            })
            .collect()
    }

    /// Event `type_` with the subscription as it is now.
    pub(super) fn emit_subscription(&mut self, id: &str, type_: &str, previous: Option<Value>) -> Value {
        let s = &self.subscriptions[id];
        let (body, account) = (self.subscription_json(s), s.account.clone());
        self.emit(type_, &account, body.clone(), previous);
        body
    }

    pub fn retrieve_subscription(&self, acct: &Acct, id: &str) -> R<Reply> {
        Ok(Reply::ok(self.subscription_json(self.subscription(acct, id, None)?)))
    }

    /// A new price on a subscription: one of the account's, recurring by the month, in the
    /// subscription's currency.
    fn check_subscription_price(&self, acct: &Acct, s: &Subscription, price: &str, param: &str) -> R<()> {
        let p = self.price(acct, price, Some(param))?;
        if p.interval.as_deref() != Some("month") {
            return Err(invalid(
                None,
                "The fake's subscriptions take prices recurring by the month only.",
                Some(param),
            ));
        }
        if p.currency != s.currency {
            return Err(invalid(
                None,
                &format!(
                    "The price specified ({price}) has a currency ({}) that doesn't match the subscription's currency ({}).",
                    p.currency, s.currency
                ),
                Some(param),
            ));
        }
        Ok(())
    }

    /// The `items` parameter of an update, checked against the subscription.
    fn item_updates(&self, acct: &Acct, s: &Subscription, p: &Param) -> R<Vec<ItemUpdate>> {
        let given = p.get("items").map(Param::items).unwrap_or_default();
        let mut updates = Vec::with_capacity(given.len());
        for (n, item) in given.iter().enumerate() {
            let at = |field: &str| format!("items[{n}][{field}]");
            if let Some(other) =
                item.names().into_iter().find(|name| !["deleted", "id", "metadata", "price", "quantity"].contains(name))
            {
                let param = at(other);
                return Err(invalid(
                    Some("parameter_unknown"),
                    &format!("Received unknown parameter: {param}"),
                    Some(&param),
                ));
            }
            let price = item.str_at(&["price"]).map(str::to_owned);
            if let Some(price) = &price {
                self.check_subscription_price(acct, s, price, &at("price"))?;
            }
            let quantity = quantity_param(item, &at("quantity"))?;
            let metadata = item
                .get("metadata")
                .map(|m| m.string_map().ok_or_else(|| invalid(None, "Invalid hash", Some(&at("metadata")))))
                .transpose()?;
            let deleted = bool_param(item, "deleted")
                .map_err(|_| invalid(Some("parameter_invalid_boolean"), "Invalid boolean", Some(&at("deleted"))))?;
            let update = match item.str_at(&["id"]) {
                Some(id) => {
                    if !s.items.iter().any(|i| i.id == id) {
                        return Err(invalid(
                            None,
                            &format!("Subscription item {id} does not belong to subscription {}.", s.id),
                            Some(&at("id")),
                        ));
                    }
                    if deleted {
                        ItemUpdate::Delete { id: id.to_owned() }
                    } else {
                        ItemUpdate::Change { id: id.to_owned(), price, quantity, metadata }
                    }
                }
                None if deleted => {
                    return Err(invalid(
                        Some("parameter_missing"),
                        "You must specify an item's id to delete it.",
                        Some(&at("id")),
                    ));
                }
                None => {
                    let price = price.ok_or_else(|| {
                        invalid(
                            Some("parameter_missing"),
                            "Missing required param: items[0][price].",
                            Some(&at("price")),
                        )
                    })?;
                    ItemUpdate::Add { price, quantity: quantity.unwrap_or(1), metadata: metadata.unwrap_or_default() }
                }
            };
            updates.push(update);
        }
        Ok(updates)
    }

    /// The subscription's items after `updates`, checked as Stripe checks them: one item per
    /// price, at least one item, at most [`MAX_ITEMS`].
    fn items_after(&self, s: &Subscription, updates: Vec<ItemUpdate>) -> R<Vec<SubscriptionItem>> {
        let now = self.now();
        let mut items = s.items.clone();
        for update in updates {
            match update {
                ItemUpdate::Add { price, quantity, metadata } => {
                    items.push(SubscriptionItem { id: random_id("si_", 14), created: now, price, quantity, metadata });
                }
                ItemUpdate::Change { id, price, quantity, metadata } => {
                    let item = items.iter_mut().find(|i| i.id == id).expect("checked in item_updates");
                    if let Some(price) = price.filter(|p| *p != item.price) {
                        item.price = price;
                        // Stripe: a new price without a quantity is quantity 1.
                        item.quantity = quantity.unwrap_or(1);
                    } else if let Some(quantity) = quantity {
                        item.quantity = quantity;
                    }
                    if let Some(metadata) = metadata {
                        merge_metadata(&mut item.metadata, metadata);
                    }
                }
                ItemUpdate::Delete { id } => items.retain(|i| i.id != id),
            }
        }
        if items.is_empty() {
            return Err(invalid(
                None,
                "A subscription must have at least one active plan. To cancel a subscription, please use the cancel API endpoint on /v1/subscriptions.",
                Some("items"),
            ));
        }
        if items.len() > MAX_ITEMS {
            return Err(invalid(None, &format!("A subscription has at most {MAX_ITEMS} items."), Some("items")));
        }
        for (n, item) in items.iter().enumerate() {
            if items[..n].iter().any(|i| i.price == item.price) {
                return Err(invalid(None, "Cannot add multiple subscription items with the same plan.", Some("items")));
            }
        }
        Ok(items)
    }

    /// `POST /v1/subscriptions/{id}`: `items[n][id|price|quantity|deleted|metadata]`,
    /// `cancel_at_period_end`, `metadata`, `default_payment_method`, `proration_behavior`. The fake
    /// never prorates: `none` is what the product sends; `create_prorations` is taken and makes no
    /// proration items (the fake has no proration); `always_invoice` is refused. Event
    /// `customer.subscription.updated` with the changed fields' old values in
    /// `previous_attributes`, when something changed.
    pub fn update_subscription(&mut self, acct: &Acct, id: &str, p: &Param) -> R<Reply> {
        check_known_params(
            p,
            &[
                "cancel_at_period_end",
                "default_payment_method",
                "expand",
                "items",
                "metadata",
                "payment_behavior",
                "proration_behavior",
            ],
        )?;
        let s = self.subscription(acct, id, None)?.clone();
        if s.status == SubscriptionStatus::Canceled {
            return Err(invalid(
                None,
                "A canceled subscription can only update its cancellation_details and metadata.",
                None,
            ));
        }
        match p.str_at(&["proration_behavior"]) {
            None | Some("none" | "create_prorations") => {}
            Some(other) => {
                return Err(invalid(
                    None,
                    &format!("The fake does not prorate: proration_behavior={other} is not taken (none is)."),
                    Some("proration_behavior"),
                ));
            }
        }
        let updates = self.item_updates(acct, &s, p)?;
        let items = self.items_after(&s, updates)?;
        let default_payment_method = match p.str_at(&["default_payment_method"]) {
            None => None,
            Some(pm) => {
                let pm = owned(&self.payment_methods, acct, "PaymentMethod", pm, Some("default_payment_method"))?;
                if pm.customer.as_deref() != Some(s.customer.as_str()) {
                    return Err(invalid(
                        None,
                        &format!("The customer does not have a payment method with the ID {}.", pm.id),
                        Some("default_payment_method"),
                    ));
                }
                Some(pm.id.clone())
            }
        };
        let cancel_at_period_end =
            p.get("cancel_at_period_end").map(|_| bool_param(p, "cancel_at_period_end")).transpose()?;
        let metadata = super::string_map(p, "metadata")?;

        let before = self.subscription_json(&s);
        let now = self.now();
        let sub = self.subscriptions.get_mut(id).expect("found above");
        sub.items = items;
        if let Some(pm) = default_payment_method {
            sub.default_payment_method = Some(pm);
        }
        if let Some(cancel) = cancel_at_period_end.filter(|c| *c != sub.cancel_at_period_end) {
            sub.cancel_at_period_end = cancel;
            sub.canceled_at = cancel.then_some(now);
        }
        merge_metadata(&mut sub.metadata, metadata);
        let after = self.subscription_json(&self.subscriptions[id]);
        let previous = changed_fields(&before, &after);
        if !previous.is_empty() {
            self.emit("customer.subscription.updated", acct, after.clone(), Some(Value::Object(previous)));
        }
        Ok(Reply::ok(after))
    }

    /// `DELETE /v1/subscriptions/{id}`: cancelled now, without a final invoice or a refund (the
    /// fake takes neither `invoice_now` nor `prorate` as true). Event
    /// `customer.subscription.deleted`.
    pub fn cancel_subscription(&mut self, acct: &Acct, id: &str, p: &Param) -> R<Reply> {
        check_known_params(p, &["cancellation_details", "expand", "invoice_now", "prorate"])?;
        for name in ["invoice_now", "prorate"] {
            if bool_param(p, name)? {
                return Err(invalid(None, &format!("The fake does not take {name}=true."), Some(name)));
            }
        }
        let s = self.subscription(acct, id, None)?;
        if s.status == SubscriptionStatus::Canceled {
            return Err(invalid(None, &format!("A canceled subscription can't be canceled again: {id}."), None));
        }
        let now = self.now();
        self.end_subscription(id, now);
        Ok(Reply::ok(self.emit_subscription(id, "customer.subscription.deleted", None)))
    }

    /// The subscription ends at `at`.
    pub(super) fn end_subscription(&mut self, id: &str, at: i64) {
        let sub = self.subscriptions.get_mut(id).expect("the caller found the subscription");
        sub.status = SubscriptionStatus::Canceled;
        sub.ended_at = Some(at);
        sub.canceled_at.get_or_insert(at);
    }

    pub fn subscriptions_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.subscriptions, account, |s| s.seq).into_iter().map(|s| self.subscription_json(s)).collect()
    }

    /// Control: how every later charge of the subscription's invoices ends (`None`: the usual
    /// rules: the queued outcome, else the card's expiry).
    pub fn set_subscription_payment_outcome(
        &mut self,
        id: &str,
        outcome: Option<NextPaymentIntent>,
    ) -> Result<Value, String> {
        let s = self.subscriptions.get_mut(id).ok_or_else(|| format!("no subscription {id}"))?;
        s.payment_outcome = outcome;
        Ok(self.subscription_json(&self.subscriptions[id]))
    }
}

/// Stripe's metadata update: keys merged in, an empty value removes its key.
pub(super) fn merge_metadata(into: &mut BTreeMap<String, String>, update: BTreeMap<String, String>) {
    for (k, v) in update {
        if v.is_empty() {
            into.remove(&k);
        } else {
            into.insert(k, v);
        }
    }
}

/// `previous_attributes`: the top-level fields whose value changed, with their old value.
pub(super) fn changed_fields(before: &Value, after: &Value) -> serde_json::Map<String, Value> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return serde_json::Map::new();
    };
    before.iter().filter(|(k, v)| after.get(*k) != Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}
