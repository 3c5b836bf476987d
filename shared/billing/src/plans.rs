//! Plans billed in money, on the partner's connected account: a workspace subscribes to a plan
//! through Checkout, changes it itself, puts add-ons on the plan's bill, and is paused when the
//! plan's invoice stays unpaid past its partner's grace days.
//!
//! **Who decides what.** Stripe bills each cycle in advance, and its periods follow the same
//! anchor rule as ours ([`Cycle`]). What a change costs for the rest of a cycle is decided here,
//! by the published proration rule ([`prorate_money`]), and charged as one invoice item of that
//! amount; every change of the subscription's items is made without Stripe's own proration. An
//! upgrade and an add-on take effect when their charge is paid; a downgrade is billed from the
//! next invoice and its limits apply from the next cycle.
//!
//! **Order of a change.** Read once (the workspace, its customer, its partner's terms and the
//! Stripe prices); decide; make the Stripe calls, each with an idempotency key derived from the
//! request's (a retried request makes the same calls, and Stripe answers them once); then write
//! the workspace once, under its version, with the request's idempotency record. A declined
//! charge writes nothing (its invoice is voided). A change whose workspace moved under it (a
//! usage report) decides again on the new state, and makes the same Stripe calls with the same
//! keys when it decides the same, so Stripe answers them once. Two different changes that charge
//! at once are the exception: the one that loses the race decides again and may charge again,
//! its first charge left paid (refunding it is not built yet).
//!
//! **Stripe's events** (`checkout.session.completed` in subscription mode,
//! `customer.subscription.*`, `invoice.paid`, `invoice.payment_failed`) all do one thing: read
//! the subscription as Stripe holds it now and make the workspace agree with it
//! ([`Billing::sync_subscription`]). An event that comes late, twice, or before another applies
//! nothing stale; one that finds the workspace in agreement writes nothing.

use serde_json::json;
use time::{Date, OffsetDateTime};

use domain::stripe_ids::{AccountId, CustomerId, InvoiceId, PriceId, SubscriptionId};
use domain::{
    AddonCode, AddonId, AddonStatus, AnchorDay, BilledAddon, Cycle, Limits, Money, PartnerId, Plan, PlanChange, PlanId,
    PlanPayment, PlanSubscription, Points, ProratedMoney, Workspace, WorkspaceAddon, WorkspaceId, evaluate,
    plan_change, prorate_money, room_for_addon,
};
use store::plan_billing::{self, StripePrice, UnpaidPlan};
use store::records::StripeConnection;
use store::{Attr, Condition, Guard, Key, Snapshot, StoreError, Table, Write, keys, records};
use stripe_gateway::event::{Event, metadata};
use stripe_gateway::gateway::{Account, GatewayError, Metadata};
use stripe_gateway::subscription::{
    InvoiceCharge, InvoiceOutcome, ItemChange, NewSubscriptionCheckout, PriceSpec, Subscription, SubscriptionChange,
    SubscriptionStatus,
};

use super::events::{PartnerEventKind, event_write, status_event};
use super::load::{Asker, fresh};
use super::payments::{stripe_error, stripe_key};
use super::webhook::WebhookOutcome;
use super::workspace::{LabelledAddon, WorkspaceState, history_write};
use super::{Billing, MAX_OP_ATTEMPTS, Mutation, OpError, Replied, Reply, replayed};

/// The plan a workspace falls back to when its subscription ends.
pub const FALLBACK_PLAN: PlanId = PlanId::Starter;
/// What the product writes in a subscription's metadata beside the workspace and partner.
const PLAN_META: &str = "plan";
const SOURCE_SUBSCRIPTION: &str = "subscription";

/// Our Stripe product id of a plan.
pub fn plan_product(id: PlanId) -> String {
    format!("plan_{}", id.as_str())
}

/// Our Stripe product id of an add-on.
pub fn addon_product(code: AddonCode) -> String {
    format!("addon_{}", code.as_str())
}

fn plan_of_product(product: &str) -> Option<PlanId> {
    product.strip_prefix("plan_").and_then(|p| PlanId::parse(p).ok())
}

/// A subscription's Checkout Session: send the customer to `url`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionCheckout {
    pub plan: PlanId,
    pub url: String,
    pub expires_at: OffsetDateTime,
}

/// One of the partner's plans as a workspace may choose it, with what choosing it now does.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOffer {
    pub plan: Plan,
    /// The workspace is on it.
    pub current: bool,
    /// The workspace moves to it at its next cycle (a downgrade it chose).
    pub next: bool,
    /// What choosing it now does (`None`: the current plan, the workspace isn't subscribed, or
    /// the plan is priced in another currency than its subscription).
    pub change: Option<PlanChange>,
}

/// The plans a workspace may choose, and its subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOffers {
    pub plans: Vec<PlanOffer>,
    pub subscription: Option<PlanSubscription>,
}

/// What was charged now for the rest of a cycle: the prorated amount, and its invoice (`None`
/// when the amount was zero: bought or upgraded on the cycle's last day).
#[derive(Debug, Clone, PartialEq)]
pub struct ChargedNow {
    pub prorated: ProratedMoney,
    pub invoice: Option<InvoiceId>,
}

/// A change of plan in money.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanChanged {
    pub from: PlanId,
    pub to: PlanId,
    /// An upgrade's charge for the rest of the cycle.
    pub charged: Option<ChargedNow>,
    /// The day the new plan's limits apply: today for an upgrade, the next cycle's first day for
    /// a downgrade.
    pub effective: Date,
    pub after: WorkspaceState,
}

/// An add-on put on the plan's bill.
#[derive(Debug, Clone, PartialEq)]
pub struct AddonBilled {
    pub addon: LabelledAddon,
    pub charged: ChargedNow,
    pub cycle: Cycle,
    pub after: WorkspaceState,
}

/// A workspace's subscription, and what its next invoice will bill.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionDetails {
    pub workspace: Workspace,
    pub subscription: PlanSubscription,
    /// The plan the next invoice bills (the chosen downgrade, if any).
    pub next_plan: Plan,
    /// The next invoice's date (the next cycle's first day) and amount: the plan and the add-ons
    /// that stay, at their monthly prices. `None`: the subscription ends with this cycle.
    pub next_invoice: Option<(Date, Money)>,
}

/// What the grace pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnpaidRun {
    /// Workspaces paused, their plan unpaid past the grace days.
    pub paused: u64,
    /// Marks of plans paid (or ended) since they failed, cleared.
    pub cleared: u64,
    pub failed: u64,
}

