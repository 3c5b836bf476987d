//! `POST /stripe/webhook` (the Connect endpoint: the partners' connected accounts) and
//! `POST /stripe/platform-webhook` (the platform's own account: partner wallet payments): what
//! Stripe tells us, applied exactly once whatever its retries and ordering do (Stripe retries
//! for days, repeats events and keeps no order). Both run the same rules; each endpoint has its own signing secret, and an
//! event must come from the account its payment was made on (`account: None` for the platform's).
//!
//! Nothing here is keyed by the event id: two different events about one payment
//! (`checkout.session.completed` and `checkout.session.async_payment_succeeded`, or a retry of
//! either) must credit once, so every effect is keyed by the object it changes:
//!
//! - crediting: ONE wallet transaction that moves the checkout to `credited` (condition: not
//!   credited yet) and creates the payment's record `PAYMENT#pi` (condition: not there), with the
//!   idempotency record of the session. Whichever event comes first credits; the others find the
//!   checkout credited and answer 200.
//! - refunds and disputes: the payment record carries the totals refunded and disputed and the
//!   points taken back, under a version. A claw-back takes `total due - taken so far` in the same
//!   transaction that moves the version, so a repeated or stale event takes nothing.
//! - session states (awaiting payment, expired, failed) move only from the states Stripe's session
//!   moves from, so a late `expired` after `completed` changes nothing.
//!
//! What is credited is only what was stored before Stripe was asked: the checkout record, or
//! the auto top-up (partner refill) attempt in flight, with the amount paid and its currency
//! checked against it. A PaymentIntent's metadata is the payer's to write, so it only finds the
//! record. An event that matches nothing stored is logged and answered 200 `ignored` (Stripe
//! stops delivering it), with nothing written.
//!
//! A refusal (bad signature, wrong mode or account, unreadable event) is a 400 with nothing
//! written; a failure worth retrying is a 5xx (or 409), so Stripe delivers the event again.

use serde_json::json;

use domain::{
    Actor, CheckoutStatus, ClawBackCause, Currency, EntryKind, Money, Overdraft, PartnerId, Points, PointsDelta,
    WalletId, WorkspaceId, clawback_total,
};
use store::records::{self, CheckoutRecord, PaymentRecord};
use store::{
    Attr, Condition, Guard, IdempotencyKey, Outcome, Posting, StoreError, Table, WalletState, Write, keys, wallet_state,
};
use stripe_gateway::event::{
    ChargeObject, DisputeFunds, DisputeObject, Event, EventObject, PaymentIntentObject, SessionObject,
    SetupIntentObject, metadata,
};
use stripe_gateway::gateway::PaymentStatus;
use stripe_gateway::ids::{AccountId, ReceiptId};
use stripe_gateway::signature;

use super::cards::{CardOwner, Saved};
use super::{Billing, MAX_OP_ATTEMPTS, OpError, WebhookEndpoint};

/// What an event came to, as the webhook answers it (and logs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A top-up credited, with what was paid for it (the amount stored before the payment, which
    /// the payment matched): the webhook's metrics sum it per currency.
    Credited(Money),
    AlreadyCredited,
    /// A checkout moved to another state (awaiting payment, expired, failed).
    Moved(CheckoutStatus),
    /// The event changes nothing (any more): a late or repeated one.
    Unchanged,
    ClawedBack,
    /// A won dispute gave back what its claw-back took.
    GivenBack,
    /// A refund or dispute too small to take back a point's fraction: recorded, no entry.
    Recorded,
    CardSaved,
    /// A workspace made to agree with its subscription (plan, cycle, payment, add-ons).
    SubscriptionApplied,
    Deauthorized,
    /// Not about anything of ours, or a type we don't act on.
    Ignored,
}

impl WebhookOutcome {
    /// Whether applying the event changed something: for the sweep, an event the webhook had
    /// not applied.
    pub fn changed(self) -> bool {
        match self {
            WebhookOutcome::Credited(_)
            | WebhookOutcome::Moved(_)
            | WebhookOutcome::ClawedBack
            | WebhookOutcome::GivenBack
            | WebhookOutcome::Recorded
            | WebhookOutcome::CardSaved
            | WebhookOutcome::SubscriptionApplied
            | WebhookOutcome::Deauthorized => true,
            WebhookOutcome::AlreadyCredited | WebhookOutcome::Unchanged | WebhookOutcome::Ignored => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Credited(_) => "credited",
            WebhookOutcome::AlreadyCredited => "already_credited",
            WebhookOutcome::Moved(s) => s.as_str(),
            WebhookOutcome::Unchanged => "unchanged",
            WebhookOutcome::ClawedBack => "clawed_back",
            WebhookOutcome::GivenBack => "given_back",
            WebhookOutcome::Recorded => "recorded",
            WebhookOutcome::CardSaved => "card_saved",
            WebhookOutcome::SubscriptionApplied => "subscription_applied",
            WebhookOutcome::Deauthorized => "deauthorized",
            WebhookOutcome::Ignored => "ignored",
        }
    }
}

