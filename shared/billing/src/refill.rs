//! The refill engine: an off-session charge of a payer's saved card when its wallet runs low,
//! on the rails of `domain::autotopup`. A payer is a workspace (auto top-up: its wallet,
//! charged on its partner's connected account with the card its last checkout saved) or a
//! partner (auto-refill: its own wallet, charged on the platform's account with the card its
//! last wallet checkout saved). For both, this module:
//!
//! - records the attempt *before* the charge and charges under the key
//!   `<payer's prefix>:<payer>:<attempt number>`: numbers never repeat for a payer, so a crash
//!   after the charge charges again under the same key, which Stripe answers with the first
//!   charge;
//! - keeps at most one attempt in flight, waits the hour after a decline, switches itself off
//!   after three in a row and holds an attempt that would pass the monthly cap (the rules are
//!   the domain's; the setting's version guards every change of them);
//! - writes `topup.failed`, `autotopup.disabled` and `topup.succeeded` in the transaction of the
//!   change they tell of;
//! - credits a paid attempt keyed by its PaymentIntent (`PAYMENT#pi`, the idempotency record
//!   `stripe-credit:<pi>`): the call that charged and the `payment_intent.succeeded` event
//!   credit once between them, and an event credits only the attempt in flight it matches.
//!
//! What differs between payers (the setting's item, what a charge buys, the views) is in
//! `autotopup.rs` and `partner_wallet.rs`; the card itself, saved and removed, in `cards.rs`.

use std::ops::ControlFlow;

use serde_json::json;
use time::{Duration, OffsetDateTime};

use domain::{
    Actor, AutoTopup, Currency, EntryKind, InFlight, Money, Overdraft, PartnerId, Points, PointsDelta, StartError,
    TopupAttempt, TopupOption, TopupOptionId, WalletId, Workspace,
};
use store::records::{self, PaymentRecord, rfc3339};
use store::{Attr, Condition, Guard, IdempotencyKey, Item, Outcome, Posting, StoreError, Table, Write, keys};
use stripe_gateway::event::{PaymentIntentObject, metadata};
use stripe_gateway::gateway::{Account, Metadata, OffSessionCharge, OffSessionOutcome};
use stripe_gateway::ids::{AccountId, ChargeId, CustomerId, PaymentIntentId, PaymentMethodId, ReceiptId};

use super::events::{PartnerEventKind, wallet_event_write};
use super::payments::stripe_key;
use super::{Billing, MAX_OP_ATTEMPTS, OpError, WebhookOutcome};

/// An attempt in flight that long without an answer is taken up again by the next refill.
pub const REFILL_RESUME_AFTER: Duration = Duration::minutes(2);
/// The metadata key carrying the attempt number.
pub const ATTEMPT_KEY: &str = "attempt";

