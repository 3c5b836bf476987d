//! Money into the partner wallet: the partner pays the platform, so these payments are
//! made on the platform's OWN Stripe account (no `Stripe-Account`), with the partner as the
//! platform's customer (`PARTNER#p / CUSTOMER`), and their events come to the platform's account
//! endpoint (`POST /stripe/platform-webhook`, its own signing secret).
//!
//! - `POST /partner/wallet/checkout {"amount": "100.00", ...}`: a Checkout Session for that
//!   amount in the wallet's currency; it saves the card for later off-session refills. The
//!   session is a [`CheckoutRecord`] whose wallet is the partner's (`account: None`), so the
//!   webhook credits it, moves it and claws back its refunds and disputes exactly as it does a
//!   workspace's (`webhook.rs`): 1 USD paid is 1.0000 in the wallet.
//! - `PUT /partner/wallet/auto-refill`: when a fold leaves the wallet below `threshold`, the
//!   saved card is charged `amount` (enough multiples of it to reach the threshold) off-session,
//!   on the auto top-up rails of `domain::autotopup`: the attempt is recorded before the charge
//!   under the key `partner-refill:<p>:<attempt>`, one at a time, 1 h after a decline, off after
//!   3 in a row, an optional monthly cap; the credit is keyed by the PaymentIntent, so the
//!   refill that charged and the `payment_intent.succeeded` event credit once between them.

use serde_json::{Value, json};
use time::OffsetDateTime;

use domain::{
    Actor, AutoTopup, Balance, CheckoutStatus, EntryKind, Money, Overdraft, PartnerId, Points, PointsDelta, StartError,
    TopupOption, TopupOptionId, WalletId, cap_month, check_url,
};
use store::records::{self, CheckoutRecord, PaymentRecord, PlatformCustomer, rfc3339};
use store::{Attr, Condition, Guard, IdempotencyKey, Outcome, Posting, StoreError, Table, Write, keys};
use stripe_gateway::event::{PaymentIntentObject, metadata};
use stripe_gateway::gateway::{
    Account, Metadata, NewCheckoutSession, NewCustomer, OffSessionCharge, OffSessionOutcome,
};
use stripe_gateway::ids::{CustomerId, PaymentIntentId};

use super::autotopup::{
    ATTEMPT_KEY, Credit, FailedPayment, Paid, REFILL_RESUME_AFTER, TopupResult, Unmatched, match_attempt,
    named_attempt, unmatched, version_is,
};
use super::events::{PartnerEventKind, wallet_event_write};
use super::payments::{Payments, stripe_error, stripe_key};
use super::{Billing, MAX_OP_ATTEMPTS, OpError, Reply, WebhookOutcome};

/// The metadata `source` of a partner's wallet checkout.
pub const SOURCE_PARTNER_WALLET: &str = "partner_wallet";
/// The metadata `source` of a partner wallet's off-session refill.
pub const SOURCE_PARTNER_REFILL: &str = "partner_refill";
/// Who the ledger names for a refill the fold started.
pub const PARTNER_REFILL_ACTOR: &str = "partner-refill";
/// The refill's stand-in for a top-up option in its attempts (a partner has no options of its
/// own: it refills by an amount).
const REFILL_OPTION: &str = "to_partner_refill";

/// `PUT /partner/wallet/auto-refill`, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRefillTerms {
    pub enabled: bool,
    /// Refill when a debit leaves the wallet below this.
    pub threshold: Option<Points>,
    /// What one refill charges (in the wallet's currency).
    pub amount: Option<Money>,
    pub monthly_cap: Option<Money>,
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

/// Money of the wallet's currency as the wallet's amount: 100.00 USD is 100.0000 in the wallet.
fn wallet_amount(m: &Money) -> Result<Points, OpError> {
    Points::from_decimal(m.as_major()).map_err(internal)
}

/// The refill's amount as a top-up option, for the auto top-up rules.
fn refill_option(amount: Money) -> Result<(TopupOptionId, TopupOption), OpError> {
    let id = TopupOptionId::parse(REFILL_OPTION).map_err(internal)?;
    let option = TopupOption::new("Partner wallet refill", amount, wallet_amount(&amount)?).map_err(internal)?;
    Ok((id, option))
}

fn money_view(m: &Money) -> Value {
    json!({ "amount": m.format_major(), "currency": m.currency().code() })
}

