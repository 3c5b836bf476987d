//! A payer's saved card: the one a workspace's auto top-up charges (on its partner's connected
//! account) or a partner's auto-refill (on the platform's account).
//!
//! - **Saved** by paying (a checkout saves its card: `payment_intent.succeeded` with
//!   `setup_future_usage=off_session`) or without paying: `POST /workspace/card` and
//!   `POST /partner/wallet/card` make a Checkout Session in setup mode, whose
//!   `setup_intent.succeeded` saves the card. Its brand, last 4 and expiry come in another
//!   event, `payment_method.attached` (and `payment_method.updated|automatically_updated` when
//!   its network renews it), which names only the customer: the payment method's own record
//!   (`PM#pm`) holds whichever half comes first, and the second completes the customer record.
//!   The webhook never asks Stripe. The last change wins: a save that Stripe reported before the
//!   record last changed, delivered late, changes nothing.
//! - **Shown**: `GET /workspace/card`, `GET /partner/wallet/card`.
//! - **Removed**: `DELETE` on the same paths. Detached on Stripe first, so that it can't be
//!   charged again whatever happens next; then, in one transaction, gone from the record, and
//!   the payer's auto top-up off with `autotopup.disabled` (code `card_removed`). A retry
//!   detaches again (done already is done) and writes.
//! - **Expiring**: a card that lapses before its wallet needs it (`domain::card`) raises
//!   `card.expiring` to the partner, once per card, in the transaction of the change that finds
//!   it: the card's save, auto top-up turned on, a refill starting, a workspace's renewal.
//!
//! The record's "last change" is Stripe's time (the event's `created`), and a removal's is the
//! real clock's: both real time, never the business clock that tests and demos move.

use serde_json::json;
use time::{Date, OffsetDateTime};

use domain::{CardDetails, PartnerId, WalletId, Workspace, WorkspaceId, card_needed_until};
use store::records::{self, PaymentMethodRecord, PlatformCustomer, StripeCustomer, rfc3339};
use store::{Condition, Guard, Snapshot, StoreError, Table, Write, keys};
use stripe_gateway::event::{Event, PaymentMethodObject, metadata};
use stripe_gateway::gateway::{Account, GatewayError, Metadata, NewSetupSession};
use stripe_gateway::ids::{AccountId, CheckoutId, CustomerId, PaymentMethodId};

use super::autotopup::CustomerRead;
use super::events::{PartnerEventKind, wallet_event_write};
use super::load::{Asker, fresh};
use super::payments::{CheckoutTerms, checkout_keys, stripe_error, stripe_key};
use super::refill::{Card, Payer, Setting, version_is};
use super::{Billing, MAX_OP_ATTEMPTS, Mutation, OpError, Replied, WebhookOutcome};

/// The metadata `source` of a Checkout Session that saves a card without paying.
pub const SOURCE_CARD: &str = "card";

/// Why auto top-up stopped when its card was removed: the event's `code`.
const CARD_REMOVED: &str = "card_removed";

/// A saved card as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    /// Brand, last 4 and expiry; `None` for a card saved before they were kept, or a payment
    /// method that is not a card.
    pub details: Option<CardDetails>,
    /// It lapses before its wallet needs it ([`domain::card_needed_until`]).
    pub expiring: bool,
}

/// A Checkout Session in setup mode, made: send the payer to `url` until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSession {
    pub checkout: CheckoutId,
    pub url: String,
    pub expires_at: OffsetDateTime,
}

/// What removing a card did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedCard {
    pub removed: SavedCard,
    /// Auto top-up (auto-refill) was on, and is off now.
    pub auto_topup_turned_off: bool,
}

/// Whose customer record keeps a card.
#[derive(Debug, Clone, Copy)]
pub(super) enum CardOwner<'a> {
    /// A workspace, as a customer on its partner's connected account.
    Workspace { w: &'a WorkspaceId, account: &'a AccountId },
    /// A partner, as the platform's own customer.
    Partner(&'a PartnerId),
}

/// A card as Stripe reported it saved: its customer and payment method, and when.
#[derive(Debug, Clone, Copy)]
pub(super) struct Saved<'a> {
    pub(super) customer: &'a CustomerId,
    pub(super) payment_method: &'a PaymentMethodId,
    /// The event's `created` (unix s).
    pub(super) at: i64,
}