/// Whose wallet a refill fills, and whose card pays for it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Payer<'a> {
    /// A workspace's wallet, paid on its partner's connected account.
    Workspace(&'a Workspace),
    /// A partner's own wallet, paid on the platform's account.
    Partner(&'a PartnerId),
}

impl Payer<'_> {
    pub(super) fn partner(self) -> PartnerId {
        match self {
            Payer::Workspace(ws) => ws.partner.clone(),
            Payer::Partner(p) => p.clone(),
        }
    }

    pub(super) fn wallet(self) -> WalletId {
        match self {
            Payer::Workspace(ws) => WalletId::Workspace(ws.id.clone()),
            Payer::Partner(p) => WalletId::Partner(p.clone()),
        }
    }

    /// The guard of the payer's setting: its version as read.
    fn setting_guard(self) -> Guard {
        match self {
            Payer::Workspace(_) => Guard::AutoTopupVersion,
            Payer::Partner(_) => Guard::RefillVersion,
        }
    }

    fn setting_item(self, setting: &Setting) -> Item {
        match self {
            Payer::Workspace(ws) => records::auto_topup_item(&ws.id, &setting.auto),
            Payer::Partner(p) => records::partner_refill_item(p, &setting.auto, setting.amount.as_ref()),
        }
    }

    /// The charge's idempotency key, unique per payer and attempt.
    fn charge_key(self, number: u64) -> String {
        match self {
            Payer::Workspace(ws) => format!("autotopup:{}:{number}", ws.id),
            Payer::Partner(p) => format!("partner-refill:{p}:{number}"),
        }
    }

    fn charge_description(self, attempt: &TopupAttempt) -> String {
        match self {
            Payer::Workspace(_) => attempt.description.clone().unwrap_or_else(|| {
                // An attempt stored before attempts kept their description says what it said then.
                format!("Auto top-up: {} points", attempt.points)
            }),
            Payer::Partner(_) => format!("Partner wallet refill: {}", attempt.amount),
        }
    }

    fn charge_metadata(self, attempt: &TopupAttempt) -> Result<Metadata, OpError> {
        let (source, mut pairs) = match self {
            Payer::Workspace(ws) => (
                super::autotopup::SOURCE_AUTO_TOPUP,
                vec![
                    (metadata::WORKSPACE, ws.id.to_string()),
                    (metadata::PARTNER, ws.partner.to_string()),
                    (metadata::POINTS, attempt.points.to_string()),
                    (metadata::TOPUP_OPTION, attempt.option.to_string()),
                ],
            ),
            Payer::Partner(p) => (
                super::partner_wallet::SOURCE_PARTNER_REFILL,
                vec![(metadata::PARTNER, p.to_string()), (metadata::POINTS, attempt.points.to_string())],
            ),
        };
        pairs.extend([(metadata::SOURCE, source.to_owned()), (ATTEMPT_KEY, attempt.number.to_string())]);
        let mut m = Metadata::new();
        for (k, v) in pairs {
            m.insert(k, &v).map_err(internal)?;
        }
        Ok(m)
    }

    /// Who the ledger names for a refill that this service's own charge paid.
    fn actor(self) -> Actor {
        let name = match self {
            Payer::Workspace(_) => super::autotopup::AUTO_TOPUP_ACTOR,
            Payer::Partner(_) => super::partner_wallet::PARTNER_REFILL_ACTOR,
        };
        Actor::System(name.into())
    }

    /// The top-up option a credit's ledger entry names (a partner refills by an amount), and the
    /// partner whose cross-workspace ledger lists it.
    fn ledger_names(self, attempt: &TopupAttempt) -> (Option<TopupOptionId>, Option<PartnerId>) {
        match self {
            // Points at the rate name no option, as a checkout at the rate doesn't.
            Payer::Workspace(ws) => ((!attempt.at_rate()).then(|| attempt.option.clone()), Some(ws.partner.clone())),
            Payer::Partner(_) => (None, None),
        }
    }
}

/// A payer's auto top-up as stored: the rules' state, and what one refill charges (a
/// partner's; a workspace charges its chosen top-up option).
#[derive(Debug, Clone, Default)]
pub(super) struct Setting {
    pub(super) auto: AutoTopup,
    pub(super) amount: Option<Money>,
}

impl Setting {
    /// `auto` as the next version of this setting.
    pub(super) fn next(&self, auto: AutoTopup) -> Setting {
        Setting { auto: AutoTopup { version: self.auto.version + 1, ..auto }, amount: self.amount }
    }

    /// The write of `next` over this setting, as read: the condition every change of a setting
    /// carries, so that two changes made from one read never both land.
    pub(super) fn replaced_by(&self, payer: Payer<'_>, next: &Setting) -> Write {
        Write::Put { item: payer.setting_item(next), condition: version_is(payer.setting_guard(), self.auto.version) }
    }
}

/// A card saved for off-session charges, and the account it is saved on (`None`: the
/// platform's own).
#[derive(Debug, Clone)]
pub(super) struct Card {
    pub(super) account: Option<AccountId>,
    pub(super) customer: CustomerId,
    pub(super) payment_method: PaymentMethodId,
}

impl Card {
    fn account(&self) -> Account<'_> {
        self.account.as_ref().map_or(Account::Platform, Account::Connected)
    }
}