/// The auto-refill as the partner sees it (`GET /partner/wallet`'s `auto_refill`).
pub fn partner_refill_view(a: &AutoTopup, amount: Option<&Money>, card_saved: bool, now: OffsetDateTime) -> Value {
    json!({
        "enabled": a.enabled,
        "threshold": a.threshold.map(|t| t.to_string()),
        "amount": amount.map(money_view),
        "monthly_cap": a.monthly_cap.as_ref().map(money_view),
        "spent_this_month": a.monthly_cap.as_ref().map(|cap| {
            money_view(&a.spent_in(&cap_month(now)).unwrap_or_else(|| Money::zero(cap.currency())))
        }),
        "card_saved": card_saved,
        "consecutive_failures": a.consecutive_failures,
        "last_failure": a.last_failure.as_ref().map(|f| json!({ "code": f.code, "at": rfc3339(f.at) })),
        "next_attempt_after": a.next_attempt_after.map(rfc3339),
        "disabled_reason": a.disabled_reason,
        "payment_pending": a.in_flight.as_ref().is_some_and(|f| f.payment_intent.is_some()),
    })
}

impl<T: Table> Billing<T> {
    /// The partner as the platform's Stripe customer, if it has paid (or tried to) before.
    pub async fn platform_customer(&self, p: &PartnerId) -> Result<Option<PlatformCustomer>, OpError> {
        let item = self.store.get(&keys::partner_customer(p)).await?;
        Ok(item.as_ref().map(records::platform_customer_from).transpose()?)
    }

    /// The partner wallet's auto-refill (off, version 0, if never set) and its amount.
    pub async fn partner_refill(&self, p: &PartnerId) -> Result<(AutoTopup, Option<Money>), OpError> {
        let item = self.store.get(&keys::partner_refill(p)).await?;
        Ok(item.as_ref().map(records::partner_refill_from).transpose()?.unwrap_or_default())
    }

    /// The `auto_refill` part of `GET /partner/wallet`.
    pub(super) async fn partner_refill_details(&self, p: &PartnerId) -> Result<Value, OpError> {
        let (refill, amount) = self.partner_refill(p).await?;
        let card = self.platform_customer(p).await?.is_some_and(|c| c.payment_method.is_some());
        Ok(partner_refill_view(&refill, amount.as_ref(), card, self.clock.now()))
    }

    /// `POST /partner/wallet/checkout`: a Checkout Session on the platform's account for
    /// `amount` (major units of the wallet's currency), stored as pending. Answers `{"id", "url",
    /// ...}`: send the partner to `url`.
    pub async fn create_partner_checkout(
        &self,
        p: &PartnerId,
        amount: &str,
        success_url: &str,
        cancel_url: &str,
        idem: &IdempotencyKey,
    ) -> Result<Reply, OpError> {
        if let Some(reply) = self.replay(idem).await? {
            return Ok(reply);
        }
        let payments = self.payments()?;
        self.partner_settings(p).await?;
        let currency = self.meters.currency();
        let amount = Money::parse_major(amount, currency).map_err(|e| OpError::invalid("amount", e))?;
        amount.check_chargeable().map_err(|e| OpError::invalid("amount", e))?;
        for (param, url) in [("success_url", success_url), ("cancel_url", cancel_url)] {
            check_url(url).map_err(|e| OpError::invalid(param, e))?;
        }
        let customer = self.partner_customer(p, payments).await?;
        let mut meta = Metadata::new();
        for (k, v) in [
            (metadata::PARTNER, p.as_str()),
            (metadata::SOURCE, SOURCE_PARTNER_WALLET),
            (metadata::POINTS, &wallet_amount(&amount)?.to_string()),
        ] {
            meta.insert(k, v).map_err(internal)?;
        }
        let session = NewCheckoutSession {
            customer,
            amount,
            label: format!("Partner wallet: {} {}", amount.format_major(), currency.code().to_uppercase()),
            client_reference_id: p.as_str().to_owned(),
            metadata: meta,
            success_url: success_url.to_owned(),
            cancel_url: cancel_url.to_owned(),
        };
        let key = stripe_key(format!("partner-checkout:{p}:{}", idem.fingerprint()))?;
        let created = payments
            .gateway()?
            .create_checkout_session(Account::Platform, &key, &session)
            .await
            .map_err(|e| stripe_error("checkout.sessions.create", e))?;
        let now = self.clock.now();
        let record = CheckoutRecord {
            id: created.id.clone(),
            wallet: WalletId::Partner(p.clone()),
            partner: p.clone(),
            account: None,
            points: wallet_amount(&amount)?,
            amount,
            topup_option_id: None,
            status: CheckoutStatus::Pending,
            payment_intent: None,
            created_at: now,
            updated_at: now,
        };
        tracing::info!(partner = %p, checkout = %created.id, amount = %amount.format_major(),
            currency = currency.code(), "partner wallet checkout created");
        let reply = Reply::new(201, super::checkout_view(&record, Some(&created.url), created.expires_at));
        let writes = vec![Write::Put {
            item: records::checkout_item(&record),
            condition: Condition::not_exists(Guard::CheckoutNew),
        }];
        self.commit(idem, writes, reply, |_| internal(format!("checkout {} stored twice", created.id))).await
    }