/// The Stripe idempotency key of a change a request decided: the request (its Idempotency-Key)
/// and what it decided. A retry of the request, and its attempt again after the workspace moved
/// under it (a usage report), make the same Stripe calls when they decide the same, which Stripe
/// answers once; one that decides otherwise makes calls of its own.
fn stripe_change_key(what: &str, ws: &Workspace, request: &str, change: &str) -> String {
    format!("{what}:{}:{request}:{change}", ws.id)
}

/// `after`, a change of `before`, settled on `plan`: its status evaluated, its version the next
/// one; with the writes every such change makes (the workspace, on the condition that it is still
/// at the version read, and the pause or resume event its status change tells) and its effective
/// limits.
fn settle(
    before: &Workspace,
    after: &mut Workspace,
    plan: &Plan,
    now: OffsetDateTime,
) -> Result<(Limits, Vec<Write>), domain::CatalogError> {
    let (limits, status) = evaluate(plan, &after.addons, &after.usage, after.unpaid())?;
    after.status = status;
    after.version = before.version + 1;
    let event = status_event(&before.partner, &before.id, &before.status, &after.status, now);
    Ok((limits, std::iter::once(workspace_put(after, before.version)).chain(event).collect()))
}

/// The write of workspace `after`, on the condition that it is still at `version` as read.
fn workspace_put(after: &Workspace, version: u64) -> Write {
    Write::Put {
        item: records::workspace_item(after),
        condition: Condition::equals(Guard::WorkspaceVersion, "version", Attr::n(version)),
    }
}

/// Who pays a charge now: the workspace's customer on the partner's account, for its
/// subscription.
#[derive(Clone, Copy)]
struct Payer<'a> {
    account: &'a AccountId,
    customer: &'a CustomerId,
    subscription: &'a SubscriptionId,
}

/// The partner's terms for billing a workspace in money, as read.
struct MoneyTerms {
    profile: records::PartnerProfile,
    connection: StripeConnection,
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

fn meta(ws: &Workspace, extra: &[(&str, &str)]) -> Result<Metadata, OpError> {
    let mut m = Metadata::new()
        .with(metadata::WORKSPACE, ws.id.as_str())
        .and_then(|m| m.with(metadata::PARTNER, ws.partner.as_str()))
        .and_then(|m| m.with(metadata::SOURCE, SOURCE_SUBSCRIPTION))
        .map_err(internal)?;
    for (k, v) in extra {
        m.insert(k, v).map_err(internal)?;
    }
    Ok(m)
}

/// The cycle a subscribed workspace's plan is in on `today`: its subscription's (Stripe's
/// periods follow the same anchor rule as ours).
fn cycle_of(ws: &Workspace, today: Date) -> Result<Cycle, OpError> {
    let sub = ws.subscription.as_ref().ok_or_else(|| internal("a cycle in money of a workspace not subscribed"))?;
    sub.cycle_on(today).map_err(internal)
}

/// The keys every change of a subscribed workspace reads: its customer, its partner's profile
/// and connection, and the partner's plans.
fn money_keys(w: &WorkspaceId, p: &PartnerId) -> Vec<Key> {
    let mut keys: Vec<Key> = PlanId::ALL.iter().map(|id| keys::partner_plan(p, *id)).collect();
    keys.extend([keys::workspace_customer(w), keys::partner_profile(p), keys::partner_stripe(p)]);
    keys
}

impl<T: Table> Billing<T> {
    /// The partner's terms as read: refused while it is suspended or has no usable connected
    /// account.
    fn money_terms(&self, read: &Snapshot, p: &PartnerId) -> Result<MoneyTerms, OpError> {
        let profile = super::load::partner_profile(read, p)?;
        if profile.status.is_suspended() {
            return Err(OpError::AccessDenied(domain::AccessDenied::PartnerSuspended));
        }
        let connection = self
            .usable(super::load::connection(read, p)?)
            .ok_or(OpError::Forbidden("this workspace's partner has no connected Stripe account"))?;
        Ok(MoneyTerms { profile, connection })
    }

    /// The Stripe price of `product` at `amount` a month on `account`: the one stored if it is
    /// that, else made now (with the write that stores it, for the operation's transaction).
    async fn price_for(
        &self,
        read: &Snapshot,
        p: &PartnerId,
        account: &AccountId,
        product: &str,
        name: &str,
        amount: Money,
    ) -> Result<(PriceId, Option<Write>), OpError> {
        let key = plan_billing::stripe_price(p, product);
        let stored = read.get(&key).map(plan_billing::stripe_price_from).transpose()?;
        if let Some(s) = stored.filter(|s| &s.account == account && s.amount == amount) {
            return Ok((s.price_id, None));
        }
        let spec = PriceSpec {
            product: product.to_owned(),
            product_name: name.to_owned(),
            unit_amount: amount,
            metadata: Metadata::new().with(metadata::PARTNER, p.as_str()).map_err(internal)?,
        };
        let stripe =
            stripe_key(format!("price:{account}:{product}:{}:{}", amount.currency().code(), amount.amount_minor()))?;
        let price_id = self
            .payments()?
            .gateway()?
            .create_price(Account::Connected(account), &stripe, &spec)
            .await
            .map_err(|e| stripe_error("prices.create", e))?;
        let record = StripePrice { account: account.clone(), product: product.to_owned(), amount, price_id };
        let write = Write::Put { item: plan_billing::stripe_price_item(&key, &record), condition: Condition::Always };
        Ok((record.price_id, Some(write)))
    }

    /// Charges `prorated` now on its own invoice of the subscription; nothing for a zero amount.
    /// A declined card is a refusal, with nothing written (the invoice is voided by Stripe's side
    /// of the call).
    async fn charge_now(
        &self,
        to: Payer<'_>,
        prorated: ProratedMoney,
        description: String,
        metadata: Metadata,
        key: &str,
    ) -> Result<ChargedNow, OpError> {
        let Payer { account, customer, subscription } = to;
        if prorated.amount.is_zero() {
            return Ok(ChargedNow { prorated, invoice: None });
        }
        let charge = InvoiceCharge {
            customer: customer.clone(),
            subscription: subscription.clone(),
            amount: prorated.amount,
            description,
            metadata,
        };
        let outcome = self
            .payments()?
            .gateway()?
            .charge_invoice(Account::Connected(account), &stripe_key(format!("{key}:charge"))?, &charge)
            .await
            .map_err(|e| stripe_error("invoices.pay", e))?;
        match outcome {
            InvoiceOutcome::Paid { invoice } => Ok(ChargedNow { prorated, invoice: Some(invoice) }),
            InvoiceOutcome::Declined { code, .. } => Err(OpError::PaymentDeclined { code }),
        }
    }