/// What an auto top-up's charge tells the customer: `Auto top-up: Starter pack (500 credits)`,
/// `Auto top-up: 2 x Starter pack (1000 credits)` for two of the option.
fn auto_topup_description(label: &str, attempt: &TopupAttempt, unit: &str) -> String {
    if attempt.at_rate() {
        // Points at the credit rate: what they come to, however many times the setting's.
        return format!("Auto top-up: {}", super::payments::in_units(attempt.points, unit));
    }
    let times = if attempt.quantity > 1 { format!("{} x ", attempt.quantity) } else { String::new() };
    format!("Auto top-up: {times}{}", super::payments::option_text(label, attempt.points, unit))
}

/// What a new attempt would buy, as the payer's setting and its partner's offer stand now.
pub(super) enum Offer {
    /// The option, and what the customer's texts call its points: the partner's name for them,
    /// for a workspace; none for the partner wallet, whose charge names the money.
    Buy(TopupOptionId, TopupOption, Option<String>),
    /// Nothing is set to buy: no attempt, no failure.
    Nothing,
    /// What is set can't be bought any more: a failure with this code.
    Refused(&'static str),
}

/// What asks for a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// A renewal's shortfall of these points: an attempt in flight that Stripe has not accepted
    /// is taken up at once, and losing the race to start one is a conflict.
    Renewal(Points),
    /// A debit that left the balance under the threshold: an attempt in flight is left to the
    /// call charging it for [`REFILL_RESUME_AFTER`], and so is one another call started first.
    Threshold,
}

impl Trigger {
    fn leave_in_flight(self) -> Option<Duration> {
        match self {
            Trigger::Renewal(_) => None,
            Trigger::Threshold => Some(REFILL_RESUME_AFTER),
        }
    }
}

/// What a refill (or a renewal's auto top-up) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TopupResult {
    /// Off, waiting out the hour after a failure, held by the cap, or nothing to charge with.
    NotTried,
    /// Paid and credited.
    Credited,
    /// Accepted by Stripe, the money arrives later (the webhook credits it).
    Pending,
    /// Declined (or could not be made); recorded.
    Failed,
}

/// How a paid attempt reached its credit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Paid<'a> {
    /// This run's own charge of the attempt came back succeeded: Stripe's answer to our request,
    /// under the attempt's key, for the attempt as it was stored before the charge, and the
    /// charge it made.
    Charge { attempt: &'a TopupAttempt, charge: Option<&'a ChargeId> },
    /// A `payment_intent.succeeded` event naming attempt `number` in its metadata: credited only
    /// as the attempt in flight under that number stored it, if the payment matches it.
    Event { number: u64, pi: &'a PaymentIntentObject },
}

impl Paid<'_> {
    /// The receipt the customer got for the payment: its charge's, whichever way it was heard of.
    fn receipt(self) -> Option<ReceiptId> {
        match self {
            Paid::Charge { charge, .. } => charge.cloned().map(ReceiptId::Charge),
            Paid::Event { pi, .. } => pi.latest_charge.clone().map(ReceiptId::Charge),
        }
    }
}

/// The payment that paid an attempt: its PaymentIntent, and the receipt Stripe gave for it.
#[derive(Debug, Clone)]
struct PaidBy<'a> {
    payment_intent: &'a PaymentIntentId,
    receipt: Option<ReceiptId>,
}

/// What a credit of a paid attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Credit {
    /// Credited now, with the attempt's amount.
    Credited(Money),
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
fn match_attempt<'a>(
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

/// The payer (metadata `key`, read by `parse`) and attempt number a refill's PaymentIntent names
/// (lookup keys, nothing more); `None` when it names either badly or not at all.
pub(super) fn named_refill<P>(
    pi: &PaymentIntentObject,
    key: &str,
    parse: impl FnOnce(&str) -> Option<P>,
) -> Option<(P, u64)> {
    let payer = parse(pi.metadata.get(key)?)?;
    Some((payer, pi.metadata.get(ATTEMPT_KEY)?.parse().ok()?))
}