/// The card fields both customer records keep.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct CardSlot {
    payment_method: Option<PaymentMethodId>,
    /// When the card last changed (unix s, real time).
    changed_at: Option<i64>,
    card: Option<CardDetails>,
    expiry_noticed: bool,
}

/// The customer record a card is kept on, with its owner, as read.
enum CustomerRecord<'a> {
    /// [`CustomerRead::customer`] is some.
    Workspace(&'a WorkspaceId, CustomerRead),
    Partner(&'a PartnerId, PlatformCustomer),
}

impl<'a> CardOwner<'a> {
    /// The connected account the card is on; `None`: the platform's own.
    fn account(self) -> Option<&'a AccountId> {
        match self {
            CardOwner::Workspace { account, .. } => Some(account),
            CardOwner::Partner(_) => None,
        }
    }

    /// As a payment method's record names its owner.
    fn ids(self) -> (Option<WorkspaceId>, Option<PartnerId>) {
        match self {
            CardOwner::Workspace { w, .. } => (Some(w.clone()), None),
            CardOwner::Partner(p) => (None, Some(p.clone())),
        }
    }
}

impl CustomerRecord<'_> {
    fn workspace_customer(read: &CustomerRead) -> &StripeCustomer {
        read.customer().expect("a workspace's record is one that was found")
    }

    fn customer(&self) -> &CustomerId {
        match self {
            CustomerRecord::Workspace(_, read) => &Self::workspace_customer(read).customer,
            CustomerRecord::Partner(_, c) => &c.customer,
        }
    }

    fn slot(&self) -> CardSlot {
        let (payment_method, changed_at, card, expiry_noticed) = match self {
            CustomerRecord::Workspace(_, read) => {
                let c = Self::workspace_customer(read);
                (&c.payment_method, c.payment_method_created, &c.card, c.expiry_noticed)
            }
            CustomerRecord::Partner(_, c) => (&c.payment_method, c.payment_method_created, &c.card, c.expiry_noticed),
        };
        CardSlot { payment_method: payment_method.clone(), changed_at, card: card.clone(), expiry_noticed }
    }

    /// The write that stores `slot` on the record, one version on, guarded by the version read.
    fn with(&self, slot: CardSlot) -> Write {
        let CardSlot { payment_method, changed_at: payment_method_created, card, expiry_noticed } = slot;
        match self {
            CustomerRecord::Workspace(w, read) => read.put(
                w,
                StripeCustomer {
                    payment_method,
                    payment_method_created,
                    card,
                    expiry_noticed,
                    ..Self::workspace_customer(read).clone()
                },
            ),
            CustomerRecord::Partner(p, c) => Write::Put {
                item: records::platform_customer_item(
                    p,
                    &PlatformCustomer {
                        payment_method,
                        payment_method_created,
                        card,
                        expiry_noticed,
                        version: c.version + 1,
                        ..c.clone()
                    },
                ),
                condition: version_is(Guard::CustomerVersion, c.version),
            },
        }
    }
}

/// A card to remove, as its operation read it.
struct Removal<'a> {
    /// Where the card is saved.
    account: Account<'a>,
    /// The detach's idempotency key (a retry of the request detaches under the same one).
    stripe_key: String,
    record: CustomerRecord<'a>,
    payer: Payer<'a>,
    /// The payer's auto top-up (auto-refill), turned off with its card.
    setting: Setting,
    need: Need,
}

/// What decides how long a wallet needs its card: whether it refills itself (auto top-up or
/// auto-refill on) and, for a workspace, its next renewal.
#[derive(Debug, Clone, Copy)]
pub(super) struct Need {
    pub(super) refills: bool,
    pub(super) renews_on: Option<Date>,
}

impl Need {
    fn until(self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        card_needed_until(now, self.refills, self.renews_on)
    }

    fn expiring(self, card: Option<&CardDetails>, now: OffsetDateTime) -> bool {
        self.until(now).zip(card).is_some_and(|(until, c)| c.lapses_before(until))
    }
}