    /// `POST /workspace/subscription`: a Checkout Session in subscription mode for one of the
    /// partner's plans, on its connected account. The plan starts when Stripe says the
    /// subscription is paid ([`Billing::sync_subscription`]).
    pub async fn start_subscription(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        plan: PlanId,
        m: Mutation<'_, SubscriptionCheckout>,
    ) -> Replied {
        let product = plan_product(plan);
        let needed = |p: &PartnerId| {
            let mut keys = money_keys(w, p);
            keys.push(plan_billing::stripe_price(p, &product));
            keys
        };
        let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
        let payments = self.payments()?;
        let MoneyTerms { profile, connection } = self.money_terms(&read, &ws.partner)?;
        if ws.subscription.is_some() {
            return Err(OpError::AlreadyExists("subscription"));
        }
        let (Some(success_url), Some(cancel_url)) = (profile.settings.success_url, profile.settings.cancel_url) else {
            return Err(OpError::Forbidden(
                "this workspace's partner has not set its checkout success and cancel URLs",
            ));
        };
        let terms = super::load::plan(&read, &ws.partner, plan)?;
        terms.monthly_price.check_chargeable().map_err(|e| OpError::invalid("plan", e))?;
        let account = &connection.account;
        let customer_read = self.customer_read(w, account, read.get(&keys::workspace_customer(w))).await?;
        let (customer, moved) = self.workspace_customer(&ws, account, &customer_read, payments).await?;
        let (price, price_write) =
            self.price_for(&read, &ws.partner, account, &product, &terms.label, terms.monthly_price).await?;
        let session = NewSubscriptionCheckout {
            customer,
            price,
            client_reference_id: ws.id.as_str().to_owned(),
            metadata: meta(&ws, &[(PLAN_META, plan.as_str())])?,
            success_url,
            cancel_url,
        };
        let key = stripe_key(format!("subscribe:{}:{}", ws.id, m.key().fingerprint()))?;
        let created = payments
            .gateway()?
            .create_subscription_checkout(Account::Connected(account), &key, &session)
            .await
            .map_err(|e| stripe_error("checkout.sessions.create", e))?;
        tracing::info!(workspace = %ws.id, checkout = %created.id, plan = plan.as_str(), "subscription checkout created");
        let writes = moved.into_iter().chain(price_write).collect();
        let reply = m.answer(&SubscriptionCheckout { plan, url: created.url, expires_at: created.expires_at });
        self.commit(m.key(), writes, reply, |_| OpError::Conflict).await
    }

    /// `GET /workspace/plans`: the partner's plans, with what choosing each would do now.
    pub async fn plan_offers(&self, ws: &Workspace) -> Result<PlanOffers, OpError> {
        let keys: Vec<Key> = PlanId::ALL.iter().map(|id| keys::partner_plan(&ws.partner, *id)).collect();
        let items = self.store.get_many(&keys).await?;
        let today = self.clock.now().date();
        let sub = ws.subscription.as_ref();
        let cycle = sub.map(|_| cycle_of(ws, today)).transpose()?;
        let mut plans = Vec::new();
        for (id, item) in PlanId::ALL.into_iter().zip(items) {
            let plan = item.as_ref().map(records::plan_from).transpose()?.unwrap_or_else(|| Plan::default_for(id));
            // A plan priced in another currency than the subscription's can't be chosen.
            let change = match (sub, &cycle) {
                (Some(s), Some(cycle)) if id != ws.plan => plan_change(ws.plan, s.plan_price, &plan, cycle, today).ok(),
                _ => None,
            };
            let next = sub.is_some_and(|s| s.next_plan == Some(id));
            plans.push(PlanOffer { plan, current: id == ws.plan, next, change });
        }
        Ok(PlanOffers { plans, subscription: ws.subscription.clone() })
    }

    /// `POST /workspace/plan` (the customer) and `PUT /partner/workspaces/{id}/plan` (its
    /// partner): a change of plan. Billed in money when the workspace is subscribed: an upgrade
    /// charges the difference for the rest of the cycle now and applies at once (a paused
    /// workspace the new limits cover resumes in the same answer); a downgrade is billed from the
    /// next invoice and applies from the next cycle; choosing the current plan again takes back a
    /// downgrade still to come. A workspace not subscribed: its partner changes its plan, and the
    /// workspace itself may not (it has nothing to pay with).
    pub async fn change_plan(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        to: PlanId,
        m: Mutation<'_, PlanChanged>,
    ) -> Replied {
        let product = plan_product(to);
        let needed = |p: &PartnerId| {
            let mut keys = money_keys(w, p);
            keys.push(plan_billing::stripe_price(p, &product));
            keys
        };
        for _ in 0..MAX_OP_ATTEMPTS {
            let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
            let target = super::load::plan(&read, &ws.partner, to)?;
            let today = self.clock.now().date();
            let decided = match &ws.subscription {
                None if matches!(asker, Asker::Partner(_)) => {
                    let mut after = ws.clone();
                    after.plan = to;
                    Decided { ws: after, charged: None, effective: today, extra: vec![] }
                }
                None => {
                    return Err(OpError::Forbidden(
                        "this workspace's plan is not billed: subscribe to a plan first (POST /workspace/subscription)",
                    ));
                }
                Some(sub) => {
                    let request = m.key().fingerprint();
                    self.change_billed_plan(&ws, sub, &read, &target, today, &request).await?
                }
            };
            let Decided { ws: mut after, charged, effective, mut extra } = decided;
            let plan = super::load::plan(&read, &after.partner, after.plan)?;
            let now = self.clock.now();
            let (limits, mut writes) = settle(&ws, &mut after, &plan, now).map_err(internal)?;
            writes.append(&mut extra);
            if to != ws.plan {
                let data = json!({ "from": ws.plan.as_str(), "to": to.as_str(), "effective": effective.to_string() });
                writes.push(event_write(&ws.partner, w, PartnerEventKind::PlanChanged, data, now));
            }
            let outcome = PlanChanged {
                from: ws.plan,
                to,
                charged,
                effective,
                after: WorkspaceState { workspace: after, limits },
            };
            let reply = m.answer(&outcome);
            if let Some(reply) = self.commit_change(m.key(), now, writes, reply).await? {
                return Ok(reply);
            }
        }
        Err(OpError::Conflict)
    }

