//! Auto top-up (`domain::autotopup` holds the rules): the workspace's setting, the off-session
//! charge a renewal makes on a shortfall, and its crediting.
//!
//! The charge is made on the partner's connected account with the card the workspace's last
//! checkout saved, under the idempotency key `autotopup:<workspace>:<attempt number>`. Attempt
//! numbers never repeat within a workspace, so the key is unique per workspace, cycle and
//! attempt; and the attempt is stored before the charge, so a crash after it charges again
//! under the same key, which Stripe answers with the first charge. The points are credited keyed
//! by the PaymentIntent (`PAYMENT#pi`, the idempotency record `stripe-credit:<pi>`): the
//! renewal that charged and the `payment_intent.succeeded` webhook credit once between them.

use serde_json::{Value, json};
use time::OffsetDateTime;

use domain::{
    Actor, AutoTopup, Balance, Currency, EntryKind, Money, Overdraft, PartnerId, Points, PointsDelta, StartError,
    TopupAttempt, TopupOptionId, WalletId, Workspace, WorkspaceId, cap_month,
};
use store::records::{self, PaymentRecord, StripeCustomer, rfc3339};
use store::{Attr, Condition, Guard, IdempotencyKey, Outcome, StoreError, Table, Write, keys};
use stripe_gateway::event::{PaymentIntentObject, metadata};
use stripe_gateway::gateway::{Account, Metadata, OffSessionCharge, OffSessionOutcome};
use stripe_gateway::ids::{AccountId, IdempotencyKey as StripeKey, PaymentIntentId};

use super::{Billing, MAX_OP_ATTEMPTS, OpError, Reply};

/// Who the ledger names for a top-up the renewal charged.
pub const AUTO_TOPUP_ACTOR: &str = "auto-topup";
/// The metadata `source` of an off-session top-up.
pub const SOURCE_AUTO_TOPUP: &str = "auto_topup";
/// An attempt in flight that long without an answer is taken up again by the next refill.
pub const REFILL_RESUME_AFTER: time::Duration = time::Duration::minutes(2);

/// The threshold refill and the monthly cap, as `PUT /workspace/auto-topup` sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefillTerms {
    pub threshold: Option<Points>,
    /// In minor units of the chosen option's currency.
    pub monthly_cap_minor: Option<i64>,
}

/// The metadata key carrying the attempt number.
pub const ATTEMPT_KEY: &str = "attempt";

/// What a renewal's auto top-up came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TopupResult {
    /// Off, waiting out the hour after a failure, or nothing to charge with.
    NotTried,
    /// Paid and credited: the renewal can go on.
    Credited,
    /// Accepted by Stripe, the money arrives later (the webhook credits it).
    Pending,
    /// Declined (or could not be made); recorded.
    Failed,
}

/// How a paid auto top-up (or partner refill) reached its credit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Paid<'a> {
    /// This run's own charge of the attempt came back succeeded: Stripe's answer to our request,
    /// under the attempt's key, for the attempt as it was stored before the charge.
    Charge(&'a TopupAttempt),
    /// A `payment_intent.succeeded` event naming attempt `number` in its metadata: credited only
    /// as the attempt in flight under that number stored it, if the payment matches it.
    Event { number: u64, pi: &'a PaymentIntentObject },
}

/// What a credit of a paid attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Credit {
    Credited,
    AlreadyCredited,
    /// An event that matches no stored attempt: nothing written.
    Unmatched(Unmatched),
}

/// Why a PaymentIntent event does not match the attempt it names. Its metadata is the payer's
/// to write (a partner can create a PaymentIntent with any metadata on its own account), so it
/// only finds the stored attempt; the stored attempt says what may be credited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Unmatched {
    #[error("its metadata does not name an attempt")]
    NoLookupKey,
    #[error("no attempt is in flight (it names attempt {named})")]
    NothingInFlight { named: u64 },
    #[error("it names attempt {named}, attempt {in_flight} is in flight")]
    OtherAttempt { named: u64, in_flight: u64 },
    #[error("the attempt in flight is another PaymentIntent's")]
    OtherPaymentIntent,
    #[error("paid in {paid:?}, the attempt is in {stored}")]
    Currency { paid: String, stored: &'static str },
    #[error("paid {paid_minor:?} (minor units), the attempt is for {stored_minor}")]
    Amount { paid_minor: Option<i64>, stored_minor: i64 },
}