/// `card.expiring` about `wallet`'s card, when it lapses before the wallet needs it and its
/// partner has not heard of this card yet: the event, with `slot` marked as told.
fn expiry_notice(
    p: &PartnerId,
    wallet: &WalletId,
    slot: &mut CardSlot,
    need: Need,
    now: OffsetDateTime,
) -> Option<Write> {
    let until = need.until(now)?;
    let card = slot.card.as_ref().filter(|c| c.lapses_before(until))?;
    if slot.expiry_noticed {
        return None;
    }
    let data = json!({
        "brand": card.brand(),
        "last4": card.last4(),
        "exp_month": card.exp_month(),
        "exp_year": card.exp_year(),
        "lapses_at": rfc3339(card.lapses_at()),
        "needed_until": rfc3339(until),
    });
    slot.expiry_noticed = true;
    Some(wallet_event_write(p, wallet, PartnerEventKind::CardExpiring, data, now))
}

/// `card.expiring` when a change of a workspace finds its saved card lapsing before the wallet
/// needs it, and the customer record's write marking it told. `at_key` is the workspace's
/// customer key as read; a customer on another account than `account` (the partner's now) has
/// no card auto top-up could charge, and one kept under an earlier key is left for its next
/// checkout to move.
pub(super) fn workspace_card_notice(
    ws: &Workspace,
    account: Option<&AccountId>,
    at_key: Option<&store::Item>,
    need: Need,
    now: OffsetDateTime,
) -> Result<Vec<Write>, OpError> {
    let slot = at_key.map(records::customer_slot_from).transpose()?;
    let Some((customer, version)) = slot.and_then(|s| Some((s.customer?, s.version))) else { return Ok(vec![]) };
    if account != Some(&customer.account) || customer.payment_method.is_none() {
        return Ok(vec![]);
    }
    let read = CustomerRead::at_key(customer, version);
    let record = CustomerRecord::Workspace(&ws.id, read);
    let mut slot = record.slot();
    let wallet = WalletId::Workspace(ws.id.clone());
    Ok(match expiry_notice(&ws.partner, &wallet, &mut slot, need, now) {
        Some(event) => vec![event, record.with(slot)],
        None => vec![],
    })
}