    /// The Stripe side of a subscribed workspace's change of plan, and the workspace after it.
    async fn change_billed_plan(
        &self,
        ws: &Workspace,
        sub: &PlanSubscription,
        read: &Snapshot,
        target: &Plan,
        today: Date,
        request: &str,
    ) -> Result<Decided, OpError> {
        if !matches!(sub.payment, PlanPayment::Paid) {
            return Err(OpError::Forbidden("the plan's last invoice is unpaid: pay it before changing plans"));
        }
        let MoneyTerms { connection, .. } = self.money_terms(read, &ws.partner)?;
        let account = &connection.account;
        let customer = self.billed_customer(read, ws, account)?;
        let cycle = cycle_of(ws, today)?;
        let key = stripe_change_key("plan", ws, request, &format!("{}:{today}", target.id.as_str()));
        let (price, price_write) = self
            .price_for(read, &ws.partner, account, &plan_product(target.id), &target.label, target.monthly_price)
            .await?;
        let move_item = |price: PriceId| SubscriptionChange {
            items: vec![ItemChange::Set { item: sub.plan_item.clone(), price: Some(price), quantity: 1 }],
            cancel_at_period_end: None,
        };
        let gateway = self.payments()?.gateway()?;
        let mut after = ws.clone();
        let mut billed = sub.clone();
        let (charged, effective) = if target.id == ws.plan {
            // Back to the plan it is on: the downgrade it chose is taken back.
            if sub.next_plan.is_none() {
                return Err(OpError::invalid("plan", domain::PlanChangeError::SamePlan));
            }
            billed.next_plan = None;
            billed.plan_price = target.monthly_price;
            (None, today)
        } else {
            match plan_change(ws.plan, sub.plan_price, target, &cycle, today)
                .map_err(|e| OpError::invalid("plan", e))?
            {
                PlanChange::Upgrade { charge } => {
                    let text = format!(
                        "{} for the rest of the cycle, {} of {} days",
                        target.label, charge.days_remaining, charge.days_in_cycle
                    );
                    let meta = meta(ws, &[(PLAN_META, target.id.as_str())])?;
                    let payer = Payer { account, customer: &customer, subscription: &sub.id };
                    let charged = self.charge_now(payer, charge, text, meta, &key).await?;
                    after.plan = target.id;
                    billed.plan_price = target.monthly_price;
                    billed.next_plan = None;
                    (Some(charged), today)
                }
                PlanChange::Downgrade { from } => {
                    billed.next_plan = Some(target.id);
                    (None, from)
                }
            }
        };
        gateway
            .update_subscription(
                Account::Connected(account),
                &stripe_key(format!("{key}:items"))?,
                &sub.id,
                &move_item(price),
            )
            .await
            .map_err(|e| stripe_error("subscriptions.update", e))?;
        after.subscription = Some(billed);
        Ok(Decided { ws: after, charged, effective, extra: price_write.into_iter().collect() })
    }