/// The attempt in flight that the PaymentIntent `pi` pays, if it is the one numbered `named`
/// and `pi` paid exactly its amount in its currency (`amount_received` of a succeeded one, the
/// `amount` asked of a failed one), and no other PaymentIntent is known for it.
pub(super) fn match_attempt<'a>(
    in_flight: Option<&'a TopupAttempt>,
    named: u64,
    pi: &PaymentIntentObject,
    succeeded: bool,
) -> Result<&'a TopupAttempt, Unmatched> {
    let attempt = in_flight.ok_or(Unmatched::NothingInFlight { named })?;
    if attempt.number != named {
        return Err(Unmatched::OtherAttempt { named, in_flight: attempt.number });
    }
    if attempt.payment_intent.as_deref().is_some_and(|known| known != pi.id.as_str()) {
        return Err(Unmatched::OtherPaymentIntent);
    }
    let stored = attempt.amount;
    if Currency::parse(&pi.currency).ok() != Some(stored.currency()) {
        return Err(Unmatched::Currency { paid: pi.currency.clone(), stored: stored.currency().code() });
    }
    let paid_minor = if succeeded { pi.amount_received } else { Some(pi.amount) };
    if paid_minor != Some(stored.amount_minor()) {
        return Err(Unmatched::Amount { paid_minor, stored_minor: stored.amount_minor() });
    }
    Ok(attempt)
}

/// The attempt number a PaymentIntent's metadata names (a lookup key, nothing more).
pub(super) fn named_attempt(pi: &PaymentIntentObject) -> Option<u64> {
    pi.metadata.get(ATTEMPT_KEY).and_then(|n| n.parse().ok())
}

/// The setting as the workspace and its partner see it.
pub fn auto_topup_view(a: &AutoTopup, card_saved: bool, now: OffsetDateTime) -> Value {
    json!({
        "enabled": a.enabled,
        "topup_option_id": a.option.as_ref().map(|o| o.as_str()),
        "card_saved": card_saved,
        "consecutive_failures": a.consecutive_failures,
        "last_failure": a.last_failure.as_ref().map(|f| json!({ "code": f.code, "at": rfc3339(f.at) })),
        "next_attempt_after": a.next_attempt_after.map(rfc3339),
        "disabled_reason": a.disabled_reason,
        "payment_pending": a.in_flight.as_ref().is_some_and(|f| f.payment_intent.is_some()),
        "threshold": a.threshold.map(|t| t.to_string()),
        "monthly_cap": a.monthly_cap.as_ref().map(money_view),
        "spent_this_month": a.monthly_cap.as_ref().map(|cap| {
            money_view(&a.spent_in(&cap_month(now)).unwrap_or_else(|| Money::from_minor(0, cap.currency()).expect("zero is money")))
        }),
    })
}

fn money_view(m: &Money) -> Value {
    json!({ "amount_minor": m.amount_minor(), "currency": m.currency().code() })
}

impl<T: Table> Billing<T> {
    /// The workspace's auto top-up (off, version 0, if it never set one).
    pub async fn auto_topup(&self, w: &WorkspaceId) -> Result<AutoTopup, OpError> {
        let item = self.store.get(&keys::workspace_auto_topup(w)).await?;
        Ok(item.as_ref().map(records::auto_topup_from).transpose()?.unwrap_or_default())
    }

    /// The card the workspace's last checkout saved, on its partner's account as it is now.
    pub async fn saved_card(&self, ws: &Workspace) -> Result<Option<(AccountId, StripeCustomer)>, OpError> {
        let Some(connection) = self.usable_connection(&ws.partner).await? else { return Ok(None) };
        let item = self.store.get(&keys::workspace_customer(&ws.id, &connection.account)).await?;
        let customer = item.as_ref().map(records::stripe_customer_from).transpose()?;
        Ok(customer.filter(|c| c.payment_method.is_some()).map(|c| (connection.account, c)))
    }

    /// The `auto_topup` part of the workspace's view.
    pub(super) async fn auto_topup_details(&self, ws: &Workspace) -> Result<Value, OpError> {
        let a = self.auto_topup(&ws.id).await?;
        Ok(auto_topup_view(&a, self.saved_card(ws).await?.is_some(), self.clock.now()))
    }