/// A refill event whose PaymentIntent names no payer or attempt: ignored, with a warning.
pub(super) fn unnamed_refill(event_id: &str, pi: &PaymentIntentObject) -> WebhookOutcome {
    unmatched(event_id, &pi.id, "", &Unmatched::NoLookupKey)
}

/// The state both payers' views show; each adds what it buys (`topup_option_id`, `amount`).
/// A refill setting as its payer sees it: the workspace's auto top-up, or the partner wallet's
/// auto-refill with its amount.
#[derive(Debug, Clone, PartialEq)]
pub struct RefillState {
    pub setting: AutoTopup,
    /// What one refill of the partner wallet buys; none for a workspace (its option says).
    pub amount: Option<Money>,
    pub card_saved: bool,
    /// What the refills charged in the calendar month of `now`, in the cap's currency.
    pub spent_this_month: Option<Money>,
}

impl RefillState {
    pub(super) fn new(setting: &Setting, card_saved: bool, now: OffsetDateTime) -> Self {
        Self {
            setting: setting.auto.clone(),
            amount: setting.amount,
            card_saved,
            spent_this_month: setting.auto.spent_this_month(now),
        }
    }
}

impl<T: Table> Billing<T> {
    pub(super) async fn refill_setting(&self, payer: Payer<'_>) -> Result<Setting, OpError> {
        match payer {
            Payer::Workspace(ws) => Ok(Setting { auto: self.auto_topup(&ws.id).await?, amount: None }),
            Payer::Partner(p) => self.partner_refill(p).await,
        }
    }

    async fn refill_card(&self, payer: Payer<'_>) -> Result<Option<Card>, OpError> {
        match payer {
            Payer::Workspace(ws) => self.saved_card(ws).await,
            Payer::Partner(p) => self.partner_card(p).await,
        }
    }

    async fn refill_offer(&self, payer: Payer<'_>, setting: &Setting) -> Result<Offer, OpError> {
        match payer {
            Payer::Workspace(ws) => self.topup_offer(ws, &setting.auto).await,
            Payer::Partner(_) => super::partner_wallet::refill_offer(setting.amount),
        }
    }

    /// On a shortfall: charges the payer's saved card for enough of what it buys, once. An
    /// attempt in flight is taken up again (the same charge, under its key), unless `trigger`
    /// leaves it to the call charging it right now.
    pub(super) async fn try_refill(&self, payer: Payer<'_>, trigger: Trigger) -> Result<TopupResult, OpError> {
        let setting = self.refill_setting(payer).await?;
        let attempt = match setting.auto.in_flight_at(self.clock.now(), trigger.leave_in_flight()) {
            InFlight::Pending => return Ok(TopupResult::Pending),
            InFlight::Busy => return Ok(TopupResult::NotTried),
            InFlight::Stalled(attempt) => attempt.clone(),
            InFlight::Idle => match self.start_refill(payer, &setting, trigger).await? {
                ControlFlow::Continue(attempt) => attempt,
                ControlFlow::Break(result) => return Ok(result),
            },
        };
        let Some(card) = self.refill_card(payer).await? else {
            self.refill_failed(payer, Some(attempt.number), "no_saved_card").await?;
            return Ok(TopupResult::Failed);
        };
        self.charge_refill(payer, &attempt, &card).await
    }