    /// Workspace `w` and `keys` of its partner in one read, for what decides without a request
    /// (a Stripe event, a pass); the partner is the one this process saw it with, else `hint`,
    /// else read first (as is one that turns out wrong). `None`: there is no such workspace.
    async fn workspace_with(
        &self,
        w: &WorkspaceId,
        hint: Option<PartnerId>,
        keys: impl Fn(&PartnerId) -> Vec<Key>,
    ) -> Result<Option<(Workspace, Snapshot)>, OpError> {
        let mut partner = match self.known_partner(w).or(hint) {
            Some(p) => p,
            None => match self.workspace(w).await {
                Ok(ws) => ws.partner,
                Err(OpError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        // At most twice: a partner that was wrong is corrected by the first read.
        for _ in 0..2 {
            let mut all = vec![keys::workspace_profile(w)];
            all.extend(keys(&partner));
            let read = self.store.snapshot(&all).await?;
            let Some(item) = read.get(&keys::workspace_profile(w)) else { return Ok(None) };
            let ws = records::workspace_from(item)?;
            if ws.partner == partner {
                self.remember_partner(&ws);
                return Ok(Some((ws, read)));
            }
            partner = ws.partner;
        }
        Err(OpError::Conflict)
    }

    /// Commits a change of a workspace (its writes, `reply` with the request's idempotency
    /// record): the reply to send, or `None` when the workspace moved under it and the change is
    /// decided again (its Stripe calls replay under their keys).
    async fn commit_change(
        &self,
        key: &store::IdempotencyKey,
        now: OffsetDateTime,
        writes: Vec<Write>,
        reply: Reply,
    ) -> Result<Option<Reply>, OpError> {
        match self.store.commit(key, now, writes, &reply.to_stored()).await {
            Ok(store::Committed::Applied) => Ok(Some(reply)),
            Ok(store::Committed::Replayed { response }) => replayed(response).map(Some),
            Ok(store::Committed::KeyReused) => Err(OpError::KeyReused),
            Err(StoreError::ConditionFailed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The workspace's customer on `account`, as read: a subscribed workspace has one.
    fn billed_customer(&self, read: &Snapshot, ws: &Workspace, account: &AccountId) -> Result<CustomerId, OpError> {
        let slot = read.get(&keys::workspace_customer(&ws.id)).map(records::customer_slot_from).transpose()?;
        slot.and_then(|s| s.customer)
            .filter(|c| &c.account == account)
            .map(|c| c.customer)
            .ok_or(OpError::Forbidden("this workspace's customer is not on its partner's connected Stripe account"))
    }

    /// `POST /workspace/subscription/addons`: an add-on on the plan's bill (its partner sells it
    /// in money, with credit billing off). The rest of the cycle is charged now, by the published
    /// rule; from the next invoice the add-on's full price is on the plan's bill.
    pub async fn add_billed_addon(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        code: AddonCode,
        quantity: u32,
        m: Mutation<'_, AddonBilled>,
    ) -> Replied {
        let product = addon_product(code);
        let needed = |p: &PartnerId| {
            let mut keys = money_keys(w, p);
            keys.extend([keys::partner_addon(p, code), plan_billing::stripe_price(p, &product)]);
            keys.extend(keys::accrued_all(p));
            keys.push(keys::partner_billing(p));
            keys.push(keys::wallet(&domain::WalletId::Partner(p.clone())));
            keys
        };
        for _ in 0..MAX_OP_ATTEMPTS {
            let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
            let MoneyTerms { profile, connection } = self.money_terms(&read, &ws.partner)?;
            if profile.settings.credit_billing {
                return Err(OpError::Forbidden(
                    "this workspace's partner sells add-ons for points: buy it with POST /workspace/addons",
                ));
            }
            let Some(sub) = ws.subscription.clone() else {
                return Err(OpError::Forbidden(
                    "this workspace's plan is not billed: subscribe to a plan first (POST /workspace/subscription)",
                ));
            };
            if !matches!(sub.payment, PlanPayment::Paid) {
                return Err(OpError::Forbidden("the plan's last invoice is unpaid: pay it before buying add-ons"));
            }
            let offer = super::load::partner_addon(&read, &ws.partner, code)?;
            let unit_price = match offer.price {
                Some(p) if offer.enabled => p,
                _ => return Err(OpError::invalid("addon", "this add-on is not offered")),
            };
            if unit_price.currency() != sub.plan_price.currency() {
                return Err(OpError::invalid("addon", "this add-on is priced in another currency than the plan"));
            }
            super::usage::partner_may_spend(&read, &ws.partner)?;
            room_for_addon(&ws.addons).map_err(OpError::AddonLimit)?;
            let now = self.clock.now();
            let cycle = cycle_of(&ws, now.date())?;
            let prorated =
                prorate_money(unit_price, quantity, &cycle, now.date()).map_err(|e| OpError::invalid("quantity", e))?;
            let account = &connection.account;
            let customer = self.billed_customer(&read, &ws, account)?;
            let (price, price_write) =
                self.price_for(&read, &ws.partner, account, &product, &offer.label, unit_price).await?;
            let change = format!("{}x{quantity}:{}", code.as_str(), now.date());
            let key = stripe_change_key("addon", &ws, &m.key().fingerprint(), &change);
            let text =
                format!("{} x{quantity}, {} of {} days", offer.label, prorated.days_remaining, prorated.days_in_cycle);
            let meta = meta(&ws, &[("addon", code.as_str())])?;
            let payer = Payer { account, customer: &customer, subscription: &sub.id };
            let charged = self.charge_now(payer, prorated, text, meta.clone(), &key).await?;
            // Stripe holds one item per price: more of an add-on at the same price is more of
            // its item's quantity.
            let (shared, held) = sharing(&ws, code, unit_price);
            let item = match shared {
                Some(item) => ItemChange::Set { item, price: Some(price), quantity: held.saturating_add(quantity) },
                None => ItemChange::Add { price, quantity, metadata: meta },
            };
            let change = SubscriptionChange { items: vec![item], cancel_at_period_end: None };
            let updated = self
                .payments()?
                .gateway()?
                .update_subscription(
                    Account::Connected(account),
                    &stripe_key(format!("{key}:items"))?,
                    &sub.id,
                    &change,
                )
                .await
                .map_err(|e| stripe_error("subscriptions.update", e))?;
            let item = updated
                .items
                .iter()
                .rev()
                .find(|i| i.metadata.get(metadata::WORKSPACE) == Some(w.as_str()) && i.product == product)
                .ok_or_else(|| internal("the subscription does not hold the add-on's item after adding it"))?;
            let addon = WorkspaceAddon {
                id: AddonId::generate(),
                code,
                quantity,
                unit_points: Points::ZERO,
                status: AddonStatus::Active,
                period_end: cycle.end(),
                created_at: now,
                billed: Some(BilledAddon { item: item.id.clone(), unit_price }),
            };
            let mut after = ws.clone();
            after.addons.push(addon.clone());
            let plan = super::load::plan(&read, &ws.partner, ws.plan)?;
            let (limits, mut writes) =
                settle(&ws, &mut after, &plan, now).map_err(|e| OpError::invalid("quantity", e))?;
            // The partner owes the platform the add-on's cost price for the rest of the cycle,
            // as for an add-on bought with points.
            let cost = super::usage::addon_cost(code, quantity, &cycle, now.date())?;
            let accrual = records::Accrual {
                partner: ws.partner.clone(),
                workspace: w.clone(),
                source: format!("addon_purchase:{}", code.as_str()),
                reference: format!("addon#{w}#{}", addon.id),
                amount: cost,
                quantity: None,
                created_at: now,
                counted: true,
            };
            writes.extend(price_write);
            writes.extend(super::usage::accrual_write(&accrual));
            let outcome = AddonBilled {
                addon: LabelledAddon { addon, label: offer.label.clone() },
                charged,
                cycle,
                after: WorkspaceState { workspace: after, limits },
            };
            let reply = m.answer(&outcome);
            if let Some(reply) = self.commit_change(m.key(), now, writes, reply).await? {
                return Ok(reply);
            }
        }
        Err(OpError::Conflict)
    }

    /// `DELETE /workspace/subscription/addons/{id}` (the workspace cancels: it counts until the
    /// cycle ends) and `DELETE /partner/workspaces/{id}/subscription/addons/{addon_id}` (its
    /// partner removes it now). Either way it is off the subscription at once, so off the next
    /// invoice; nothing is refunded.
    pub async fn end_billed_addon(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        id: &AddonId,
        m: Mutation<'_, WorkspaceState>,
    ) -> Replied {
        let needed = |p: &PartnerId| {
            let mut keys = money_keys(w, p);
            keys.push(keys::workspace_addon(w, id));
            keys
        };
        let by_partner = matches!(asker, Asker::Partner(_));
        for _ in 0..MAX_OP_ATTEMPTS {
            let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
            let Some(held) = ws.addons.iter().find(|a| &a.id == id).cloned() else {
                return match read.get(&keys::workspace_addon(w, id)) {
                    Some(_) => Err(OpError::invalid("addon_id", "the add-on has already ended")),
                    None => Err(OpError::NotFound("add-on")),
                };
            };
            let Some(billed) = held.billed.clone() else {
                return Err(OpError::invalid(
                    "addon_id",
                    "this add-on is paid with points: end it on the add-ons route",
                ));
            };
            if held.status == AddonStatus::Cancelling && !by_partner {
                return Err(OpError::invalid("addon_id", "the add-on is already cancelling"));
            }
            let sub = ws.subscription.clone().ok_or_else(|| internal("a billed add-on without a subscription"))?;
            let MoneyTerms { connection, .. } = self.money_terms(&read, &ws.partner)?;
            if held.status == AddonStatus::Active {
                // Its item may bill other add-ons of the same price: then only its quantity goes.
                let (_, on_item) = sharing(&ws, held.code, billed.unit_price);
                let rest = on_item.saturating_sub(held.quantity);
                let item = if rest > 0 {
                    ItemChange::Set { item: billed.item.clone(), price: None, quantity: rest }
                } else {
                    ItemChange::Remove { item: billed.item.clone() }
                };
                let change = SubscriptionChange { items: vec![item], cancel_at_period_end: None };
                let key = stripe_key(format!("addon-end:{}:{}", ws.id, id))?;
                match self
                    .payments()?
                    .gateway()?
                    .update_subscription(Account::Connected(&connection.account), &key, &sub.id, &change)
                    .await
                {
                    Ok(_) => {}
                    // Already off the subscription (removed in Stripe's dashboard): nothing to bill.
                    Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "resource_missing" => {}
                    Err(e) => return Err(stripe_error("subscriptions.update", e)),
                }
            }
            let mut after = ws.clone();
            let mut extra = vec![];
            if by_partner {
                after.addons.retain(|a| &a.id != id);
                extra.push(history_write(w, &WorkspaceAddon { status: AddonStatus::Removed, ..held }));
            } else if let Some(a) = after.addons.iter_mut().find(|a| &a.id == id) {
                a.status = AddonStatus::Cancelling;
            }
            let plan = super::load::plan(&read, &ws.partner, ws.plan)?;
            let now = self.clock.now();
            let (limits, mut writes) = settle(&ws, &mut after, &plan, now).map_err(internal)?;
            writes.append(&mut extra);
            let reply = m.answer(&WorkspaceState { workspace: after, limits });
            if let Some(reply) = self.commit_change(m.key(), now, writes, reply).await? {
                return Ok(reply);
            }
        }
        Err(OpError::Conflict)
    }

    /// `DELETE /workspace/subscription`: the subscription ends when the cycle paid for does
    /// (Stripe's `cancel_at_period_end`); the workspace keeps its plan until then, and then falls
    /// back to the starter plan. Cancelling one that ends already answers it as it is.
    pub async fn cancel_subscription(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        m: Mutation<'_, SubscriptionDetails>,
    ) -> Replied {
        for _ in 0..MAX_OP_ATTEMPTS {
            let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), |p| money_keys(w, p)).await?);
            let sub = ws.subscription.clone().ok_or(OpError::NotFound("subscription"))?;
            let MoneyTerms { connection, .. } = self.money_terms(&read, &ws.partner)?;
            let change = SubscriptionChange { items: vec![], cancel_at_period_end: Some(true) };
            let key = stripe_key(format!("cancel:{}:{}", ws.id, sub.id))?;
            self.payments()?
                .gateway()?
                .update_subscription(Account::Connected(&connection.account), &key, &sub.id, &change)
                .await
                .map_err(|e| stripe_error("subscriptions.update", e))?;
            let mut after = ws.clone();
            after.subscription = Some(PlanSubscription { cancel_at_cycle_end: true, ..sub });
            after.version = ws.version + 1;
            let details = self.details_of(&read, &after)?;
            let writes = vec![workspace_put(&after, ws.version)];
            let reply = m.answer(&details);
            if let Some(reply) = self.commit_change(m.key(), self.clock.now(), writes, reply).await? {
                return Ok(reply);
            }
        }
        Err(OpError::Conflict)
    }

    /// A subscribed workspace's subscription and its next invoice.
    pub async fn subscription_details(&self, ws: &Workspace) -> Result<SubscriptionDetails, OpError> {
        ws.subscription.as_ref().ok_or(OpError::NotFound("subscription"))?;
        let keys: Vec<Key> = PlanId::ALL.iter().map(|id| keys::partner_plan(&ws.partner, *id)).collect();
        let read = self.store.snapshot(&keys).await?;
        self.details_of(&read, ws)
    }

    /// [`SubscriptionDetails`] of `ws` with its partner's plans as read.
    fn details_of(&self, read: &Snapshot, ws: &Workspace) -> Result<SubscriptionDetails, OpError> {
        let sub = ws.subscription.clone().ok_or(OpError::NotFound("subscription"))?;
        let next_plan = super::load::plan(read, &ws.partner, sub.next_plan.unwrap_or(ws.plan))?;
        let next_invoice = if sub.cancel_at_cycle_end {
            None
        } else {
            let plan_price = if sub.next_plan.is_some() { next_plan.monthly_price } else { sub.plan_price };
            let mut total = plan_price;
            for a in ws.addons.iter().filter(|a| a.status == AddonStatus::Active) {
                if let Some(b) = &a.billed {
                    let line = b.unit_price.checked_mul(a.quantity).map_err(internal)?;
                    total = total.checked_add(line).map_err(internal)?;
                }
            }
            let on = sub.cycle_end.next_day().ok_or_else(|| internal("no day after the cycle"))?;
            Some((on, total))
        };
        Ok(SubscriptionDetails { workspace: ws.clone(), subscription: sub, next_plan, next_invoice })
    }

    /// A page of a subscribed workspace's invoices, newest first, as Stripe holds them.
    pub async fn invoices(
        &self,
        ws: &Workspace,
        limit: u8,
        after: Option<&InvoiceId>,
    ) -> Result<stripe_gateway::subscription::InvoicePage, OpError> {
        let read = self.store.snapshot(&[keys::partner_stripe(&ws.partner), keys::workspace_customer(&ws.id)]).await?;
        let connection =
            self.usable(super::load::connection(&read, &ws.partner)?).ok_or(OpError::NotFound("subscription"))?;
        let customer = read
            .get(&keys::workspace_customer(&ws.id))
            .map(records::customer_slot_from)
            .transpose()?
            .and_then(|s| s.customer)
            .filter(|c| c.account == connection.account)
            .ok_or(OpError::NotFound("subscription"))?;
        match self
            .payments()?
            .gateway()?
            .list_invoices(Account::Connected(&connection.account), &customer.customer, limit, after)
            .await
        {
            Ok(page) => Ok(page),
            // A cursor naming no invoice of the account's.
            Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "resource_missing" && after.is_some() => {
                Err(OpError::invalid("cursor", "not a cursor of this listing"))
            }
            Err(e) => Err(stripe_error("invoices.list", e)),
        }
    }

    /// What every subscription event does: reads the subscription as Stripe holds it now, and
    /// makes its workspace agree (see the module doc). Ignored when it is no workspace's of this
    /// account (another integration's, or a workspace's customer that is not this one).
    pub(super) async fn sync_subscription(
        &self,
        event: &Event,
        id: &SubscriptionId,
    ) -> Result<WebhookOutcome, OpError> {
        let Some(account) = event.account.as_ref() else {
            return Ok(WebhookOutcome::Ignored);
        };
        let sub = match self.payments()?.gateway()?.retrieve_subscription(Account::Connected(account), id).await {
            Ok(s) => s,
            Err(GatewayError::InvalidRequest { code: Some(c), .. }) if c == "resource_missing" => {
                tracing::warn!(subscription = %id, %account, "a subscription Stripe does not know");
                return Ok(WebhookOutcome::Ignored);
            }
            Err(e) => return Err(stripe_error("subscriptions.retrieve", e)),
        };
        let Some(w) = sub.metadata.get(metadata::WORKSPACE).and_then(|w| WorkspaceId::parse(w).ok()) else {
            return Ok(WebhookOutcome::Ignored);
        };
        let hint = sub.metadata.get(metadata::PARTNER).and_then(|p| PartnerId::parse(p).ok());
        for _ in 0..MAX_OP_ATTEMPTS {
            let Some((ws, read)) = self.workspace_with(&w, hint.clone(), |p| money_keys(&w, p)).await? else {
                return Ok(WebhookOutcome::Ignored);
            };
            let connection = super::load::connection(&read, &ws.partner)?;
            let customer = read.get(&keys::workspace_customer(&w)).map(records::customer_slot_from).transpose()?;
            let ours = connection.is_some_and(|c| &c.account == account)
                && customer
                    .and_then(|s| s.customer)
                    .is_some_and(|c| &c.account == account && c.customer == sub.customer);
            if !ours {
                tracing::warn!(subscription = %sub.id, workspace = %w, %account, "a subscription that is not its workspace's");
                return Ok(WebhookOutcome::Ignored);
            }
            let profile = super::load::partner_profile(&read, &ws.partner)?;
            let now = self.clock.now();
            let Some(agreed) = agree(&ws, &sub, profile.settings.grace_days, now.date())? else {
                return Ok(WebhookOutcome::Unchanged);
            };
            let Agreed { ws: mut after, events, marks } = agreed;
            let plan = super::load::plan(&read, &ws.partner, after.plan)?;
            let (_, mut writes) = settle(&ws, &mut after, &plan, now).map_err(internal)?;
            writes.extend(marks);
            for (kind, data) in events {
                writes.push(event_write(&ws.partner, &w, kind, data, now));
            }
            match self.store.write(writes).await {
                Ok(()) => {
                    tracing::info!(subscription = %sub.id, workspace = %w, status = sub.status.as_str(), "subscription applied");
                    return Ok(WebhookOutcome::SubscriptionApplied);
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// Pauses the workspaces whose plan is still unpaid when their grace days are over: the
    /// marks due today or before, oldest first, until `stop` says the deadline is near. A mark
    /// whose plan was paid (or ended) since is cleared.
    pub async fn pause_unpaid_plans(&self, stop: impl Fn() -> bool) -> Result<UnpaidRun, OpError> {
        const PAGE: usize = 100;
        let mut run = UnpaidRun::default();
        let today = self.clock.now().date();
        let mut start: Option<String> = None;
        while !stop() {
            let page = self.store.query_prefix(plan_billing::UNPAID_PK, "", start.as_deref(), PAGE).await?;
            for item in &page {
                let mark = plan_billing::unpaid_plan_from(item)?;
                if mark.pauses_on > today {
                    return Ok(run);
                }
                match self.settle_unpaid(&mark, today).await {
                    Ok(true) => run.paused += 1,
                    Ok(false) => run.cleared += 1,
                    Err(e) => {
                        tracing::error!(workspace = %mark.workspace, error = %super::error_chain(&e), "unpaid plan not settled");
                        run.failed += 1;
                    }
                }
                if stop() {
                    return Ok(run);
                }
            }
            if page.len() < PAGE {
                return Ok(run);
            }
            start = page.last().and_then(|i| i.key()).map(|k| k.sk);
        }
        Ok(run)
    }

    /// One mark of the grace pass: `true` if it paused the workspace.
    async fn settle_unpaid(&self, mark: &UnpaidPlan, today: Date) -> Result<bool, OpError> {
        let mark_key = plan_billing::unpaid_plan(mark.pauses_on, &mark.workspace);
        let clear = Write::Delete { key: mark_key.clone(), condition: Condition::Always };
        let partner_keys = |p: &PartnerId| {
            let mut keys: Vec<Key> = PlanId::ALL.iter().map(|id| keys::partner_plan(p, *id)).collect();
            keys.push(keys::partner_profile(p));
            keys
        };
        for _ in 0..MAX_OP_ATTEMPTS {
            let Some((ws, read)) = self.workspace_with(&mark.workspace, None, partner_keys).await? else {
                self.store.write(vec![clear]).await?;
                return Ok(false);
            };
            let profile = read.get(&keys::partner_profile(&ws.partner));
            let grace = profile.map(records::partner_profile_from).transpose()?.map_or(0, |p| p.settings.grace_days);
            let due = ws.subscription.as_ref().and_then(|s| s.payment.pauses_on(grace));
            let Some(sub) = ws.subscription.clone().filter(|_| due.is_some_and(|d| d <= today)) else {
                self.store.write(vec![clear]).await?;
                return Ok(false);
            };
            let PlanPayment::PastDue { since } = sub.payment else {
                self.store.write(vec![clear]).await?;
                return Ok(false);
            };
            let mut after = ws.clone();
            after.subscription = Some(PlanSubscription { payment: PlanPayment::Unpaid { since }, ..sub });
            let plan = super::load::plan(&read, &ws.partner, ws.plan)?;
            let (_, mut writes) = settle(&ws, &mut after, &plan, self.clock.now()).map_err(internal)?;
            writes.push(Write::Delete { key: mark_key.clone(), condition: Condition::Always });
            match self.store.write(writes).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }
}

/// The subscription item that bills `ws`'s active add-ons of `code` at `unit_price`, if it holds
/// any, and their quantity in all.
fn sharing(
    ws: &Workspace,
    code: AddonCode,
    unit_price: Money,
) -> (Option<domain::stripe_ids::SubscriptionItemId>, u32) {
    let mut item = None;
    let mut quantity = 0_u32;
    for a in ws.addons.iter().filter(|a| a.code == code && a.status == AddonStatus::Active) {
        if let Some(b) = a.billed.as_ref().filter(|b| b.unit_price == unit_price) {
            item = Some(b.item.clone());
            quantity = quantity.saturating_add(a.quantity);
        }
    }
    (item, quantity)
}

/// A subscribed workspace after a change, and what else the change writes.
struct Decided {
    ws: Workspace,
    charged: Option<ChargedNow>,
    effective: Date,
    extra: Vec<Write>,
}

/// The workspace agreeing with its subscription, the events that says, and the grace pass's
/// mark to write or clear.
struct Agreed {
    ws: Workspace,
    events: Vec<(PartnerEventKind, serde_json::Value)>,
    marks: Vec<Write>,
}

/// What `ws` becomes to agree with `sub` as Stripe holds it on `today` (its status is evaluated
/// by the caller); `None` when it agrees already. Pure: every event about the subscription comes
/// to this, in whatever order.
fn agree(ws: &Workspace, sub: &Subscription, grace_days: u32, today: Date) -> Result<Option<Agreed>, OpError> {
    let held = ws.subscription.as_ref().filter(|s| s.id == sub.id);
    if ws.subscription.is_some() && held.is_none() {
        // Another subscription of the same workspace (a second Checkout completed): the first
        // one stays the workspace's. Cancelling the second is the partner's call, in Stripe.
        tracing::warn!(workspace = %ws.id, subscription = %sub.id, "a second subscription of a subscribed workspace");
        return Ok(None);
    }
    let mut after = ws.clone();
    let mut events = vec![];
    let mut marks = vec![];
    let live = matches!(
        sub.status,
        SubscriptionStatus::Active
            | SubscriptionStatus::Trialing
            | SubscriptionStatus::PastDue
            | SubscriptionStatus::Unpaid
            | SubscriptionStatus::Paused
    );
    let ended = matches!(sub.status, SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired);
    if ended {
        let Some(held) = held else { return Ok(None) };
        after.subscription = None;
        after.plan = FALLBACK_PLAN;
        for a in after.addons.iter().filter(|a| a.billed.is_some()) {
            marks.push(history_write(&ws.id, &WorkspaceAddon { status: AddonStatus::Removed, ..a.clone() }));
        }
        after.addons.retain(|a| a.billed.is_none());
        if let Some(due) = held.payment.pauses_on(grace_days) {
            marks.push(Write::Delete { key: plan_billing::unpaid_plan(due, &ws.id), condition: Condition::Always });
        }
        events.push((PartnerEventKind::SubscriptionEnded, json!({ "subscription": sub.id.as_str() })));
        return Ok(Some(Agreed { ws: after, events, marks }));
    }
    if !live {
        // Incomplete: its first invoice is not paid yet; nothing starts.
        return Ok(None);
    }
    let Some(plan_item) = sub.items.iter().find(|i| plan_of_product(&i.product).is_some()) else {
        tracing::warn!(subscription = %sub.id, "a subscription without a plan of ours");
        return Ok(None);
    };
    let cycle_start = sub.current_period_start.date();
    let cycle_end =
        sub.current_period_end.date().previous_day().ok_or_else(|| internal("a period ending at day one"))?;
    let payment = match (sub.status, held.map(|h| h.payment)) {
        (SubscriptionStatus::Active | SubscriptionStatus::Trialing, _) => PlanPayment::Paid,
        (_, Some(p @ (PlanPayment::PastDue { .. } | PlanPayment::Unpaid { .. }))) => p,
        _ => PlanPayment::PastDue { since: today },
    };
    // No grace days: unpaid at once; else the grace pass pauses it when they are over.
    let payment = match payment {
        PlanPayment::PastDue { since } if payment.pauses_on(grace_days).is_some_and(|d| d <= today) => {
            PlanPayment::Unpaid { since }
        }
        p => p,
    };
    let new_cycle = held.is_some_and(|h| cycle_start > h.cycle_start);
    let (plan, plan_price, next_plan) = match held {
        None => (plan_of_product(&plan_item.product).unwrap_or(ws.plan), plan_item.unit_amount, None),
        Some(h) => match h.next_plan {
            Some(next) if new_cycle => (next, plan_item.unit_amount, None),
            _ => (ws.plan, h.plan_price, h.next_plan),
        },
    };
    let anchor = held.map_or_else(|| AnchorDay::of(sub.billing_cycle_anchor.date()), |h| h.anchor);
    if held.is_none() && !after.addons.iter().any(|a| a.billed.is_none()) {
        // Its cycles become the subscription's. One that holds add-ons paid with points keeps
        // its own cycles for their renewals: moving them would renew those add-ons for a cycle
        // that leaves days of the old one unbilled, or bills some twice.
        after.anchor = anchor;
        after.renews_on = cycle_end.next_day().ok_or_else(|| internal("no day after the cycle"))?;
    }
    if held.is_none() {
        events.push((
            PartnerEventKind::SubscriptionStarted,
            json!({
                "subscription": sub.id.as_str(), "plan": plan.as_str(),
            }),
        ));
    }
    if plan != ws.plan && held.is_some() {
        events.push((
            PartnerEventKind::PlanChanged,
            json!({
                "from": ws.plan.as_str(), "to": plan.as_str(), "effective": cycle_start.to_string(),
            }),
        ));
    }
    let was = held.map(|h| h.payment);
    match (was, payment) {
        (Some(PlanPayment::Paid) | None, PlanPayment::PastDue { since } | PlanPayment::Unpaid { since }) => {
            events.push((
                PartnerEventKind::SubscriptionPastDue,
                json!({
                    "subscription": sub.id.as_str(), "since": since.to_string(),
                }),
            ));
        }
        (Some(PlanPayment::PastDue { .. } | PlanPayment::Unpaid { .. }), PlanPayment::Paid) => {
            events.push((PartnerEventKind::SubscriptionRecovered, json!({ "subscription": sub.id.as_str() })));
        }
        _ => {}
    }
    // The grace pass's mark: written when the plan falls past due, cleared when it is paid.
    if let (PlanPayment::PastDue { .. }, Some(due)) = (payment, payment.pauses_on(grace_days))
        && !matches!(was, Some(PlanPayment::PastDue { .. }))
    {
        marks.push(Write::Put {
            item: plan_billing::unpaid_plan_item(&UnpaidPlan { workspace: ws.id.clone(), pauses_on: due }),
            condition: Condition::Always,
        });
    }
    if let (Some(was @ PlanPayment::PastDue { .. }), PlanPayment::Paid | PlanPayment::Unpaid { .. }) = (was, payment)
        && let Some(due) = was.pauses_on(grace_days)
    {
        marks.push(Write::Delete { key: plan_billing::unpaid_plan(due, &ws.id), condition: Condition::Always });
    }
    after.plan = plan;
    // The add-ons on the bill follow their items: one no longer on the subscription ends when
    // the cycle it was paid for does (cancelled) or at once (removed in Stripe's dashboard).
    let on_sub = |a: &WorkspaceAddon| a.billed.as_ref().is_some_and(|b| sub.items.iter().any(|i| i.id == b.item));
    let mut kept = vec![];
    for a in &after.addons {
        match &a.billed {
            None => kept.push(a.clone()),
            Some(_) if on_sub(a) => kept.push(WorkspaceAddon { period_end: cycle_end.max(a.period_end), ..a.clone() }),
            Some(_) if a.status == AddonStatus::Cancelling && a.period_end >= cycle_start => kept.push(a.clone()),
            Some(_) => marks.push(history_write(&ws.id, &WorkspaceAddon { status: AddonStatus::Removed, ..a.clone() })),
        }
    }
    after.addons = kept;
    after.subscription = Some(PlanSubscription {
        id: sub.id.clone(),
        plan_item: plan_item.id.clone(),
        plan_price,
        anchor,
        cycle_start,
        cycle_end,
        payment,
        cancel_at_cycle_end: sub.cancel_at_period_end,
        next_plan,
    });
    if after == *ws {
        return Ok(None);
    }
    Ok(Some(Agreed { ws: after, events, marks }))
}