/// The same for a partner's card, from its customer key as read.
pub(super) fn partner_card_notice(
    p: &PartnerId,
    customer: Option<PlatformCustomer>,
    need: Need,
    now: OffsetDateTime,
) -> Vec<Write> {
    let Some(customer) = customer.filter(|c| c.payment_method.is_some()) else { return vec![] };
    let record = CustomerRecord::Partner(p, customer);
    let mut slot = record.slot();
    match expiry_notice(p, &WalletId::Partner(p.clone()), &mut slot, need, now) {
        Some(event) => vec![event, record.with(slot)],
        None => vec![],
    }
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

fn card_metadata(pairs: &[(&str, &str)]) -> Result<Metadata, OpError> {
    let mut meta = Metadata::new();
    for (k, v) in pairs {
        meta.insert(k, v).map_err(internal)?;
    }
    meta.insert(metadata::SOURCE, SOURCE_CARD).map_err(internal)?;
    Ok(meta)
}

impl<T: Table> Billing<T> {
    // ---- a workspace's card -----------------------------------------------------------------

    /// `POST /workspace/card`: a Checkout Session in setup mode on the partner's connected
    /// account, where the customer saves (or replaces) the card auto top-up charges, paying
    /// nothing. The card is saved when Stripe says so (`setup_intent.succeeded`).
    pub async fn create_card_session(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        m: Mutation<'_, CardSession>,
    ) -> Replied {
        let needed = |p: &PartnerId| checkout_keys(w, p);
        let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
        let payments = self.payments()?;
        let CheckoutTerms { connection, success_url, cancel_url, .. } = self.checkout_terms(&read, &ws.partner)?;
        let customer_read = self.customer_read(w, &connection.account, read.get(&keys::workspace_customer(w))).await?;
        let (customer, moved) = self.workspace_customer(&ws, &connection.account, &customer_read, payments).await?;
        let session = NewSetupSession {
            customer,
            currency: self.charge_currency(&read, &ws.partner)?,
            client_reference_id: ws.id.as_str().to_owned(),
            metadata: card_metadata(&[
                (metadata::WORKSPACE, ws.id.as_str()),
                (metadata::PARTNER, ws.partner.as_str()),
            ])?,
            description: format!("Card for auto top-up of {} ({})", ws.name, ws.id),
            success_url,
            cancel_url,
        };
        let key = stripe_key(format!("card:{}:{}", ws.id, m.key().fingerprint()))?;
        let created = payments
            .gateway()?
            .create_setup_session(Account::Connected(&connection.account), &key, &session)
            .await
            .map_err(|e| stripe_error("checkout.sessions.create", e))?;
        tracing::info!(workspace = %ws.id, checkout = %created.id, "card session created");
        let reply = m.answer(&CardSession { checkout: created.id, url: created.url, expires_at: created.expires_at });
        // The customer record moved meanwhile (a card saved): the caller tries again.
        self.commit(m.key(), moved.into_iter().collect(), reply, |_| OpError::Conflict).await
    }

    /// The currency a workspace's card will be charged in, which Stripe wants for a setup
    /// session: the partner's credit rate's, else its first top-up option's, else the
    /// deployment's.
    fn charge_currency(&self, read: &Snapshot, p: &PartnerId) -> Result<domain::Currency, OpError> {
        if let Some(rate) = super::load::credit_rate(read, p)? {
            return Ok(rate.rate().currency());
        }
        let options = super::load::topup_options(read, p)?;
        Ok(options.options.first().map_or(self.meters.currency(), |o| o.option.amount().currency()))
    }

    /// `GET /workspace/card`: the card auto top-up would charge, if one is saved on the
    /// partner's account as it is now.
    pub async fn workspace_card(&self, ws: &Workspace) -> Result<Option<SavedCard>, OpError> {
        let [at_key, auto, connection] = self
            .read([
                keys::workspace_customer(&ws.id),
                keys::workspace_auto_topup(&ws.id),
                keys::partner_stripe(&ws.partner),
            ])
            .await?;
        let connection = connection.as_ref().map(records::stripe_connection_from).transpose()?;
        let Some(connection) = self.usable(connection) else { return Ok(None) };
        let read = self.customer_read(&ws.id, &connection.account, at_key.as_ref()).await?;
        let Some(customer) = read.customer().filter(|c| c.payment_method.is_some()) else { return Ok(None) };
        let refills = auto.as_ref().map(records::auto_topup_from).transpose()?.is_some_and(|a| a.enabled);
        let need = Need { refills, renews_on: Some(ws.renews_on) };
        Ok(Some(self.shown(customer.card.clone(), need)))
    }

    fn shown(&self, details: Option<CardDetails>, need: Need) -> SavedCard {
        let expiring = need.expiring(details.as_ref(), self.clock.now());
        SavedCard { details, expiring }
    }

    /// `DELETE /workspace/card`: detaches the saved card on Stripe, then forgets it and turns
    /// auto top-up off (with `autotopup.disabled`), in one transaction.
    pub async fn remove_workspace_card(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        m: Mutation<'_, RemovedCard>,
    ) -> Replied {
        let needed =
            |p: &PartnerId| vec![keys::workspace_customer(w), keys::workspace_auto_topup(w), keys::partner_stripe(p)];
        let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
        let no_card = OpError::NotFound("card");
        let Some(connection) = self.usable(super::load::connection(&read, &ws.partner)?) else { return Err(no_card) };
        let customer_read = self.customer_read(w, &connection.account, read.get(&keys::workspace_customer(w))).await?;
        if customer_read.customer().is_none() {
            return Err(no_card);
        }
        let record = CustomerRecord::Workspace(w, customer_read);
        let auto = read.get(&keys::workspace_auto_topup(w)).map(records::auto_topup_from).transpose()?;
        let setting = Setting { auto: auto.unwrap_or_default(), amount: None };
        let need = Need { refills: setting.auto.enabled, renews_on: Some(ws.renews_on) };
        let removal = Removal {
            account: Account::Connected(&connection.account),
            stripe_key: format!("card-remove:{w}:{}", m.key().fingerprint()),
            record,
            payer: Payer::Workspace(&ws),
            setting,
            need,
        };
        self.remove_card(removal, m).await
    }

    // ---- the partner's card -----------------------------------------------------------------

    /// `POST /partner/wallet/card`: a Checkout Session in setup mode on the platform's account,
    /// where the partner saves (or replaces) the card its auto-refill charges, paying nothing.
    pub async fn create_partner_card_session(
        &self,
        p: &PartnerId,
        success_url: &str,
        cancel_url: &str,
        m: Mutation<'_, CardSession>,
    ) -> Replied {
        let read = fresh!(self.load_for_partner(p, m.key(), &[keys::partner_customer(p)]).await?);
        let payments = self.payments()?;
        super::load::partner_profile(&read, p)?;
        for (param, url) in [("success_url", success_url), ("cancel_url", cancel_url)] {
            domain::check_url(url).map_err(|e| OpError::invalid(param, e))?;
        }
        let stored = read.get(&keys::partner_customer(p)).map(records::platform_customer_from).transpose()?;
        let customer = self.partner_customer(p, stored, payments).await?;
        let session = NewSetupSession {
            customer,
            currency: self.meters.currency(),
            client_reference_id: p.as_str().to_owned(),
            metadata: card_metadata(&[(metadata::PARTNER, p.as_str())])?,
            description: format!("Card for the partner wallet's auto-refill of partner {p}"),
            success_url: success_url.to_owned(),
            cancel_url: cancel_url.to_owned(),
        };
        let key = stripe_key(format!("partner-card:{p}:{}", m.key().fingerprint()))?;
        let created = payments
            .gateway()?
            .create_setup_session(Account::Platform, &key, &session)
            .await
            .map_err(|e| stripe_error("checkout.sessions.create", e))?;
        tracing::info!(partner = %p, checkout = %created.id, "partner card session created");
        let reply = m.answer(&CardSession { checkout: created.id, url: created.url, expires_at: created.expires_at });
        self.commit(m.key(), vec![], reply, |_| OpError::Conflict).await
    }

    /// `GET /partner/wallet/card`: the card the partner wallet's auto-refill would charge.
    pub async fn partner_wallet_card(&self, p: &PartnerId) -> Result<Option<SavedCard>, OpError> {
        let [profile, customer, refill] =
            self.read([keys::partner_profile(p), keys::partner_customer(p), keys::partner_refill(p)]).await?;
        if profile.is_none() {
            return Err(OpError::NotFound("partner"));
        }
        let customer = customer.as_ref().map(records::platform_customer_from).transpose()?;
        let Some(customer) = customer.filter(|c| c.payment_method.is_some()) else { return Ok(None) };
        let refills = super::partner_wallet::refill_setting(refill.as_ref())?.auto.enabled;
        Ok(Some(self.shown(customer.card, Need { refills, renews_on: None })))
    }

    /// `DELETE /partner/wallet/card`: as [`Billing::remove_workspace_card`], for the partner
    /// wallet's card and its auto-refill.
    pub async fn remove_partner_card(&self, p: &PartnerId, m: Mutation<'_, RemovedCard>) -> Replied {
        let needed = [keys::partner_customer(p), keys::partner_refill(p)];
        let read = fresh!(self.load_for_partner(p, m.key(), &needed).await?);
        super::load::partner_profile(&read, p)?;
        let customer = read.get(&keys::partner_customer(p)).map(records::platform_customer_from).transpose()?;
        let customer = customer.ok_or(OpError::NotFound("card"))?;
        let setting = super::partner_wallet::refill_setting(read.get(&keys::partner_refill(p)))?;
        let need = Need { refills: setting.auto.enabled, renews_on: None };
        let removal = Removal {
            account: Account::Platform,
            stripe_key: format!("partner-card-remove:{p}:{}", m.key().fingerprint()),
            record: CustomerRecord::Partner(p, customer),
            payer: Payer::Partner(p),
            setting,
            need,
        };
        self.remove_card(removal, m).await
    }

    /// Detaches the card on Stripe, then commits its removal with auto top-up off.
    async fn remove_card(&self, removal: Removal<'_>, m: Mutation<'_, RemovedCard>) -> Replied {
        let Removal { account, stripe_key: stripe_key_text, record, payer, setting, need } = removal;
        let slot = record.slot();
        let Some(payment_method) = &slot.payment_method else { return Err(OpError::NotFound("card")) };
        let payments = self.payments()?;
        match payments.gateway()?.detach_payment_method(account, &stripe_key(stripe_key_text)?, payment_method).await {
            Ok(()) => {}
            // Gone on Stripe's side (the customer deleted it there): nothing left to detach.
            Err(GatewayError::InvalidRequest { code: Some(code), .. }) if code == "resource_missing" => {}
            Err(e) => return Err(stripe_error("payment_methods.detach", e)),
        }
        let now = self.clock.now();
        let removed = self.shown(slot.card.clone(), need);
        let cleared = CardSlot { changed_at: Some(OffsetDateTime::now_utc().unix_timestamp()), ..CardSlot::default() };
        // Its record goes with it: nobody's card any more.
        let forgotten = Write::Delete { key: keys::payment_method(payment_method), condition: Condition::Always };
        let mut writes = vec![record.with(cleared), forgotten];
        let turned_off = setting.auto.enabled;
        if turned_off {
            let next =
                setting.next(setting.auto.turned_off_because("the card was removed; save a card and turn it on again"));
            writes.push(setting.replaced_by(payer, &next));
            let data = json!({ "code": CARD_REMOVED, "reason": next.auto.disabled_reason });
            writes.push(wallet_event_write(
                &payer.partner(),
                &payer.wallet(),
                PartnerEventKind::AutotopupDisabled,
                data,
                now,
            ));
        }
        tracing::info!(wallet = %payer.wallet(), auto_topup_turned_off = turned_off, "card removed");
        let reply = m.answer(&RemovedCard { removed, auto_topup_turned_off: turned_off });
        // A card saved, or the setting changed, meanwhile: the caller tries again (the detach
        // replays under the same key).
        self.commit(m.key(), writes, reply, |_| OpError::Conflict).await
    }

    /// The card a refill of `payer` would charge, and `card.expiring` with its record's write
    /// when that card won't last the month (or, for a workspace, to its next renewal): one read.
    pub(super) async fn refill_card_and_notice(
        &self,
        payer: Payer<'_>,
        now: OffsetDateTime,
    ) -> Result<(Option<Card>, Vec<Write>), OpError> {
        match payer {
            Payer::Workspace(ws) => {
                let [at_key, connection] =
                    self.read([keys::workspace_customer(&ws.id), keys::partner_stripe(&ws.partner)]).await?;
                let connection = connection.as_ref().map(records::stripe_connection_from).transpose()?;
                let Some(account) = self.usable(connection).map(|c| c.account) else { return Ok((None, vec![])) };
                let card = self.customer_read(&ws.id, &account, at_key.as_ref()).await?.card();
                let need = Need { refills: true, renews_on: Some(ws.renews_on) };
                Ok((card, workspace_card_notice(ws, Some(&account), at_key.as_ref(), need, now)?))
            }
            Payer::Partner(p) => {
                let customer = self.platform_customer(p).await?;
                let notice = partner_card_notice(p, customer.clone(), Need { refills: true, renews_on: None }, now);
                Ok((super::partner_wallet::card_of(customer), notice))
            }
        }
    }

    // ---- saving, from the webhook -----------------------------------------------------------

    /// A card Stripe reports saved on `owner`'s customer: kept, unless the record changed after
    /// Stripe reported it, with the details a `payment_method.*` event left for it (or they
    /// come with that event later); `card.expiring` if it lapses before its wallet needs it.
    /// Crediting is never this event's business.
    pub(super) async fn save_card(&self, owner: CardOwner<'_>, saved: Saved<'_>) -> Result<WebhookOutcome, OpError> {
        for _ in 0..MAX_OP_ATTEMPTS {
            let Some(holder) = self.card_holder(owner, saved.payment_method).await? else {
                tracing::warn!(owner = ?owner, "a saved card for a customer we don't have");
                return Ok(WebhookOutcome::Ignored);
            };
            let Holder { record, need, wallet, partner, method } = holder;
            if record.customer() != saved.customer {
                tracing::warn!(owner = ?owner, "a saved card of another customer than the owner's");
                return Ok(WebhookOutcome::Ignored);
            }
            let current = record.slot();
            // Stripe's times are whole seconds: within one, the save heard of last wins, and the
            // same card again changes nothing.
            let same_card = current.payment_method.as_ref() == Some(saved.payment_method);
            if current.changed_at.is_some_and(|at| at > saved.at || (at == saved.at && same_card)) {
                return Ok(WebhookOutcome::Unchanged);
            }
            // What the payment method's events said of it, if they are about this customer's.
            let method = method.filter(|m| &m.customer == saved.customer && m.account.as_ref() == owner.account());
            let mut slot = CardSlot {
                payment_method: Some(saved.payment_method.clone()),
                changed_at: Some(saved.at),
                card: method.as_ref().and_then(|m| m.card.clone()),
                expiry_noticed: false,
            };
            let mut writes: Vec<Write> =
                expiry_notice(&partner, &wallet, &mut slot, need, self.clock.now()).into_iter().collect();
            writes.push(record.with(slot));
            let (workspace_id, partner_id) = owner.ids();
            let owned = PaymentMethodRecord {
                account: owner.account().cloned(),
                customer: saved.customer.clone(),
                workspace_id,
                partner_id,
                card: method.as_ref().and_then(|m| m.card.clone()),
                card_at: method.as_ref().and_then(|m| m.card_at),
                expires_at: None,
                version: method.as_ref().map_or(0, |m| m.version),
            };
            writes.push(method_write(saved.payment_method, owned));
            // The card it replaces is charged no more: its record goes.
            if let Some(old) = current.payment_method.filter(|old| old != saved.payment_method) {
                writes.push(Write::Delete { key: keys::payment_method(&old), condition: Condition::Always });
            }
            match self.store.write(writes).await {
                Ok(()) => return Ok(WebhookOutcome::CardSaved),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// `payment_method.attached | updated | automatically_updated`: the card's details, kept on
    /// its record, and on its owner's customer record if it is the card saved there (a new
    /// expiry may be told of again). An older report changes nothing.
    pub(super) async fn on_payment_method(
        &self,
        event: &Event,
        pm: &PaymentMethodObject,
    ) -> Result<WebhookOutcome, OpError> {
        let Some(customer) = &pm.customer else {
            // Detached: no longer anybody's card.
            return Ok(WebhookOutcome::Ignored);
        };
        let details = pm.card.as_ref().and_then(|c| match CardDetails::new(&c.brand, &c.last4, c.exp_month, c.exp_year) {
            Ok(card) => Some(card),
            Err(e) => {
                tracing::warn!(event = %event.id, payment_method = %pm.id, error = %e, "a card's details we can't read");
                None
            }
        });
        for _ in 0..MAX_OP_ATTEMPTS {
            let [item] = self.read([keys::payment_method(&pm.id)]).await?;
            let current = item.as_ref().map(records::payment_method_from).transpose()?;
            if let Some(current) = &current {
                // Within one second, the report heard of last wins, as for saves.
                let same = current.card == details;
                if current.card_at.is_some_and(|at| at > event.created || (at == event.created && same)) {
                    return Ok(WebhookOutcome::Unchanged);
                }
                if &current.customer != customer || current.account != event.account {
                    tracing::warn!(event = %event.id, payment_method = %pm.id, "a card's details for another customer than it was saved by");
                    return Ok(WebhookOutcome::Ignored);
                }
            }
            let next = match &current {
                Some(c) => PaymentMethodRecord { card: details.clone(), card_at: Some(event.created), ..c.clone() },
                None => PaymentMethodRecord {
                    account: event.account.clone(),
                    customer: customer.clone(),
                    workspace_id: None,
                    partner_id: None,
                    card: details.clone(),
                    card_at: Some(event.created),
                    expires_at: Some(OffsetDateTime::now_utc().unix_timestamp() + UNCLAIMED_TTL_S),
                    version: 0,
                },
            };
            let owner = Owner::of(&next);
            let mut writes = vec![method_write(&pm.id, next.clone())];
            let mut on_record = false;
            if let Some(owner) = owner.as_ref().map(Owner::as_card_owner)
                && let Some(Holder { record, need, wallet, partner, .. }) = self.card_holder(owner, &pm.id).await?
                && record.customer() == customer
            {
                let mut slot = record.slot();
                if slot.payment_method.as_ref() == Some(&pm.id) {
                    let expiry = |c: &Option<CardDetails>| c.as_ref().map(|c| c.lapses_at());
                    if expiry(&slot.card) != expiry(&details) {
                        // Another expiry: another card as far as its expiry is concerned.
                        slot.expiry_noticed = false;
                    }
                    slot.card = details.clone();
                    writes.extend(expiry_notice(&partner, &wallet, &mut slot, need, self.clock.now()));
                    writes.push(record.with(slot));
                    on_record = true;
                }
            }
            match self.store.write(writes).await {
                Ok(()) if on_record => return Ok(WebhookOutcome::CardSaved),
                // Kept for the save that is to come, or for a card no longer saved.
                Ok(()) => return Ok(WebhookOutcome::Recorded),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// The owner's customer record (if it has one), how long its wallet needs a card, the
    /// wallet, its partner, and the record of payment method `pm`: one read.
    async fn card_holder<'a>(&self, owner: CardOwner<'a>, pm: &PaymentMethodId) -> Result<Option<Holder<'a>>, OpError> {
        Ok(match owner {
            CardOwner::Workspace { w, account } => {
                let [at_key, auto, profile, method] = self
                    .read([
                        keys::workspace_customer(w),
                        keys::workspace_auto_topup(w),
                        keys::workspace_profile(w),
                        keys::payment_method(pm),
                    ])
                    .await?;
                let Some(profile) = profile else { return Ok(None) };
                let ws = records::workspace_from(&profile)?;
                let read = self.customer_read(w, account, at_key.as_ref()).await?;
                if read.customer().is_none() {
                    return Ok(None);
                }
                let refills = auto.as_ref().map(records::auto_topup_from).transpose()?.is_some_and(|a| a.enabled);
                Some(Holder {
                    record: CustomerRecord::Workspace(w, read),
                    need: Need { refills, renews_on: Some(ws.renews_on) },
                    wallet: WalletId::Workspace(w.clone()),
                    partner: ws.partner,
                    method: method.as_ref().map(records::payment_method_from).transpose()?,
                })
            }
            CardOwner::Partner(p) => {
                let [customer, refill, method] =
                    self.read([keys::partner_customer(p), keys::partner_refill(p), keys::payment_method(pm)]).await?;
                let Some(customer) = customer.as_ref().map(records::platform_customer_from).transpose()? else {
                    return Ok(None);
                };
                let refills = super::partner_wallet::refill_setting(refill.as_ref())?.auto.enabled;
                Some(Holder {
                    record: CustomerRecord::Partner(p, customer),
                    need: Need { refills, renews_on: None },
                    wallet: WalletId::Partner(p.clone()),
                    partner: p.clone(),
                    method: method.as_ref().map(records::payment_method_from).transpose()?,
                })
            }
        })
    }
}

/// How long a record of a payment method nobody saved is kept: a save heard of later than a
/// week after its card's `payment_method.attached` finds no details, and shows none.
const UNCLAIMED_TTL_S: i64 = 7 * 24 * 60 * 60;

/// What saving a card, or its details, decides on.
struct Holder<'a> {
    record: CustomerRecord<'a>,
    need: Need,
    wallet: WalletId,
    partner: PartnerId,
    method: Option<PaymentMethodRecord>,
}

/// `next` stored one version on from the version it carries, guarded by that version.
fn method_write(pm: &PaymentMethodId, next: PaymentMethodRecord) -> Write {
    let condition = version_is(Guard::PaymentMethodVersion, next.version);
    let item = records::payment_method_item(pm, &PaymentMethodRecord { version: next.version + 1, ..next });
    Write::Put { item, condition }
}

/// A payment method record's owner, owned: what [`CardOwner`] borrows.
enum Owner {
    Workspace(WorkspaceId, AccountId),
    Partner(PartnerId),
}

impl Owner {
    fn as_card_owner(&self) -> CardOwner<'_> {
        match self {
            Owner::Workspace(w, account) => CardOwner::Workspace { w, account },
            Owner::Partner(p) => CardOwner::Partner(p),
        }
    }

    /// Whose `record` is: a workspace's on a connected account, or a partner's on the
    /// platform's; nobody's until its save is heard of.
    fn of(record: &PaymentMethodRecord) -> Option<Owner> {
        match (&record.workspace_id, &record.partner_id, &record.account) {
            (Some(w), None, Some(account)) => Some(Owner::Workspace(w.clone(), account.clone())),
            (None, Some(p), None) => Some(Owner::Partner(p.clone())),
            _ => None,
        }
    }
}