    /// Records a new attempt before its charge, under the version of `setting`: a setting that
    /// moved meanwhile starts nothing. `Break` with what it came to when none starts.
    async fn start_refill(
        &self,
        payer: Payer<'_>,
        setting: &Setting,
        trigger: Trigger,
    ) -> Result<ControlFlow<TopupResult, TopupAttempt>, OpError> {
        let now = self.clock.now();
        if !setting.auto.may_attempt(now) {
            return Ok(ControlFlow::Break(TopupResult::NotTried));
        }
        // A debit's balance is stale once another call's refill has been credited and settled
        // (one transaction) since: read after the setting, the wallet shows that credit.
        let shortfall = match trigger {
            Trigger::Renewal(shortfall) => shortfall,
            Trigger::Threshold => {
                let balance = self.store.wallet(&payer.wallet()).await?.balance;
                match setting.auto.refill_shortfall(balance).map_err(internal)? {
                    Some(shortfall) => shortfall,
                    None => return Ok(ControlFlow::Break(TopupResult::NotTried)),
                }
            }
        };
        let (id, option, unit) = match self.refill_offer(payer, setting).await? {
            Offer::Buy(id, option, unit) => (id, option, unit),
            Offer::Nothing => return Ok(ControlFlow::Break(TopupResult::NotTried)),
            Offer::Refused(code) => {
                self.refill_failed(payer, None, code).await?;
                return Ok(ControlFlow::Break(TopupResult::Failed));
            }
        };
        // One read of the card, for whether there is one and whether it lasts.
        let (card, notice) = self.refill_card_and_notice(payer, now).await?;
        if card.is_none() {
            self.refill_failed(payer, None, "no_saved_card").await?;
            return Ok(ControlFlow::Break(TopupResult::Failed));
        }
        let started = match setting.auto.start(id, &option, shortfall, now) {
            Ok(mut started) => {
                if let (Some(attempt), Some(unit)) = (started.in_flight.as_mut(), unit) {
                    attempt.description = Some(auto_topup_description(option.label(), attempt, &unit));
                }
                setting.next(started)
            }
            // Not a failure of the card: nothing is charged until the month turns (or the cap is
            // raised), and the payer sees why in `spent_this_month`.
            Err(StartError::MonthlyCap { cap, spent }) => {
                tracing::info!(wallet = %payer.wallet(), cap = %cap, spent = %spent, "refill held by its monthly cap");
                return Ok(ControlFlow::Break(TopupResult::NotTried));
            }
            Err(e) => return Err(internal(e)),
        };
        let mut writes = vec![setting.replaced_by(payer, &started)];
        writes.extend(notice);
        match self.store.write(writes).await {
            Ok(()) => Ok(ControlFlow::Continue(started.auto.in_flight.expect("just started"))),
            Err(StoreError::ConditionFailed { .. }) => match trigger {
                Trigger::Threshold => Ok(ControlFlow::Break(TopupResult::NotTried)),
                Trigger::Renewal(_) => Err(OpError::Conflict),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Charges `card` for the attempt (stored before) and records what came of it.
    async fn charge_refill(
        &self,
        payer: Payer<'_>,
        attempt: &TopupAttempt,
        card: &Card,
    ) -> Result<TopupResult, OpError> {
        let charge = OffSessionCharge {
            customer: card.customer.clone(),
            payment_method: card.payment_method.clone(),
            amount: attempt.amount,
            description: payer.charge_description(attempt),
            metadata: payer.charge_metadata(attempt)?,
        };
        let key = stripe_key(payer.charge_key(attempt.number))?;
        let outcome = self.payments()?.gateway()?.charge_off_session(card.account(), &key, &charge).await;
        tracing::info!(wallet = %payer.wallet(), attempt = attempt.number, amount = %attempt.amount.format_major(),
            currency = attempt.amount.currency().code(), outcome = ?outcome, "refill charge");
        let code = match outcome {
            Ok(OffSessionOutcome::Succeeded { payment_intent, charge }) => {
                let paid = Paid::Charge { attempt, charge: charge.as_ref() };
                self.credit_refill(payer, card.account.as_ref(), paid, &payment_intent, payer.actor()).await?;
                return Ok(TopupResult::Credited);
            }
            Ok(OffSessionOutcome::Processing { payment_intent }) => {
                self.refill_processing(payer, attempt.number, &payment_intent).await?;
                return Ok(TopupResult::Pending);
            }
            Ok(OffSessionOutcome::AuthenticationRequired { .. }) => "authentication_required".to_owned(),
            Ok(OffSessionOutcome::Declined { code, .. }) => code,
            // Stripe may have charged: keep the attempt, the next run asks again under its key.
            Err(e) if e.is_retryable() => return Err(OpError::StripeUnavailable(e)),
            Err(e) => {
                tracing::error!(wallet = %payer.wallet(), error = %e, "refill refused by Stripe");
                "stripe_error".to_owned()
            }
        };
        self.refill_failed(payer, Some(attempt.number), &code).await?;
        Ok(TopupResult::Failed)
    }

    /// Credits a paid attempt once (by its PaymentIntent) with the points and amount it stored
    /// before the charge, and settles the attempt in flight if it is this one. An event
    /// ([`Paid::Event`]) credits only the attempt in flight that it matches ([`match_attempt`]).
    /// `account`: the connected account it was paid on (a workspace's).
    async fn credit_refill(
        &self,
        payer: Payer<'_>,
        account: Option<&AccountId>,
        paid: Paid<'_>,
        payment_intent: &PaymentIntentId,
        actor: Actor,
    ) -> Result<Credit, OpError> {
        for _ in 0..MAX_OP_ATTEMPTS {
            let setting = self.refill_setting(payer).await?;
            let attempt = match paid {
                Paid::Charge { attempt, .. } => attempt,
                Paid::Event { number, pi } => match match_attempt(setting.auto.in_flight.as_ref(), number, pi, true) {
                    Ok(attempt) => attempt,
                    // A repeat, or the charge's own answer came first: the attempt is settled.
                    Err(_) if self.credited_to(payment_intent, &payer.wallet()).await? => {
                        return Ok(Credit::AlreadyCredited);
                    }
                    Err(why) => return Ok(Credit::Unmatched(why)),
                },
            };
            let by = PaidBy { payment_intent, receipt: paid.receipt() };
            let posting = self.refill_credit(payer, account, &setting, attempt, by, actor.clone())?;
            match self.store.post(posting, |_| json!({ "outcome": "credited" })).await {
                Ok(Outcome::Applied { .. }) => return Ok(Credit::Credited(attempt.amount)),
                // Credited already (the payment exists, or its record answers): settle the
                // attempt if it is still open.
                Ok(Outcome::Replayed { .. }) => {}
                Err(StoreError::ConditionFailed { failed }) if failed.contains(Guard::PaymentNew) => {}
                // The setting moved meanwhile: read it again.
                Err(StoreError::ConditionFailed { .. }) => continue,
                Ok(other) => return Err(internal(format!("a refill's credit came to {other:?}"))),
                Err(e) => return Err(e.into()),
            }
            let number = attempt.number;
            self.update_refill(payer, |a| {
                a.in_flight.as_ref().is_some_and(|f| f.number == number).then(|| a.succeeded())
            })
            .await?;
            return Ok(Credit::AlreadyCredited);
        }
        Err(OpError::Conflict)
    }

    /// The credit of a paid attempt: the wallet's entry, the payment's record (so it is credited
    /// once), `topup.succeeded`, and the attempt settled if it is the one in flight in `setting`.
    fn refill_credit(
        &self,
        payer: Payer<'_>,
        account: Option<&AccountId>,
        setting: &Setting,
        attempt: &TopupAttempt,
        by: PaidBy<'_>,
        actor: Actor,
    ) -> Result<Posting, OpError> {
        let PaidBy { payment_intent, receipt } = by;
        let now = self.clock.now();
        let wallet = payer.wallet();
        let payment = PaymentRecord::credited(
            payment_intent.clone(),
            wallet.clone(),
            payer.partner(),
            account.cloned(),
            attempt.points,
            attempt.amount,
        );
        let pi = payment_intent.as_str();
        let data = json!({ "payment": pi, "points": attempt.points, "amount": attempt.amount.format_major(),
                           "currency": attempt.amount.currency().code(), "auto": true });
        let mut also = vec![
            Write::Put { item: records::payment_item(&payment), condition: Condition::not_exists(Guard::PaymentNew) },
            wallet_event_write(&payer.partner(), &wallet, PartnerEventKind::TopupSucceeded, data, now),
        ];
        if setting.auto.in_flight.as_ref().is_some_and(|f| f.number == attempt.number) {
            also.push(setting.replaced_by(payer, &setting.next(setting.auto.succeeded())));
        }
        let named = receipt.as_ref().map(ReceiptId::to_string);
        also.extend(receipt.map(|r| super::receipts::receipt_write(r, &payment)));
        let (topup_option_id, partner) = payer.ledger_names(attempt);
        Ok(Posting {
            wallet,
            amount: PointsDelta::credit(attempt.points),
            overdraft: Overdraft::Forbid,
            kind: EntryKind::TopUp {
                payment: pi.to_owned(),
                topup_option_id,
                amount: attempt.amount.format_major(),
                currency: attempt.amount.currency().code().to_owned(),
                receipt: named,
            },
            actor,
            at: now,
            idempotency: IdempotencyKey::new(super::webhook::CREDIT_SCOPE, pi, pi.as_bytes())
                .map_err(|_| internal("a PaymentIntent id can't key a credit"))?,
            partner,
            in_partner_ledger: true,
            also,
        })
    }

    /// Whether the PaymentIntent is credited already, to `wallet`.
    pub(super) async fn credited_to(&self, pi: &PaymentIntentId, wallet: &WalletId) -> Result<bool, OpError> {
        let Some(item) = self.store.get(&keys::payment(pi)).await? else { return Ok(false) };
        Ok(&records::payment_from(&item)?.wallet == wallet)
    }

    /// Stripe accepted attempt `number`'s charge as `pi`, whose event settles it.
    async fn refill_processing(&self, payer: Payer<'_>, number: u64, pi: &PaymentIntentId) -> Result<(), OpError> {
        self.update_refill(payer, |a| {
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
    pub(super) async fn refill_failed(&self, payer: Payer<'_>, number: Option<u64>, code: &str) -> Result<(), OpError> {
        let now = self.clock.now();
        self.update_refill(payer, |a| {
            let ours = match number {
                Some(n) => a.in_flight.as_ref().is_some_and(|f| f.number == n),
                None => a.in_flight.is_none(),
            };
            if ours {
                tracing::warn!(wallet = %payer.wallet(), code, failures = a.consecutive_failures + 1, "refill failed");
            }
            ours.then(|| a.failed(code, now))
        })
        .await
        .map(drop)
    }

    /// Read, change (`None`: leave it), write with the version check; again on a race. A new
    /// failure is a `topup.failed` event for the partner, a switch-off `autotopup.disabled`, in
    /// the same transaction. `true` if it wrote.
    async fn update_refill(
        &self,
        payer: Payer<'_>,
        change: impl Fn(&AutoTopup) -> Option<AutoTopup>,
    ) -> Result<bool, OpError> {
        for _ in 0..MAX_OP_ATTEMPTS {
            let read = self.refill_setting(payer).await?;
            let Some(next) = change(&read.auto) else { return Ok(false) };
            let next = read.next(next);
            let mut writes = vec![read.replaced_by(payer, &next)];
            writes.extend(self.refill_events(payer, &read.auto, &next.auto));
            match self.store.write(writes).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// The events a change from `before` to `after` tells the partner of.
    fn refill_events(&self, payer: Payer<'_>, before: &AutoTopup, after: &AutoTopup) -> Vec<Write> {
        let (now, partner, wallet) = (self.clock.now(), payer.partner(), payer.wallet());
        let mut events = Vec::new();
        if let Some(f) = after.last_failure.as_ref().filter(|_| after.last_failure != before.last_failure) {
            let data = json!({ "code": f.code, "consecutive_failures": after.consecutive_failures,
                               "next_attempt_after": after.next_attempt_after.map(rfc3339) });
            events.push(wallet_event_write(&partner, &wallet, PartnerEventKind::TopupFailed, data, now));
        }
        if before.enabled && !after.enabled && after.disabled_reason.is_some() {
            let data = json!({ "reason": after.disabled_reason });
            events.push(wallet_event_write(&partner, &wallet, PartnerEventKind::AutotopupDisabled, data, now));
        }
        events
    }

    /// `payment_intent.succeeded | payment_failed` of the payer's attempt `number` (from the
    /// webhook): a payment that settled after the charge's call moved on, or whose first answer
    /// was lost. What is credited or recorded as failed is the stored attempt, if the payment
    /// matches it; anything else is logged and ignored, with nothing written.
    pub(super) async fn on_refill_event(
        &self,
        payer: Payer<'_>,
        account: Option<&AccountId>,
        succeeded: bool,
        number: u64,
        pi: &PaymentIntentObject,
        event_id: &str,
    ) -> Result<WebhookOutcome, OpError> {
        let wallet = payer.wallet().to_string();
        if !succeeded {
            let failure = FailedPayment::new(number, pi, self.clock.now());
            if self.update_refill(payer, |a| failure.record(a)).await? {
                tracing::warn!(wallet, code = failure.code, attempt = number, "refill failed");
                return Ok(WebhookOutcome::Recorded);
            }
            return Ok(unmatched(event_id, &pi.id, &wallet, &failure.why()));
        }
        let actor = Actor::Stripe(event_id.to_owned());
        Ok(match self.credit_refill(payer, account, Paid::Event { number, pi }, &pi.id, actor).await? {
            Credit::Credited(amount) => WebhookOutcome::Credited(amount),
            Credit::AlreadyCredited => WebhookOutcome::AlreadyCredited,
            Credit::Unmatched(why) => unmatched(event_id, &pi.id, &wallet, &why),
        })
    }
}

/// A `payment_intent.payment_failed` of a refill: it fails the attempt in flight it matches
/// ([`match_attempt`]), and remembers why the last state it was tried on matched nothing (the
/// change may run once per read of a retried update).
struct FailedPayment<'a> {
    number: u64,
    pi: &'a PaymentIntentObject,
    code: String,
    now: OffsetDateTime,
    why: std::sync::Mutex<Option<Unmatched>>,
}

impl<'a> FailedPayment<'a> {
    fn new(number: u64, pi: &'a PaymentIntentObject, now: OffsetDateTime) -> Self {
        let code = pi.failure_code().unwrap_or("payment_failed").to_owned();
        Self { number, pi, code, now, why: std::sync::Mutex::new(None) }
    }

    /// The state after the failure, or `None` when `a` has no matching attempt in flight.
    fn record(&self, a: &AutoTopup) -> Option<AutoTopup> {
        match match_attempt(a.in_flight.as_ref(), self.number, self.pi, false) {
            Ok(_) => Some(a.failed(&self.code, self.now)),
            Err(e) => {
                *self.why.lock().expect("not poisoned") = Some(e);
                None
            }
        }
    }

    /// Why nothing was recorded.
    fn why(self) -> Unmatched {
        self.why.into_inner().expect("not poisoned").unwrap_or(Unmatched::NothingInFlight { named: self.number })
    }
}

/// Logs why a PaymentIntent event of a refill was not applied; Stripe is answered 200
/// `ignored`, so it stops delivering it.
pub(super) fn unmatched(event_id: &str, pi: &PaymentIntentId, wallet: &str, why: &Unmatched) -> WebhookOutcome {
    tracing::warn!(event = event_id, payment_intent = %pi, wallet, reason = %why,
        "a payment that matches no stored attempt: nothing credited");
    WebhookOutcome::Ignored
}

/// A setting's or a customer record's condition, under `guard`: the version it was read at
/// (never written: not there yet).
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
            description: None,
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
        let points = |n: &str| n.parse::<u64>().ok();
        assert_eq!(named_refill(&paid, "points", points), Some((5_000_000, 3)));
        assert_eq!(named_refill(&paid, "workspace", points), None, "no payer named");
        assert_eq!(named_refill(&paid, "points", |_| None::<u64>), None, "a payer that does not parse");
    }

    #[test]
    fn a_refill_state_counts_the_month_of_now() {
        let usd = Currency::parse("usd").unwrap();
        let a = AutoTopup { monthly_cap: Some(Money::from_minor(50000, usd).unwrap()), ..AutoTopup::default() };
        let state = RefillState::new(&Setting { auto: a, amount: None }, true, datetime!(2026-05-01 06:00 UTC));
        assert_eq!(state.spent_this_month, Some(Money::from_minor(0, usd).unwrap()));
        assert!(state.card_saved);
    }
}