    /// The partner's customer on the platform account: created once (a race creates one
    /// customer, through the idempotency key) and stored.
    async fn partner_customer(&self, p: &PartnerId, payments: &Payments) -> Result<CustomerId, OpError> {
        if let Some(c) = self.platform_customer(p).await? {
            return Ok(c.customer);
        }
        let new = NewCustomer {
            description: format!("Partner {p}"),
            metadata: Metadata::new().with(metadata::PARTNER, p.as_str()).map_err(internal)?,
        };
        let customer = payments
            .gateway()?
            .create_customer(Account::Platform, &stripe_key(format!("partner-customer:{p}"))?, &new)
            .await
            .map_err(|e| stripe_error("customers.create", e))?;
        let record = PlatformCustomer {
            customer: customer.clone(),
            payment_method: None,
            payment_method_created: None,
            version: 1,
        };
        let put = Write::Put {
            item: records::platform_customer_item(p, &record),
            condition: Condition::not_exists(Guard::CustomerNew),
        };
        match self.store.write(vec![put]).await {
            Ok(()) => Ok(customer),
            // Stored meanwhile by a concurrent checkout: that one is the partner's.
            Err(StoreError::ConditionFailed { .. }) => {
                let stored = self.platform_customer(p).await?.ok_or(OpError::Conflict)?;
                Ok(stored.customer)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `payment_intent.succeeded` of a wallet checkout that saved its card: the partner's
    /// customer record keeps it for off-session refills (a late, older one changes nothing).
    pub(super) async fn save_partner_card(&self, pi: &PaymentIntentObject) -> Result<WebhookOutcome, OpError> {
        let (Some(p), Some(customer), Some(method)) = (
            pi.metadata.get(metadata::PARTNER).and_then(|p| PartnerId::parse(p).ok()),
            pi.customer.as_ref(),
            pi.payment_method.as_ref(),
        ) else {
            return Ok(WebhookOutcome::Ignored);
        };
        if pi.setup_future_usage.as_deref() != Some("off_session") {
            return Ok(WebhookOutcome::Ignored);
        }
        for _ in 0..MAX_OP_ATTEMPTS {
            let Some(current) = self.platform_customer(&p).await? else {
                tracing::warn!(partner = %p, "a saved card for a platform customer we don't have");
                return Ok(WebhookOutcome::Ignored);
            };
            if &current.customer != customer {
                tracing::warn!(partner = %p, "a saved card of another customer than the partner's");
                return Ok(WebhookOutcome::Ignored);
            }
            if current.payment_method_created.is_some_and(|at| at >= pi.created) {
                return Ok(WebhookOutcome::Unchanged);
            }
            let updated = PlatformCustomer {
                payment_method: Some(method.clone()),
                payment_method_created: Some(pi.created),
                version: current.version + 1,
                ..current.clone()
            };
            let put = Write::Put {
                item: records::platform_customer_item(&p, &updated),
                condition: Condition::equals(Guard::CustomerVersion, "version", Attr::n(current.version)),
            };
            match self.store.write(vec![put]).await {
                Ok(()) => return Ok(WebhookOutcome::CardSaved),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    // ---- auto-refill --------------------------------------------------------------------

    /// `PUT /partner/wallet/auto-refill`: on with a threshold and an amount (refused until a
    /// wallet checkout saved a card), or off.
    pub async fn put_partner_refill(
        &self,
        p: &PartnerId,
        terms: &PartnerRefillTerms,
        idem: &IdempotencyKey,
    ) -> Result<Reply, OpError> {
        if let Some(reply) = self.replay(idem).await? {
            return Ok(reply);
        }
        self.partner_settings(p).await?;
        let (current, current_amount) = self.partner_refill(p).await?;
        let card = self.platform_customer(p).await?.is_some_and(|c| c.payment_method.is_some());
        let currency = self.meters.currency();
        let (next, amount) = if terms.enabled {
            let threshold =
                terms.threshold.ok_or_else(|| OpError::invalid("threshold", "required to turn auto-refill on"))?;
            if threshold.is_zero() {
                return Err(OpError::invalid("threshold", "must be greater than 0"));
            }
            let amount = terms.amount.ok_or_else(|| OpError::invalid("amount", "required to turn auto-refill on"))?;
            for (param, m) in [("amount", Some(amount)), ("monthly_cap", terms.monthly_cap)] {
                if m.is_some_and(|m| m.currency() != currency) {
                    return Err(OpError::invalid(
                        param,
                        format!("must be in the wallet's currency, {}", currency.code()),
                    ));
                }
            }
            amount.check_chargeable().map_err(|e| OpError::invalid("amount", e))?;
            if let Some(cap) = terms.monthly_cap.filter(|c| c.amount_minor() < amount.amount_minor()) {
                return Err(OpError::invalid(
                    "monthly_cap",
                    format!("must be at least one refill ({amount}), not {cap}"),
                ));
            }
            if !card {
                return Err(OpError::invalid(
                    "enabled",
                    "no card is saved yet: pay once through POST /partner/wallet/checkout, which saves the card",
                ));
            }
            let (id, _) = refill_option(amount)?;
            let on = AutoTopup { threshold: Some(threshold), monthly_cap: terms.monthly_cap, ..current.turned_on(id) };
            (on, Some(amount))
        } else {
            for (param, given) in [
                ("threshold", terms.threshold.is_some()),
                ("amount", terms.amount.is_some()),
                ("monthly_cap", terms.monthly_cap.is_some()),
            ] {
                if given {
                    return Err(OpError::invalid(param, "only with \"enabled\": true"));
                }
            }
            (current.turned_off(), current_amount)
        };
        let next = AutoTopup { version: current.version + 1, ..next };
        let reply = Reply::ok(partner_refill_view(&next, amount.as_ref(), card, self.clock.now()));
        let writes = vec![Write::Put {
            item: records::partner_refill_item(p, &next, amount.as_ref()),
            condition: version_is(Guard::RefillVersion, current.version),
        }];
        self.commit(idem, writes, reply, |_| OpError::Conflict).await
    }

    /// After a debit of the partner wallet that left `balance` (a fold): below the refill
    /// threshold, one refill starts, unless one is in flight (an attempt older than
    /// [`REFILL_RESUME_AFTER`] is taken up again under its own key). A deployment without a
    /// Stripe client leaves it.
    pub(super) async fn refill_partner_if_low(&self, p: &PartnerId, balance: Balance) -> Result<(), OpError> {
        if self.payments.as_ref().is_none_or(|s| s.gateway().is_err()) {
            return Ok(());
        }
        let (state, amount) = self.partner_refill(p).await?;
        let Some(threshold) = state.threshold.filter(|_| state.enabled) else { return Ok(()) };
        let lacking = threshold.as_decimal() - balance.as_decimal();
        if lacking <= rust_decimal::Decimal::ZERO {
            return Ok(());
        }
        let shortfall = Points::from_decimal(lacking).map_err(internal)?;
        let result = self.try_partner_refill(p, state, amount, shortfall).await?;
        tracing::info!(partner = %p, balance = %balance, threshold = %threshold, result = ?result, "partner wallet refill");
        Ok(())
    }

    /// Starts (or takes up) a refill from `state`, the setting as the caller read it: its
    /// version guards the attempt's start, so a setting that moved meanwhile starts nothing.
    async fn try_partner_refill(
        &self,
        p: &PartnerId,
        state: AutoTopup,
        amount: Option<Money>,
        shortfall: Points,
    ) -> Result<TopupResult, OpError> {
        let now = self.clock.now();
        let card = async {
            let c = self.platform_customer(p).await?;
            Ok::<_, OpError>(c.and_then(|c| c.payment_method.map(|m| (c.customer, m))))
        };
        let (attempt, card) = match state.in_flight.clone() {
            Some(a) if a.payment_intent.is_some() => return Ok(TopupResult::Pending),
            Some(a) if now - a.started_at < REFILL_RESUME_AFTER => return Ok(TopupResult::NotTried),
            Some(a) => (a, card.await?),
            None => {
                if !state.may_attempt(now) {
                    return Ok(TopupResult::NotTried);
                }
                let Some(amount) = amount else { return Ok(TopupResult::NotTried) };
                let card = card.await?;
                if card.is_none() {
                    self.partner_refill_failed(p, None, "no_saved_card").await?;
                    return Ok(TopupResult::Failed);
                }
                let (id, option) = refill_option(amount)?;
                let started = match state.start(id, &option, shortfall, now) {
                    Ok(started) => started,
                    Err(StartError::MonthlyCap { cap, spent }) => {
                        tracing::info!(partner = %p, cap = %cap, spent = %spent, "partner refill held by its monthly cap");
                        return Ok(TopupResult::NotTried);
                    }
                    Err(e) => return Err(internal(e)),
                };
                let started = AutoTopup { version: state.version + 1, ..started };
                let put = Write::Put {
                    item: records::partner_refill_item(p, &started, Some(&amount)),
                    condition: version_is(Guard::RefillVersion, state.version),
                };
                match self.store.write(vec![put]).await {
                    Ok(()) => {}
                    // Another debit started it first: that one charges.
                    Err(StoreError::ConditionFailed { .. }) => return Ok(TopupResult::NotTried),
                    Err(e) => return Err(e.into()),
                }
                (started.in_flight.clone().expect("just started"), card)
            }
        };
        let Some((customer, method)) = card else {
            self.partner_refill_failed(p, Some(attempt.number), "no_saved_card").await?;
            return Ok(TopupResult::Failed);
        };
        let mut meta = Metadata::new();
        for (k, v) in [
            (metadata::PARTNER, p.to_string()),
            (metadata::POINTS, attempt.points.to_string()),
            (metadata::SOURCE, SOURCE_PARTNER_REFILL.to_owned()),
            (ATTEMPT_KEY, attempt.number.to_string()),
        ] {
            meta.insert(k, &v).map_err(internal)?;
        }
        let charge = OffSessionCharge {
            customer,
            payment_method: method,
            amount: attempt.amount,
            description: format!("Partner wallet refill: {}", attempt.amount),
            metadata: meta,
        };
        let key = stripe_key(format!("partner-refill:{p}:{}", attempt.number))?;
        let outcome = self.payments()?.gateway()?.charge_off_session(Account::Platform, &key, &charge).await;
        tracing::info!(partner = %p, attempt = attempt.number, amount = %attempt.amount.format_major(),
            outcome = ?outcome, "partner refill charge");
        match outcome {
            Ok(OffSessionOutcome::Succeeded { payment_intent }) => {
                let actor = Actor::System(PARTNER_REFILL_ACTOR.into());
                self.credit_partner_refill(p, Paid::Charge(&attempt), &payment_intent, actor).await?;
                Ok(TopupResult::Credited)
            }
            Ok(OffSessionOutcome::Processing { payment_intent }) => {
                let number = attempt.number;
                self.update_partner_refill(p, |a| {
                    let mut next = a.clone();
                    let f = next.in_flight.as_mut().filter(|f| f.number == number)?;
                    f.payment_intent = Some(payment_intent.to_string());
                    Some(next)
                })
                .await?;
                Ok(TopupResult::Pending)
            }
            Ok(OffSessionOutcome::AuthenticationRequired { .. }) => {
                self.partner_refill_failed(p, Some(attempt.number), "authentication_required").await?;
                Ok(TopupResult::Failed)
            }
            Ok(OffSessionOutcome::Declined { code, .. }) => {
                self.partner_refill_failed(p, Some(attempt.number), &code).await?;
                Ok(TopupResult::Failed)
            }
            // Stripe may have charged: keep the attempt, the next refill asks again under its key.
            Err(e) if e.is_retryable() => Err(OpError::StripeUnavailable(e)),
            Err(e) => {
                tracing::error!(partner = %p, error = %e, "partner refill refused by Stripe");
                self.partner_refill_failed(p, Some(attempt.number), "stripe_error").await?;
                Ok(TopupResult::Failed)
            }
        }
    }

    /// Credits a paid refill once (by its PaymentIntent) with the amount its attempt stored
    /// before the charge, and settles the attempt in flight if it is this one. An event
    /// ([`Paid::Event`]) credits only the attempt in flight that it matches.
    async fn credit_partner_refill(
        &self,
        p: &PartnerId,
        paid: Paid<'_>,
        payment_intent: &PaymentIntentId,
        actor: Actor,
    ) -> Result<Credit, OpError> {
        let wallet = WalletId::Partner(p.clone());
        for _ in 0..MAX_OP_ATTEMPTS {
            let (state, amount) = self.partner_refill(p).await?;
            let attempt = match paid {
                Paid::Charge(attempt) => attempt.clone(),
                Paid::Event { number, pi } => match match_attempt(state.in_flight.as_ref(), number, pi, true) {
                    Ok(attempt) => attempt.clone(),
                    // A repeat, or the refill's own answer came first: the attempt is settled.
                    Err(_) if self.credited_to(payment_intent, &wallet).await? => return Ok(Credit::AlreadyCredited),
                    Err(why) => return Ok(Credit::Unmatched(why)),
                },
            };
            let settles = state.in_flight.as_ref().is_some_and(|f| f.number == attempt.number);
            let payment = PaymentRecord {
                payment_intent: payment_intent.clone(),
                checkout: None,
                wallet: wallet.clone(),
                partner: p.clone(),
                account: None,
                points: attempt.points,
                amount: attempt.amount,
                refunded_minor: 0,
                disputed_minor: 0,
                disputes: Vec::new(),
                clawed_back: Points::ZERO,
                version: 1,
            };
            let succeeded = wallet_event_write(
                p,
                &wallet,
                PartnerEventKind::TopupSucceeded,
                json!({ "payment": payment_intent.as_str(), "points": attempt.points,
                        "amount": attempt.amount.format_major(), "currency": attempt.amount.currency().code(),
                        "auto": true }),
                self.clock.now(),
            );
            let mut also = vec![
                Write::Put {
                    item: records::payment_item(&payment),
                    condition: Condition::not_exists(Guard::PaymentNew),
                },
                succeeded,
            ];
            if settles {
                let done = AutoTopup { version: state.version + 1, ..state.succeeded() };
                also.push(Write::Put {
                    item: records::partner_refill_item(p, &done, amount.as_ref()),
                    condition: version_is(Guard::RefillVersion, state.version),
                });
            }
            let pi = payment_intent.as_str();
            let idempotency = IdempotencyKey::new(super::webhook::CREDIT_SCOPE, pi, pi.as_bytes())
                .map_err(|_| internal("a PaymentIntent id can't key a credit"))?;
            let posting = Posting {
                wallet: wallet.clone(),
                amount: PointsDelta::credit(attempt.points),
                overdraft: Overdraft::Forbid,
                kind: EntryKind::TopUp {
                    payment: pi.to_owned(),
                    topup_option_id: None,
                    amount: attempt.amount.format_major(),
                    currency: attempt.amount.currency().code().to_owned(),
                },
                actor: actor.clone(),
                at: self.clock.now(),
                idempotency,
                partner: None,
                also,
            };
            match self.store.post(posting, |_| json!({ "outcome": "credited" })).await {
                Ok(Outcome::Applied { .. }) => return Ok(Credit::Credited),
                // Credited already (the payment exists, or its record answers): settle the
                // attempt below if it is still open.
                Ok(Outcome::Replayed { .. }) => {}
                Err(StoreError::ConditionFailed { failed }) if failed.contains(Guard::PaymentNew) => {}
                // The setting moved meanwhile: read it again.
                Err(StoreError::ConditionFailed { .. }) => continue,
                Ok(other) => return Err(internal(format!("a partner refill credit came to {other:?}"))),
                Err(e) => return Err(e.into()),
            }
            let number = attempt.number;
            self.update_partner_refill(p, |a| {
                a.in_flight.as_ref().is_some_and(|f| f.number == number).then(|| a.succeeded())
            })
            .await?;
            return Ok(Credit::AlreadyCredited);
        }
        Err(OpError::Conflict)
    }

    /// Records a failure: of the attempt `number` if it is still in flight, or of one that could
    /// not start (`None`).
    async fn partner_refill_failed(&self, p: &PartnerId, number: Option<u64>, code: &str) -> Result<(), OpError> {
        let now = self.clock.now();
        self.update_partner_refill(p, |a| {
            let ours = match number {
                Some(n) => a.in_flight.as_ref().is_some_and(|f| f.number == n),
                None => a.in_flight.is_none(),
            };
            if ours {
                tracing::warn!(partner = %p, code, failures = a.consecutive_failures + 1, "partner refill failed");
            }
            ours.then(|| a.failed(code, now))
        })
        .await
        .map(drop)
    }

    /// Read, change (`None`: leave it), write with the version check; again on a race. A new
    /// failure is a `topup.failed` event, a switch-off `autotopup.disabled` (without a
    /// workspace: the partner's own wallet), in the same transaction. `true` if it wrote.
    async fn update_partner_refill(
        &self,
        p: &PartnerId,
        change: impl Fn(&AutoTopup) -> Option<AutoTopup>,
    ) -> Result<bool, OpError> {
        let wallet = WalletId::Partner(p.clone());
        for _ in 0..MAX_OP_ATTEMPTS {
            let (current, amount) = self.partner_refill(p).await?;
            let Some(next) = change(&current) else { return Ok(false) };
            let next = AutoTopup { version: current.version + 1, ..next };
            let mut writes = vec![Write::Put {
                item: records::partner_refill_item(p, &next, amount.as_ref()),
                condition: version_is(Guard::RefillVersion, current.version),
            }];
            let now = self.clock.now();
            if let Some(f) = next.last_failure.as_ref().filter(|_| next.last_failure != current.last_failure) {
                let data = json!({ "code": f.code, "consecutive_failures": next.consecutive_failures,
                                   "next_attempt_after": next.next_attempt_after.map(rfc3339) });
                writes.push(wallet_event_write(p, &wallet, PartnerEventKind::TopupFailed, data, now));
            }
            if current.enabled && !next.enabled && next.disabled_reason.is_some() {
                let data = json!({ "reason": next.disabled_reason });
                writes.push(wallet_event_write(p, &wallet, PartnerEventKind::AutotopupDisabled, data, now));
            }
            match self.store.write(writes).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// `payment_intent.succeeded | payment_failed` of a partner refill (from the platform
    /// endpoint): a payment that settled later, or whose first answer was lost. Its metadata
    /// (partner, attempt number) only finds the stored attempt; what is credited or recorded as
    /// failed is that attempt, if the payment matches it. Anything else is logged and ignored,
    /// with nothing written.
    pub(super) async fn on_partner_refill_event(
        &self,
        succeeded: bool,
        pi: &PaymentIntentObject,
        event_id: &str,
    ) -> Result<WebhookOutcome, OpError> {
        let named = pi.metadata.get(metadata::PARTNER).and_then(|p| PartnerId::parse(p).ok());
        let (Some(p), Some(number)) = (named, named_attempt(pi)) else {
            return Ok(unmatched(event_id, &pi.id, "", &Unmatched::NoLookupKey));
        };
        match self.partner_settings(&p).await {
            Ok(_) => {}
            Err(OpError::NotFound(_)) => {
                tracing::warn!(event = event_id, payment_intent = %pi.id, "a partner refill of a partner we don't have");
                return Ok(WebhookOutcome::Ignored);
            }
            Err(e) => return Err(e),
        }
        tracing::Span::current().record("partner", p.as_str());
        let wallet = WalletId::Partner(p.clone()).to_string();
        if !succeeded {
            let failure = FailedPayment::new(number, pi, self.clock.now());
            if self.update_partner_refill(&p, |a| failure.record(a)).await? {
                tracing::warn!(partner = %p, code = failure.code, attempt = number, "partner refill failed");
                return Ok(WebhookOutcome::Recorded);
            }
            return Ok(unmatched(event_id, &pi.id, &wallet, &failure.why()));
        }
        let actor = Actor::Stripe(event_id.to_owned());
        Ok(match self.credit_partner_refill(&p, Paid::Event { number, pi }, &pi.id, actor).await? {
            Credit::Credited => WebhookOutcome::Credited,
            Credit::AlreadyCredited => WebhookOutcome::AlreadyCredited,
            Credit::Unmatched(why) => unmatched(event_id, &pi.id, &wallet, &why),
        })
    }
}