    /// `PUT /workspace/auto-topup`: on with a top-up option (refused until a checkout saved a
    /// card, and for an option the partner doesn't offer), or off.
    pub async fn put_auto_topup(
        &self,
        w: &WorkspaceId,
        partner_claim: Option<&PartnerId>,
        enabled: bool,
        option: Option<TopupOptionId>,
        refill: RefillTerms,
        idem: &IdempotencyKey,
    ) -> Result<Reply, OpError> {
        // Who asks before what was answered (see `create_checkout`).
        let ws = self.caller_workspace(w, partner_claim).await?;
        if let Some(reply) = self.replay(idem).await? {
            return Ok(reply);
        }
        let current = self.auto_topup(w).await?;
        let card = self.saved_card(&ws).await?;
        let next = if enabled {
            let option =
                option.ok_or_else(|| OpError::invalid("topup_option_id", "required to turn auto top-up on"))?;
            let offered = self.topup_options(&ws.partner).await?;
            let Some(chosen) = offered.options.iter().find(|o| o.id == option) else {
                return Err(OpError::invalid("topup_option_id", "no such top-up option"));
            };
            if refill.threshold.is_some_and(|t| t.is_zero()) {
                return Err(OpError::invalid("threshold", "must be greater than 0"));
            }
            // The cap is in the option's currency, and at least one charge of it, or it could
            // never let a top-up through.
            let amount = chosen.option.amount();
            let cap = refill
                .monthly_cap_minor
                .map(|minor| Money::from_minor(minor, amount.currency()))
                .transpose()
                .map_err(|e| OpError::invalid("monthly_cap_minor", e))?;
            if let Some(cap) = cap.filter(|c| c.amount_minor() < amount.amount_minor()) {
                return Err(OpError::invalid(
                    "monthly_cap_minor",
                    format!("must be at least one charge of the option ({}), not {}", amount, cap),
                ));
            }
            if card.is_none() {
                return Err(OpError::invalid(
                    "enabled",
                    "no card is saved yet: pay once through POST /workspace/checkout, which saves the card",
                ));
            }
            AutoTopup { threshold: refill.threshold, monthly_cap: cap, ..current.turned_on(option) }
        } else {
            if option.is_some() {
                return Err(OpError::invalid("topup_option_id", "only with \"enabled\": true"));
            }
            if refill.threshold.is_some() || refill.monthly_cap_minor.is_some() {
                let param = if refill.threshold.is_some() { "threshold" } else { "monthly_cap_minor" };
                return Err(OpError::invalid(param, "only with \"enabled\": true"));
            }
            current.turned_off()
        };
        let next = AutoTopup { version: current.version + 1, ..next };
        let reply = Reply::ok(auto_topup_view(&next, card.is_some(), self.clock.now()));
        let writes = vec![Write::Put {
            item: records::auto_topup_item(w, &next),
            condition: version_is(Guard::AutoTopupVersion, current.version),
        }];
        self.commit(idem, writes, reply, |_| OpError::Conflict).await
    }

    /// After a debit that left `balance`: below the workspace's refill threshold, a refill starts
    /// (the same attempt as a renewal's, under the same rails), unless one is in flight. An
    /// attempt recorded by a call that stopped before its charge is taken up again after
    /// [`REFILL_RESUME_AFTER`] (under its own idempotency key: Stripe charges it once). A
    /// deployment without Stripe leaves it to the renewal.
    /// `state` is the setting as the debit read it: only a balance under its threshold costs a
    /// further read (the attempt itself re-reads it).
    pub(super) async fn refill_if_low(
        &self,
        ws: &Workspace,
        balance: Balance,
        state: &AutoTopup,
    ) -> Result<(), OpError> {
        if self.payments.is_none() {
            return Ok(());
        }
        let Some(threshold) = state.threshold.filter(|_| state.enabled) else { return Ok(()) };
        let lacking = threshold.as_decimal() - balance.as_decimal();
        if lacking <= rust_decimal::Decimal::ZERO {
            return Ok(());
        }
        let shortfall = Points::from_decimal(lacking).map_err(internal)?;
        let result = self.try_auto_topup(ws, shortfall, Some(REFILL_RESUME_AFTER)).await?;
        tracing::info!(workspace = %ws.id, balance = %balance, threshold = %threshold, result = ?result, "refill");
        Ok(())
    }