/// Scope of the idempotency records of webhook effects.
pub(super) const CREDIT_SCOPE: &str = "stripe-credit";
const CLAWBACK_SCOPE: &str = "stripe-clawback";

/// The wallet a session's metadata names: a workspace's checkout names its workspace, a
/// partner's wallet checkout its partner. A hint, checked against the checkout record.
fn wallet_of_session(s: &SessionObject) -> Option<WalletId> {
    let named = |key: &str| s.metadata.get(key).map(String::as_str);
    if let Some(w) = named(metadata::WORKSPACE).and_then(|w| WorkspaceId::parse(w).ok()) {
        return Some(WalletId::Workspace(w));
    }
    match (named(metadata::SOURCE), named(metadata::PARTNER).and_then(|p| PartnerId::parse(p).ok())) {
        (Some(super::SOURCE_PARTNER_WALLET), Some(p)) => Some(WalletId::Partner(p)),
        _ => None,
    }
}

fn refused(param: &str, message: impl ToString) -> OpError {
    OpError::invalid(param, message)
}

impl<T: Table> Billing<T> {
    /// Verifies and applies one webhook delivery to `endpoint`: `payload` is the raw body,
    /// `signature` the `Stripe-Signature` header, checked with that endpoint's secrets.
    pub async fn stripe_webhook(
        &self,
        endpoint: WebhookEndpoint,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookOutcome, OpError> {
        let payments = self.payments()?;
        let secrets = payments.webhook_secrets(endpoint)?;
        // The tolerance bounds a replay in real time, so it is checked against the real clock,
        // not the business clock (which tests and demos move through months).
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        signature::verify(payload, signature, &secrets, now).map_err(|e| refused("Stripe-Signature", e))?;
        let event = Event::parse(payload).map_err(|e| refused("body", e))?;
        self.apply_event(endpoint, &event).await
    }

    /// Applies one event as Stripe sent it to `endpoint` (or as the sweep listed it from that
    /// endpoint's account): every effect keyed by the object it changes, so applying it twice,
    /// or after a later event, changes nothing more.
    pub(super) async fn apply_event(
        &self,
        endpoint: WebhookEndpoint,
        event: &Event,
    ) -> Result<WebhookOutcome, OpError> {
        if event.livemode != self.livemode() {
            return Err(refused("livemode", "the event's mode is not this deployment's"));
        }
        // Stripe sends a Connect endpoint only events of connected accounts, and an account
        // endpoint only its own account's: an event on the wrong one is not Stripe's doing.
        match (endpoint, &event.account) {
            (WebhookEndpoint::Connect, None) => {
                return Err(refused("account", "an event on the Connect endpoint names its connected account"));
            }
            (WebhookEndpoint::Platform, Some(_)) => {
                return Err(refused("account", "the platform endpoint takes the platform account's own events"));
            }
            _ => {}
        }
        // Each kind's work is a future of its own on the heap: inline, the largest of them (a
        // credit over the DynamoDB client) would make every delivery's future that large.
        let outcome = match &event.object {
            EventObject::CheckoutSession(s) => Box::pin(self.on_session(event, s)).await?,
            EventObject::PaymentIntent(pi) => Box::pin(self.on_payment_intent(event, pi)).await?,
            EventObject::SetupIntent(si) => Box::pin(self.on_setup_intent(event, si)).await?,
            EventObject::PaymentMethod(pm) => Box::pin(self.on_payment_method(event, pm)).await?,
            EventObject::Charge(c) => Box::pin(self.on_refund(event, c)).await?,
            EventObject::Dispute(d, funds) => Box::pin(self.on_dispute(event, d, *funds)).await?,
            EventObject::Subscription(sub) => Box::pin(self.sync_subscription(event, &sub.id)).await?,
            EventObject::Invoice(invoice) => match invoice.subscription() {
                Some(id) => Box::pin(self.sync_subscription(event, id)).await?,
                None => WebhookOutcome::Ignored,
            },
            EventObject::Deauthorized => Box::pin(self.on_deauthorized(event)).await?,
            EventObject::Other => WebhookOutcome::Ignored,
        };
        let account = event.account.as_ref().map_or("", AccountId::as_str);
        tracing::info!(event = %event.id, r#type = %event.type_, account, outcome = outcome.as_str(), "Stripe event");
        Ok(outcome)
    }

    // ---- checkout sessions ----------------------------------------------------------------

    async fn on_session(&self, event: &Event, s: &SessionObject) -> Result<WebhookOutcome, OpError> {
        // A subscription's session: the subscription it made says what the workspace has.
        if s.mode.as_deref() == Some("subscription") {
            return match &s.subscription {
                Some(id) if s.payment_status == PaymentStatus::Paid => self.sync_subscription(event, id).await,
                _ => Ok(WebhookOutcome::Ignored),
            };
        }
        // The wallet the session's metadata names is read with the checkout: the checkout
        // record decides which wallet is credited, and the metadata only saves a second read
        // when it agrees.
        let hinted = wallet_of_session(s);
        let mut needed = vec![keys::checkout(&s.id)];
        needed.extend(hinted.as_ref().map(keys::wallet));
        let mut items = self.store.get_many(&needed).await?.into_iter();
        let (checkout, hinted_state) = (items.next().flatten(), items.next().flatten());
        let Some(item) = checkout else {
            // A Connect endpoint hears about every session on the partners' accounts, ours or not.
            tracing::info!(checkout = %s.id, "not a checkout of ours");
            return Ok(WebhookOutcome::Ignored);
        };
        let checkout = records::checkout_from(&item)?;
        let wallet = match hinted {
            Some(hinted) if hinted == checkout.wallet => Some(wallet_state(hinted_state.as_ref())?),
            _ => None,
        };
        note_tenant(&checkout.partner, &checkout.wallet);
        same_account(event, checkout.account.as_ref())?;
        match (event.type_.as_str(), s.payment_status) {
            ("checkout.session.completed" | "checkout.session.async_payment_succeeded", PaymentStatus::Paid) => {
                self.credit_checkout(event, &checkout, wallet, s).await
            }
            ("checkout.session.completed", _) => self.move_checkout(&checkout, CheckoutStatus::AwaitingPayment).await,
            ("checkout.session.async_payment_succeeded", _) => {
                Err(refused("data.object.payment_status", "async_payment_succeeded for a session that is not paid"))
            }
            ("checkout.session.async_payment_failed", _) => self.move_checkout(&checkout, CheckoutStatus::Failed).await,
            ("checkout.session.expired", _) => self.move_checkout(&checkout, CheckoutStatus::Expired).await,
            (other, _) => Err(OpError::Internal(format!("session event {other} routed to on_session"))),
        }
    }

    /// Credits the points the checkout promised, once for the session, in one transaction with
    /// the checkout's move to `credited` and the payment's record.
    async fn credit_checkout(
        &self,
        event: &Event,
        checkout: &CheckoutRecord,
        wallet: Option<WalletState>,
        s: &SessionObject,
    ) -> Result<WebhookOutcome, OpError> {
        if checkout.status == CheckoutStatus::Credited {
            return Ok(WebhookOutcome::AlreadyCredited);
        }
        // The checkout record says what may be credited; a session that charged anything else
        // credits nothing.
        if let Err(why) = paid_as_stored(checkout.amount, s) {
            tracing::warn!(event = %event.id, checkout = %checkout.id, wallet = %checkout.wallet, reason = %why,
                "a paid session that does not match its checkout: nothing credited");
            return Ok(WebhookOutcome::Ignored);
        }
        let payment_intent = s
            .payment_intent
            .clone()
            .ok_or_else(|| refused("data.object.payment_intent", "a paid session names its PaymentIntent"))?;
        let now = self.clock.now();
        let id = checkout.id.as_str();
        let idempotency = IdempotencyKey::new(CREDIT_SCOPE, id, id.as_bytes())
            .map_err(|_| OpError::Internal(format!("checkout id {id} can't key a credit")))?;
        let payment = PaymentRecord {
            checkout: Some(checkout.id.clone()),
            ..PaymentRecord::credited(
                payment_intent.clone(),
                checkout.wallet.clone(),
                checkout.partner.clone(),
                checkout.account.clone(),
                checkout.points,
                checkout.amount,
            )
        };
        let credited: Vec<&str> =
            CheckoutStatus::sources_of(CheckoutStatus::Credited).iter().map(|s| s.as_str()).collect();
        // The invoice Stripe made for the session (asked for at its creation) is the receipt.
        let receipt = s.invoice.clone().map(ReceiptId::Invoice);
        let mut posting = Posting {
            wallet: checkout.wallet.clone(),
            amount: PointsDelta::credit(checkout.points),
            overdraft: Overdraft::Forbid,
            kind: EntryKind::TopUp {
                payment: id.to_owned(),
                topup_option_id: checkout.topup_option_id.clone(),
                amount: checkout.amount.format_major(),
                currency: checkout.amount.currency().code().to_owned(),
                receipt: receipt.as_ref().map(ReceiptId::to_string),
            },
            actor: Actor::Stripe(event.id.clone()),
            at: now,
            idempotency,
            partner: partner_index(&checkout.wallet, &checkout.partner),
            in_partner_ledger: true,
            also: vec![
                Write::Update {
                    key: keys::checkout(&checkout.id),
                    set: vec![
                        ("status".into(), Attr::s(CheckoutStatus::Credited.as_str())),
                        ("payment_intent".into(), Attr::s(payment_intent.as_str())),
                        ("updated_at".into(), Attr::s(records::rfc3339(now))),
                    ],
                    condition: Condition::one_of(Guard::CheckoutStatus, "status", &credited),
                },
                Write::Put {
                    item: records::payment_item(&payment),
                    condition: Condition::not_exists(Guard::PaymentNew),
                },
                super::events::wallet_event_write(
                    &checkout.partner,
                    &checkout.wallet,
                    super::events::PartnerEventKind::TopupSucceeded,
                    json!({ "payment": id, "points": checkout.points, "amount": checkout.amount.format_major(),
                            "currency": checkout.amount.currency().code(), "auto": false }),
                    now,
                ),
            ],
        };
        posting.also.extend(receipt.map(|r| super::receipts::receipt_write(r, &payment)));
        let state = match wallet {
            Some(state) => state,
            None => self.store.wallet(&checkout.wallet).await?,
        };
        match self.store.post_from(posting, state, |_| json!({ "outcome": "credited" })).await {
            Ok(Outcome::Applied { entry, .. }) => {
                tracing::info!(wallet = %checkout.wallet, checkout = %checkout.id, points = %checkout.points,
                    entry = %entry.id, "checkout credited");
                Ok(WebhookOutcome::Credited(checkout.amount))
            }
            Ok(Outcome::Replayed { .. }) => Ok(WebhookOutcome::AlreadyCredited),
            // The checkout is credited already (after the idempotency record expired), or its
            // PaymentIntent was credited through another checkout: nothing more to credit.
            Err(StoreError::ConditionFailed { .. }) => Ok(WebhookOutcome::AlreadyCredited),
            Ok(other) => Err(OpError::Internal(format!("a credit came to {other:?}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves a checkout to `to` if it is in a state that moves there; otherwise the event is
    /// late or repeated and changes nothing.
    async fn move_checkout(&self, checkout: &CheckoutRecord, to: CheckoutStatus) -> Result<WebhookOutcome, OpError> {
        let from: Vec<&str> = CheckoutStatus::sources_of(to).iter().map(|s| s.as_str()).collect();
        let update = Write::Update {
            key: keys::checkout(&checkout.id),
            set: vec![
                ("status".into(), Attr::s(to.as_str())),
                ("updated_at".into(), Attr::s(records::rfc3339(self.clock.now()))),
            ],
            condition: Condition::one_of(Guard::CheckoutStatus, "status", &from),
        };
        match self.store.write(vec![update]).await {
            Ok(()) => Ok(WebhookOutcome::Moved(to)),
            Err(StoreError::ConditionFailed { .. }) => Ok(WebhookOutcome::Unchanged),
            Err(e) => Err(e.into()),
        }
    }

    // ---- payment intents ------------------------------------------------------------------

    /// A Checkout payment that saved its card: the workspace's customer record keeps the card
    /// for off-session top-ups (`cards.rs`). Crediting is the session's business, never this
    /// event's.
    async fn on_payment_intent(&self, event: &Event, pi: &PaymentIntentObject) -> Result<WebhookOutcome, OpError> {
        let succeeded = event.type_ == "payment_intent.succeeded";
        match pi.metadata.get(metadata::SOURCE).map(String::as_str) {
            // A PaymentIntent's metadata is the payer's to write: one that claims to be ours on
            // the wrong account is someone else's payment, ignored (a refusal would have Stripe
            // deliver it again for days).
            Some(super::autotopup::SOURCE_AUTO_TOPUP) => {
                let Some(account) = &event.account else {
                    return Ok(not_ours(event, pi, "an auto top-up is made on a connected account"));
                };
                return self.on_auto_topup_event(succeeded, account, pi, &event.id).await;
            }
            Some(super::partner_wallet::SOURCE_PARTNER_REFILL) => {
                if event.account.is_some() {
                    return Ok(not_ours(event, pi, "a partner wallet refill is made on the platform's account"));
                }
                return self.on_partner_refill_event(succeeded, pi, &event.id).await;
            }
            Some(super::partner_wallet::SOURCE_PARTNER_WALLET) if succeeded => {
                if event.account.is_some() {
                    return Ok(not_ours(event, pi, "a partner wallet payment is made on the platform's account"));
                }
                let Some(saved) = saved_by_payment(event, pi) else { return Ok(WebhookOutcome::Ignored) };
                return self.save_partner_card(&pi.metadata, saved).await;
            }
            Some(metadata::SOURCE_CHECKOUT) if succeeded => {}
            _ => return Ok(WebhookOutcome::Ignored),
        }
        let (Some(account), Some(w)) =
            (event.account.as_ref(), pi.metadata.get(metadata::WORKSPACE).and_then(|w| WorkspaceId::parse(w).ok()))
        else {
            return Ok(WebhookOutcome::Ignored);
        };
        let Some(saved) = saved_by_payment(event, pi) else { return Ok(WebhookOutcome::Ignored) };
        self.save_card(CardOwner::Workspace { w: &w, account }, saved).await
    }

    /// `setup_intent.succeeded` of a setup session of ours (metadata `source` = `card`): a card
    /// saved without paying, by a workspace on its partner's account or by a partner on the
    /// platform's.
    async fn on_setup_intent(&self, event: &Event, si: &SetupIntentObject) -> Result<WebhookOutcome, OpError> {
        let ours = si.metadata.get(metadata::SOURCE).is_some_and(|s| s == super::SOURCE_CARD);
        let (Some(customer), Some(payment_method)) = (&si.customer, &si.payment_method) else {
            return Ok(WebhookOutcome::Ignored);
        };
        if !ours || si.usage.as_deref() != Some("off_session") {
            return Ok(WebhookOutcome::Ignored);
        }
        let saved = Saved { customer, payment_method, at: event.created };
        match &event.account {
            Some(account) => {
                let Some(w) = si.metadata.get(metadata::WORKSPACE).and_then(|w| WorkspaceId::parse(w).ok()) else {
                    return Ok(WebhookOutcome::Ignored);
                };
                self.save_card(CardOwner::Workspace { w: &w, account }, saved).await
            }
            None => self.save_partner_card(&si.metadata, saved).await,
        }
    }

    // ---- refunds and disputes -------------------------------------------------------------

    async fn on_refund(&self, event: &Event, charge: &ChargeObject) -> Result<WebhookOutcome, OpError> {
        let Some(pi) = &charge.payment_intent else { return Ok(WebhookOutcome::Ignored) };
        if self.store.get(&keys::payment(pi)).await?.is_none() {
            if self.may_be_ours(event, charge).await? {
                // Ours, and its crediting event has not been handled yet: Stripe will deliver
                // that one too; until then this refund can't be matched to the points.
                return Err(OpError::RetryLater("the refunded payment is not credited yet"));
            }
            tracing::warn!(event = %event.id, payment_intent = %pi, "a refund of a payment we don't know: ignored");
            return Ok(WebhookOutcome::Ignored);
        }
        let refunded = charge.amount_refunded;
        let currency = charge.currency.clone();
        self.claw_back(event, pi, Reversal::Refund, &currency, |p| {
            (refunded > p.refunded_minor).then(|| PaymentRecord { refunded_minor: refunded, ..p.clone() })
        })
        .await
    }

    /// Whether an uncredited charge may still be credited: its metadata (the payer's to write,
    /// so only a lookup key) names one of our sources and a workspace of the partner whose
    /// account it is on, or, on the platform's account, a partner we have.
    async fn may_be_ours(&self, event: &Event, charge: &ChargeObject) -> Result<bool, OpError> {
        let source = charge.metadata.get(metadata::SOURCE).map(String::as_str);
        let ours = [
            metadata::SOURCE_CHECKOUT,
            super::autotopup::SOURCE_AUTO_TOPUP,
            super::partner_wallet::SOURCE_PARTNER_WALLET,
            super::partner_wallet::SOURCE_PARTNER_REFILL,
        ];
        if !source.is_some_and(|s| ours.contains(&s)) {
            return Ok(false);
        }
        let named = |k: &str| charge.metadata.get(k).map(String::as_str);
        match &event.account {
            Some(account) => {
                let Some(w) = named(metadata::WORKSPACE).and_then(|w| WorkspaceId::parse(w).ok()) else {
                    return Ok(false);
                };
                let ws = match self.workspace(&w).await {
                    Ok(ws) => ws,
                    Err(OpError::NotFound(_)) => return Ok(false),
                    Err(e) => return Err(e),
                };
                Ok(self.stripe_connection(&ws.partner).await?.is_some_and(|c| &c.account == account))
            }
            None => {
                let Some(p) = named(metadata::PARTNER).and_then(|p| PartnerId::parse(p).ok()) else {
                    return Ok(false);
                };
                match self.partner_settings(&p).await {
                    Ok(_) => Ok(true),
                    Err(OpError::NotFound(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// A chargeback takes back the disputed share once; a won dispute gives it back once. The
    /// payment record keeps which disputes it counts and which of them were won, so every
    /// delivery of either, in any order, comes to the same totals.
    async fn on_dispute(
        &self,
        event: &Event,
        dispute: &DisputeObject,
        funds: DisputeFunds,
    ) -> Result<WebhookOutcome, OpError> {
        let Some(pi) = &dispute.payment_intent else { return Ok(WebhookOutcome::Ignored) };
        if funds == DisputeFunds::Untouched {
            tracing::info!(dispute = %dispute.id, status = %dispute.status, "a dispute event that moved no money");
            return Ok(WebhookOutcome::Ignored);
        }
        if self.store.get(&keys::payment(pi)).await?.is_none() {
            // A dispute comes weeks after the payment; one we never credited isn't ours.
            tracing::warn!(payment_intent = %pi, dispute = %dispute.id, "a dispute of a payment we don't know");
            return Ok(WebhookOutcome::Ignored);
        }
        let (id, amount) = (dispute.id.clone(), dispute.amount.max(0));
        let won = funds == DisputeFunds::Reinstated;
        let cause = if won { Reversal::DisputeWon { id: &id, amount } } else { Reversal::Dispute };
        self.claw_back(event, pi, cause, &dispute.currency, |p| {
            let counted = p.disputes.contains(&id);
            if counted && (!won || p.disputes_won.contains(&id)) {
                return None;
            }
            let mut next = p.clone();
            if !counted {
                // A won dispute first heard of when it closes counts in and out at once.
                next.disputes.push(id.clone());
                next.disputed_minor = p.disputed_minor.saturating_add(amount);
            }
            if won {
                next.disputes_won.push(id.clone());
                next.won_minor = p.won_minor.saturating_add(amount);
            }
            Some(next)
        })
        .await
    }

    /// Applies `next` (the payment's new totals, or `None` if the event adds nothing) and settles
    /// the points the new totals owe, in one transaction with the payment's version move: takes
    /// back what a refund or dispute newly reversed, or gives back what a won dispute returned.
    async fn claw_back(
        &self,
        event: &Event,
        pi: &stripe_gateway::ids::PaymentIntentId,
        cause: Reversal<'_>,
        currency: &str,
        next: impl Fn(&PaymentRecord) -> Option<PaymentRecord>,
    ) -> Result<WebhookOutcome, OpError> {
        for _ in 0..MAX_OP_ATTEMPTS {
            let item = self.store.get(&keys::payment(pi)).await?.ok_or(OpError::NotFound("payment"))?;
            let current = records::payment_from(&item)?;
            note_tenant(&current.partner, &current.wallet);
            same_account(event, current.account.as_ref())?;
            if Currency::parse(currency).ok() != Some(current.amount.currency()) {
                return Err(refused("data.object.currency", "not the currency of the payment"));
            }
            let Some(mut updated) = next(&current) else { return Ok(WebhookOutcome::Unchanged) };
            let money = |minor: i64| Money::from_minor(minor, current.amount.currency());
            // The disputes won no longer count: their money came back.
            let disputed = updated.disputed_minor.saturating_sub(updated.won_minor).max(0);
            let reversed = money(updated.refunded_minor.saturating_add(disputed).min(current.amount.amount_minor()))
                .map_err(|e| refused("data.object.amount", e))?;
            let due =
                clawback_total(current.points, current.amount, reversed).map_err(|e| refused("data.object", e))?;
            let owed = due.as_decimal() - current.clawed_back.as_decimal();
            updated.version = current.version + 1;
            updated.clawed_back = due;
            let put = Write::Put {
                item: records::payment_item(&updated),
                condition: Condition::equals(Guard::PaymentVersion, "version", Attr::n(current.version)),
            };
            if owed.is_zero() {
                match self.store.write(vec![put]).await {
                    Ok(()) => return Ok(WebhookOutcome::Recorded),
                    Err(StoreError::ConditionFailed { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let points = Points::from_decimal(owed.abs()).map_err(|e| OpError::Internal(e.to_string()))?;
            let format =
                |minor: i64| money(minor).map(|m| m.format_major()).map_err(|e| refused("data.object.amount", e));
            let (refunded, disputed) = (format(updated.refunded_minor)?, format(disputed)?);
            let code = current.amount.currency().code();
            let (amount, kind, event_kind, data, outcome) = match (owed.is_sign_positive(), &cause) {
                (true, _) => (
                    PointsDelta::debit(points),
                    EntryKind::ClawBack {
                        payment_intent: pi.to_string(),
                        cause: cause.cause(),
                        refunded: refunded.clone(),
                        disputed: disputed.clone(),
                        currency: code.to_owned(),
                    },
                    super::events::PartnerEventKind::RefundClawedBack,
                    json!({ "payment_intent": pi.as_str(), "cause": cause.cause(), "points": points,
                            "refunded": refunded, "disputed": disputed, "currency": code }),
                    WebhookOutcome::ClawedBack,
                ),
                (false, Reversal::DisputeWon { id, amount }) => (
                    PointsDelta::credit(points),
                    EntryKind::DisputeWon {
                        payment_intent: pi.to_string(),
                        dispute: (*id).to_owned(),
                        amount: format(*amount)?,
                        refunded: refunded.clone(),
                        disputed: disputed.clone(),
                        currency: code.to_owned(),
                    },
                    super::events::PartnerEventKind::DisputeWon,
                    json!({ "payment_intent": pi.as_str(), "dispute": id, "points": points,
                            "amount": format(*amount)?, "currency": code }),
                    WebhookOutcome::GivenBack,
                ),
                (false, _) => {
                    return Err(OpError::Internal(format!("payment {pi}: only a won dispute gives points back")));
                }
            };
            let request = format!(
                "{pi}:{}:{}:{}:{}",
                updated.version, updated.refunded_minor, updated.disputed_minor, updated.won_minor
            );
            let idempotency =
                IdempotencyKey::new(CLAWBACK_SCOPE, &format!("{pi}:{}", updated.version), request.as_bytes())
                    .map_err(|_| OpError::Internal(format!("payment {pi} can't key a claw-back")))?;
            let now = self.clock.now();
            let posting = Posting {
                wallet: current.wallet.clone(),
                amount,
                // The money went back: so do the points, even if they were spent (the ledger
                // says why the balance is negative).
                overdraft: Overdraft::Allow,
                kind,
                actor: Actor::Stripe(event.id.clone()),
                at: now,
                idempotency,
                partner: partner_index(&current.wallet, &current.partner),
                in_partner_ledger: true,
                also: vec![
                    put,
                    super::events::wallet_event_write(&current.partner, &current.wallet, event_kind, data, now),
                ],
            };
            match self.store.post(posting, |_| json!({ "outcome": outcome.as_str() })).await {
                Ok(Outcome::Applied { entry, .. }) => {
                    tracing::info!(wallet = %current.wallet, payment_intent = %pi, points = %points,
                        entry = %entry.id, outcome = outcome.as_str(), "payment settled");
                    return Ok(outcome);
                }
                Ok(Outcome::Replayed { .. }) => return Ok(outcome),
                // Another event moved the payment first: read it again.
                Ok(Outcome::KeyReused) | Err(StoreError::ConditionFailed { .. }) => continue,
                Ok(other) => return Err(OpError::Internal(format!("a claw-back came to {other:?}"))),
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    // ---- the partner disconnects us -------------------------------------------------------

    /// The partner revoked our access to its account: its credit billing goes off (nothing
    /// could be charged on the account any more) and the connection is marked revoked.
    async fn on_deauthorized(&self, event: &Event) -> Result<WebhookOutcome, OpError> {
        let Some(account) = &event.account else { return Ok(WebhookOutcome::Ignored) };
        let Some(owner) = self.store.get(&keys::stripe_account(account)).await? else {
            return Ok(WebhookOutcome::Ignored);
        };
        let partner: PartnerId = records::stripe_account_partner(&owner)?;
        tracing::Span::current().record("partner", partner.as_str());
        let Some(connection) = self.stripe_connection(&partner).await? else { return Ok(WebhookOutcome::Ignored) };
        if &connection.account != account {
            // The partner has connected another account since: that one stays.
            return Ok(WebhookOutcome::Unchanged);
        }
        if connection.deauthorized_at.is_some() {
            return Ok(WebhookOutcome::Unchanged);
        }
        let now = self.clock.now();
        let revoked = records::StripeConnection { deauthorized_at: Some(now), ..connection };
        let writes = vec![
            Write::Put {
                item: records::stripe_connection_item(&partner, &revoked),
                condition: Condition::equals(Guard::StripeConnectionAccount, "account", Attr::s(account.as_str())),
            },
            Write::Update {
                key: keys::partner_profile(&partner),
                set: vec![("credit_billing".into(), Attr::Bool(false))],
                condition: Condition::exists(Guard::PartnerExists),
            },
        ];
        match self.store.write(writes).await {
            Ok(()) => {
                tracing::warn!(partner = %partner, account = %account, "Stripe access revoked: credit billing off");
                Ok(WebhookOutcome::Deauthorized)
            }
            Err(StoreError::ConditionFailed { .. }) => Ok(WebhookOutcome::Unchanged),
            Err(e) => Err(e.into()),
        }
    }
}

/// What moved a payment's money: a refund or a dispute back to the customer, or a won dispute
/// back to the merchant.
#[derive(Debug, Clone, Copy)]
enum Reversal<'a> {
    Refund,
    Dispute,
    DisputeWon { id: &'a str, amount: i64 },
}

impl Reversal<'_> {
    /// Why points are taken back, when they are.
    fn cause(self) -> ClawBackCause {
        match self {
            Reversal::Refund => ClawBackCause::Refund,
            Reversal::Dispute | Reversal::DisputeWon { .. } => ClawBackCause::Dispute,
        }
    }
}

/// Logs a PaymentIntent event that names one of our sources on the wrong account.
/// The card a succeeded checkout payment saved for off-session charges, if it saved one.
fn saved_by_payment<'a>(event: &Event, pi: &'a PaymentIntentObject) -> Option<Saved<'a>> {
    if pi.setup_future_usage.as_deref() != Some("off_session") {
        return None;
    }
    Some(Saved { customer: pi.customer.as_ref()?, payment_method: pi.payment_method.as_ref()?, at: event.created })
}

fn not_ours(event: &Event, pi: &PaymentIntentObject, reason: &str) -> WebhookOutcome {
    let account = event.account.as_ref().map_or("", AccountId::as_str);
    tracing::warn!(event = %event.id, payment_intent = %pi.id, account, reason, "not a payment of ours: ignored");
    WebhookOutcome::Ignored
}

/// Why a paid session does not match its checkout record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SessionMismatch {
    #[error("paid in {paid:?}, the checkout is in {stored}")]
    Currency { paid: Option<String>, stored: &'static str },
    #[error("paid {paid_minor:?} (minor units), the checkout is for {stored_minor}")]
    Amount { paid_minor: Option<i64>, stored_minor: i64 },
}

/// The session charged exactly what its checkout record stored, in its currency.
fn paid_as_stored(stored: Money, s: &SessionObject) -> Result<(), SessionMismatch> {
    if s.currency.as_deref().and_then(|c| Currency::parse(c).ok()) != Some(stored.currency()) {
        return Err(SessionMismatch::Currency { paid: s.currency.clone(), stored: stored.currency().code() });
    }
    if s.amount_total != Some(stored.amount_minor()) {
        return Err(SessionMismatch::Amount { paid_minor: s.amount_total, stored_minor: stored.amount_minor() });
    }
    Ok(())
}

/// Puts the tenant an event concerns on the request's log lines.
fn note_tenant(p: &PartnerId, wallet: &WalletId) {
    let span = tracing::Span::current();
    span.record("partner", p.as_str());
    if let WalletId::Workspace(w) = wallet {
        span.record("workspace", w.as_str());
    }
}

/// A workspace's wallet names its partner (its ledger entries are in the partner's ledger
/// index too); the partner wallet's own are in its own ledger.
fn partner_index(wallet: &WalletId, p: &PartnerId) -> Option<PartnerId> {
    matches!(wallet, WalletId::Workspace(_)).then(|| p.clone())
}

/// The event must come from the account the payment was made on: the connected account of the
/// workspace's partner, or the platform's own (`None`) for a partner wallet's payment.
fn same_account(event: &Event, expected: Option<&AccountId>) -> Result<(), OpError> {
    if event.account.as_ref() != expected {
        let account = event.account.as_ref().map_or("", AccountId::as_str);
        let expected = expected.map_or("the platform's", AccountId::as_str);
        tracing::warn!(event = %event.id, account, expected, "an event from another account than the payment's");
        return Err(refused("account", "the event is not from the account the payment was made on"));
    }
    Ok(())
}