    /// On a shortfall (a renewal's, or a refill's): charges the saved card for enough of the
    /// chosen option, once. An attempt in flight is taken up again (the same charge, under its
    /// key), unless it started less than `leave_in_flight` ago: a refill leaves one that another
    /// request is charging right now.
    pub(super) async fn try_auto_topup(
        &self,
        ws: &Workspace,
        shortfall: Points,
        leave_in_flight: Option<time::Duration>,
    ) -> Result<TopupResult, OpError> {
        let now = self.clock.now();
        let mut state = self.auto_topup(&ws.id).await?;
        let attempt = match state.in_flight.clone() {
            // Accepted, settling later: the webhook concludes it.
            Some(a) if a.payment_intent.is_some() => return Ok(TopupResult::Pending),
            Some(a) if leave_in_flight.is_some_and(|d| now - a.started_at < d) => return Ok(TopupResult::NotTried),
            // Recorded by a run that stopped before it knew the outcome: the same attempt again.
            Some(a) => a,
            None => {
                if !state.may_attempt(now) {
                    return Ok(TopupResult::NotTried);
                }
                let Some(id) = state.option.clone() else { return Ok(TopupResult::NotTried) };
                let offered = self.topup_options(&ws.partner).await?;
                let Some(option) = offered.options.iter().find(|o| o.id == id) else {
                    self.topup_failed(ws, None, "topup_option_removed").await?;
                    return Ok(TopupResult::Failed);
                };
                // The option was at or above the floor when the partner saved it; the platform
                // may have raised the floor since, and an option under it is not sold, on a
                // Checkout page or off-session.
                let profile = self.partner_profile(&ws.partner).await?;
                if let Err(e) = self.floors_of(&profile).check_option(&option.option) {
                    tracing::warn!(workspace = %ws.id, option = %id, error = %e, "auto top-up option under the wholesale floor");
                    self.topup_failed(ws, None, "topup_option_below_floor").await?;
                    return Ok(TopupResult::Failed);
                }
                if self.saved_card(ws).await?.is_none() {
                    self.topup_failed(ws, None, "no_saved_card").await?;
                    return Ok(TopupResult::Failed);
                }
                let started = match state.start(id, &option.option, shortfall, now) {
                    Ok(started) => started,
                    // Not a failure of the card: nothing is charged until the month turns (or the
                    // cap is raised), and the workspace sees why in `spent_this_month`.
                    Err(StartError::MonthlyCap { cap, spent }) => {
                        tracing::info!(workspace = %ws.id, cap = %cap, spent = %spent, "auto top-up held by its monthly cap");
                        return Ok(TopupResult::NotTried);
                    }
                    Err(e) => return Err(internal(e)),
                };
                let started = AutoTopup { version: state.version + 1, ..started };
                let put = Write::Put {
                    item: records::auto_topup_item(&ws.id, &started),
                    condition: version_is(Guard::AutoTopupVersion, state.version),
                };
                match self.store.write(vec![put]).await {
                    Ok(()) => {}
                    Err(StoreError::ConditionFailed { .. }) => return Err(OpError::Conflict),
                    Err(e) => return Err(e.into()),
                }
                state = started;
                state.in_flight.clone().expect("just started")
            }
        };
        let Some((account, customer)) = self.saved_card(ws).await? else {
            self.topup_failed(ws, Some(attempt.number), "no_saved_card").await?;
            return Ok(TopupResult::Failed);
        };
        let charge = OffSessionCharge {
            customer: customer.customer.clone(),
            payment_method: customer.payment_method.clone().expect("saved_card has a payment method"),
            amount: attempt.amount,
            description: format!("Auto top-up: {} points", attempt.points),
            metadata: topup_metadata(ws, &attempt)?,
        };
        let key = StripeKey::parse(&format!("autotopup:{}:{}", ws.id, attempt.number))
            .map_err(|_| internal("an auto top-up key is not a Stripe key"))?;
        let outcome = self.payments()?.gateway()?.charge_off_session(Account::Connected(&account), &key, &charge).await;
        tracing::info!(workspace = %ws.id, attempt = attempt.number, amount = %attempt.amount.format_major(),
            currency = attempt.amount.currency().code(), outcome = ?outcome, "auto top-up charge");
        match outcome {
            Ok(OffSessionOutcome::Succeeded { payment_intent }) => {
                let actor = Actor::System(AUTO_TOPUP_ACTOR.into());
                self.credit_auto_topup(ws, &account, Paid::Charge(&attempt), &payment_intent, actor).await?;
                Ok(TopupResult::Credited)
            }
            Ok(OffSessionOutcome::Processing { payment_intent }) => {
                self.topup_processing(ws, attempt.number, &payment_intent).await?;
                Ok(TopupResult::Pending)
            }
            Ok(OffSessionOutcome::AuthenticationRequired { .. }) => {
                self.topup_failed(ws, Some(attempt.number), "authentication_required").await?;
                Ok(TopupResult::Failed)
            }
            Ok(OffSessionOutcome::Declined { code, .. }) => {
                self.topup_failed(ws, Some(attempt.number), &code).await?;
                Ok(TopupResult::Failed)
            }
            // Stripe may have charged: keep the attempt, the next run asks again under its key.
            Err(e) if e.is_retryable() => Err(OpError::StripeUnavailable(e)),
            Err(e) => {
                tracing::error!(workspace = %ws.id, error = %e, "auto top-up refused by Stripe");
                self.topup_failed(ws, Some(attempt.number), "stripe_error").await?;
                Ok(TopupResult::Failed)
            }
        }
    }

    /// Credits a paid top-up once (by its PaymentIntent) with the points and amount its attempt
    /// stored before the charge, and settles the attempt in flight if it is this one. An event
    /// ([`Paid::Event`]) credits only the attempt in flight that it matches ([`match_attempt`]).
    pub(super) async fn credit_auto_topup(
        &self,
        ws: &Workspace,
        account: &AccountId,
        paid: Paid<'_>,
        payment_intent: &PaymentIntentId,
        actor: Actor,
    ) -> Result<Credit, OpError> {
        let wallet = WalletId::Workspace(ws.id.clone());
        for _ in 0..MAX_OP_ATTEMPTS {
            let state = self.auto_topup(&ws.id).await?;
            let attempt = match paid {
                Paid::Charge(attempt) => attempt.clone(),
                Paid::Event { number, pi } => match match_attempt(state.in_flight.as_ref(), number, pi, true) {
                    Ok(attempt) => attempt.clone(),
                    // A repeat, or the renewal's own answer came first: the attempt is settled.
                    Err(_) if self.credited_to(payment_intent, &wallet).await? => return Ok(Credit::AlreadyCredited),
                    Err(why) => return Ok(Credit::Unmatched(why)),
                },
            };
            let settles = state.in_flight.as_ref().is_some_and(|f| f.number == attempt.number);
            let payment = PaymentRecord {
                payment_intent: payment_intent.clone(),
                checkout: None,
                wallet: wallet.clone(),
                partner: ws.partner.clone(),
                account: Some(account.clone()),
                points: attempt.points,
                amount: attempt.amount,
                refunded_minor: 0,
                disputed_minor: 0,
                disputes: Vec::new(),
                clawed_back: Points::ZERO,
                version: 1,
            };
            let succeeded = super::events::event_write(
                &ws.partner,
                &ws.id,
                super::events::PartnerEventKind::TopupSucceeded,
                json!({ "payment": payment_intent.as_str(), "points": attempt.points, "amount": attempt.amount.format_major(),
                        "currency": attempt.amount.currency().code(), "auto": true }),
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
                    item: records::auto_topup_item(&ws.id, &done),
                    condition: version_is(Guard::AutoTopupVersion, state.version),
                });
            }
            let pi = payment_intent.as_str();
            let idempotency = IdempotencyKey::new(super::webhook::CREDIT_SCOPE, pi, pi.as_bytes())
                .map_err(|_| internal("a PaymentIntent id can't key a credit"))?;
            let posting = store::Posting {
                wallet: wallet.clone(),
                amount: PointsDelta::credit(attempt.points),
                overdraft: Overdraft::Forbid,
                kind: EntryKind::TopUp {
                    payment: pi.to_owned(),
                    topup_option_id: Some(attempt.option.clone()),
                    amount: attempt.amount.format_major(),
                    currency: attempt.amount.currency().code().to_owned(),
                },
                actor: actor.clone(),
                at: self.clock.now(),
                idempotency,
                partner: Some(ws.partner.clone()),
                also,
            };
            match self.store.post(posting, |_| json!({ "outcome": "credited" })).await {
                Ok(Outcome::Applied { .. }) => return Ok(Credit::Credited),
                Ok(Outcome::Replayed { .. }) => {
                    self.settle_if_in_flight(ws, attempt.number).await?;
                    return Ok(Credit::AlreadyCredited);
                }
                // Credited already (the payment exists): settle the attempt if still open.
                Err(StoreError::ConditionFailed { failed }) if failed.contains(Guard::PaymentNew) => {
                    self.settle_if_in_flight(ws, attempt.number).await?;
                    return Ok(Credit::AlreadyCredited);
                }
                // The setting moved meanwhile: read it again.
                Err(StoreError::ConditionFailed { .. }) => continue,
                Ok(other) => return Err(internal(format!("an auto top-up credit came to {other:?}"))),
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// Whether the PaymentIntent is credited already, to `wallet`.
    pub(super) async fn credited_to(&self, pi: &PaymentIntentId, wallet: &WalletId) -> Result<bool, OpError> {
        let Some(item) = self.store.get(&keys::payment(pi)).await? else { return Ok(false) };
        Ok(&records::payment_from(&item)?.wallet == wallet)
    }

    async fn settle_if_in_flight(&self, ws: &Workspace, number: u64) -> Result<(), OpError> {
        self.update_auto_topup(ws, |a| a.in_flight.as_ref().is_some_and(|f| f.number == number).then(|| a.succeeded()))
            .await
            .map(drop)
    }

    async fn topup_processing(&self, ws: &Workspace, number: u64, pi: &PaymentIntentId) -> Result<(), OpError> {
        self.update_auto_topup(ws, |a| {
            let mut next = a.clone();
            let f = next.in_flight.as_mut().filter(|f| f.number == number)?;
            f.payment_intent = Some(pi.to_string());
            Some(next)
        })
        .await
        .map(drop)
    }

    /// Records a failure: of the attempt `number` if it is still in flight, or of an attempt
    /// that could not start (`None`).
    pub(super) async fn topup_failed(&self, ws: &Workspace, number: Option<u64>, code: &str) -> Result<(), OpError> {
        let now = self.clock.now();
        let w = &ws.id;
        self.update_auto_topup(ws, |a| {
            let ours = match number {
                Some(n) => a.in_flight.as_ref().is_some_and(|f| f.number == n),
                None => a.in_flight.is_none(),
            };
            if ours {
                tracing::warn!(workspace = %w, code, failures = a.consecutive_failures + 1, "auto top-up failed");
            }
            ours.then(|| a.failed(code, now))
        })
        .await
        .map(drop)
    }

    /// Read, change (`None`: leave it), write with the version check; again on a race. A new
    /// failure is a `topup.failed` event for the partner, a switch-off `autotopup.disabled`: in
    /// the same transaction. `true` if it wrote.
    async fn update_auto_topup(
        &self,
        ws: &Workspace,
        change: impl Fn(&AutoTopup) -> Option<AutoTopup>,
    ) -> Result<bool, OpError> {
        use super::events::{PartnerEventKind, event_write};
        let w = &ws.id;
        for _ in 0..MAX_OP_ATTEMPTS {
            let current = self.auto_topup(w).await?;
            let Some(next) = change(&current) else { return Ok(false) };
            let next = AutoTopup { version: current.version + 1, ..next };
            let mut writes = vec![Write::Put {
                item: records::auto_topup_item(w, &next),
                condition: version_is(Guard::AutoTopupVersion, current.version),
            }];
            let now = self.clock.now();
            if let Some(f) = next.last_failure.as_ref().filter(|_| next.last_failure != current.last_failure) {
                let data = json!({ "code": f.code, "consecutive_failures": next.consecutive_failures,
                                   "next_attempt_after": next.next_attempt_after.map(rfc3339) });
                writes.push(event_write(&ws.partner, w, PartnerEventKind::TopupFailed, data, now));
            }
            if current.enabled && !next.enabled && next.disabled_reason.is_some() {
                let data = json!({ "reason": next.disabled_reason });
                writes.push(event_write(&ws.partner, w, PartnerEventKind::AutotopupDisabled, data, now));
            }
            match self.store.write(writes).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// `payment_intent.succeeded | payment_failed` of an off-session top-up (from the webhook):
    /// a payment that settled after the renewal moved on, or whose first answer was lost. Its
    /// metadata (workspace, attempt number) only finds the stored attempt; what is credited or
    /// recorded as failed is that attempt, if the payment matches it. Anything else is logged
    /// and ignored, with nothing written.
    pub(super) async fn on_auto_topup_event(
        &self,
        succeeded: bool,
        account: &AccountId,
        pi: &PaymentIntentObject,
        event_id: &str,
    ) -> Result<super::WebhookOutcome, OpError> {
        use super::WebhookOutcome;
        let named = pi.metadata.get(metadata::WORKSPACE).and_then(|w| WorkspaceId::parse(w).ok());
        let (Some(w), Some(number)) = (named, named_attempt(pi)) else {
            return Ok(unmatched(event_id, &pi.id, "", &Unmatched::NoLookupKey));
        };
        let ws = match self.workspace(&w).await {
            Ok(ws) => ws,
            Err(OpError::NotFound(_)) => {
                tracing::warn!(event = event_id, payment_intent = %pi.id, "an auto top-up of a workspace we don't have");
                return Ok(WebhookOutcome::Ignored);
            }
            Err(e) => return Err(e),
        };
        let connection = self.stripe_connection(&ws.partner).await?;
        if connection.as_ref().map(|c| &c.account) != Some(account) {
            // Another partner's PaymentIntent naming this workspace.
            tracing::warn!(event = event_id, payment_intent = %pi.id, workspace = %ws.id, account = %account,
                "an auto top-up from another account than the workspace's partner's: ignored");
            return Ok(WebhookOutcome::Ignored);
        }
        if !succeeded {
            let failure = FailedPayment::new(number, pi, self.clock.now());
            if self.update_auto_topup(&ws, |a| failure.record(a)).await? {
                tracing::warn!(workspace = %ws.id, code = failure.code, attempt = number, "auto top-up failed");
                return Ok(WebhookOutcome::Recorded);
            }
            return Ok(unmatched(event_id, &pi.id, ws.id.as_str(), &failure.why()));
        }
        let actor = Actor::Stripe(event_id.to_owned());
        Ok(match self.credit_auto_topup(&ws, account, Paid::Event { number, pi }, &pi.id, actor).await? {
            Credit::Credited => WebhookOutcome::Credited,
            Credit::AlreadyCredited => WebhookOutcome::AlreadyCredited,
            Credit::Unmatched(why) => unmatched(event_id, &pi.id, ws.id.as_str(), &why),
        })
    }
}

/// A `payment_intent.payment_failed` of an auto top-up (or partner refill): it fails the attempt
/// in flight it matches ([`match_attempt`]), and remembers why the last state it was tried on
/// matched nothing (the change may run once per read of a retried update).
pub(super) struct FailedPayment<'a> {
    number: u64,
    pi: &'a PaymentIntentObject,
    pub(super) code: String,
    now: OffsetDateTime,
    why: std::sync::Mutex<Option<Unmatched>>,
}

impl<'a> FailedPayment<'a> {
    pub(super) fn new(number: u64, pi: &'a PaymentIntentObject, now: OffsetDateTime) -> Self {
        let code = pi.failure_code().unwrap_or("payment_failed").to_owned();
        Self { number, pi, code, now, why: std::sync::Mutex::new(None) }
    }

    /// The state after the failure, or `None` when `a` has no matching attempt in flight.
    pub(super) fn record(&self, a: &AutoTopup) -> Option<AutoTopup> {
        match match_attempt(a.in_flight.as_ref(), self.number, self.pi, false) {
            Ok(_) => Some(a.failed(&self.code, self.now)),
            Err(e) => {
                *self.why.lock().expect("not poisoned") = Some(e);
                None
            }
        }
    }

    /// Why nothing was recorded.
    pub(super) fn why(self) -> Unmatched {
        self.why.into_inner().expect("not poisoned").unwrap_or(Unmatched::NothingInFlight { named: self.number })
    }
}

/// Logs why a PaymentIntent event of an auto top-up (or partner refill) was not applied; Stripe
/// is answered 200 `ignored`, so it stops delivering it.
pub(super) fn unmatched(event_id: &str, pi: &PaymentIntentId, wallet: &str, why: &Unmatched) -> super::WebhookOutcome {
    tracing::warn!(event = event_id, payment_intent = %pi, wallet, reason = %why,
        "a payment that matches no stored attempt: nothing credited");
    super::WebhookOutcome::Ignored
}

fn topup_metadata(ws: &Workspace, attempt: &TopupAttempt) -> Result<Metadata, OpError> {
    let mut m = Metadata::new();
    for (k, v) in [
        (metadata::WORKSPACE, ws.id.to_string()),
        (metadata::PARTNER, ws.partner.to_string()),
        (metadata::POINTS, attempt.points.to_string()),
        (metadata::TOPUP_OPTION, attempt.option.to_string()),
        (metadata::SOURCE, SOURCE_AUTO_TOPUP.to_owned()),
        (ATTEMPT_KEY, attempt.number.to_string()),
    ] {
        m.insert(k, &v).map_err(|e| internal(e.to_string()))?;
    }
    Ok(m)
}

/// An auto top-up's (or a partner refill's) item is at `version`, under `guard`.
pub(super) fn version_is(guard: Guard, version: u64) -> Condition {
    if version == 0 { Condition::not_exists(guard) } else { Condition::equals(guard, "version", Attr::n(version)) }
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use domain::Currency;

    fn attempt(number: u64, payment_intent: Option<&str>) -> TopupAttempt {
        TopupAttempt {
            number,
            option: TopupOptionId::parse("to_small").unwrap(),
            quantity: 2,
            points: Points::parse("20").unwrap(),
            amount: Money::from_minor(200, Currency::parse("usd").unwrap()).unwrap(),
            started_at: datetime!(2026-05-01 06:00 UTC),
            payment_intent: payment_intent.map(str::to_owned),
        }
    }

    fn pi(amount: i64, received: Option<i64>, currency: &str) -> PaymentIntentObject {
        serde_json::from_value(json!({
            "id": "pi_1", "created": 1, "status": "succeeded", "amount": amount, "amount_received": received,
            "currency": currency, "metadata": { "attempt": "3", "points": "5000000" }
        }))
        .unwrap()
    }

    #[test]
    fn an_event_matches_only_the_attempt_in_flight_it_pays_exactly() {
        let stored = attempt(3, None);
        let paid = pi(200, Some(200), "usd");
        assert_eq!(match_attempt(Some(&stored), 3, &paid, true), Ok(&stored));
        // The currency's case is Stripe's: any case names the same currency.
        assert_eq!(match_attempt(Some(&stored), 3, &pi(200, Some(200), "USD"), true), Ok(&stored));
        // A failed one is matched by what it asked for (nothing was received).
        assert_eq!(match_attempt(Some(&stored), 3, &pi(200, Some(0), "usd"), false), Ok(&stored));
        assert_eq!(match_attempt(None, 3, &paid, true), Err(Unmatched::NothingInFlight { named: 3 }));
        assert_eq!(
            match_attempt(Some(&stored), 4, &paid, true),
            Err(Unmatched::OtherAttempt { named: 4, in_flight: 3 })
        );
        assert_eq!(
            match_attempt(Some(&stored), 3, &pi(50, Some(50), "usd"), true),
            Err(Unmatched::Amount { paid_minor: Some(50), stored_minor: 200 })
        );
        assert_eq!(
            match_attempt(Some(&stored), 3, &pi(200, None, "usd"), true),
            Err(Unmatched::Amount { paid_minor: None, stored_minor: 200 }),
            "a succeeded PaymentIntent that says nothing of what it received"
        );
        assert_eq!(
            match_attempt(Some(&stored), 3, &pi(200, Some(200), "eur"), true),
            Err(Unmatched::Currency { paid: "eur".into(), stored: "usd" })
        );
        let processing = attempt(3, Some("pi_other"));
        assert_eq!(match_attempt(Some(&processing), 3, &paid, true), Err(Unmatched::OtherPaymentIntent));
        let known = attempt(3, Some("pi_1"));
        assert_eq!(match_attempt(Some(&known), 3, &paid, true), Ok(&known));
        assert_eq!(named_attempt(&paid), Some(3));
    }
}
