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
//!   saved card is charged `amount` (enough multiples of it to reach the threshold) off-session
//!   by the refill engine (`refill.rs`), as a workspace's auto top-up is: the attempt recorded
//!   before the charge under the key `partner-refill:<p>:<attempt>`, one at a time, 1 h after a
//!   decline, off after 3 in a row, an optional monthly cap, the credit once by PaymentIntent.
//!   This module holds what is the partner's own: the setting's amount, its card on the
//!   platform's account.

use domain::{AutoTopup, CheckoutStatus, Money, PartnerId, Points, TopupOption, TopupOptionId, WalletId, check_url};
use store::records::{self, CheckoutRecord, PlatformCustomer};
use store::{Condition, Guard, Item, Snapshot, StoreError, Table, Write, keys};
use stripe_gateway::event::{PaymentIntentObject, metadata};
use stripe_gateway::gateway::{Account, Metadata, NewCheckoutSession, NewCustomer};
use stripe_gateway::ids::CustomerId;

use super::cards::{CardOwner, Need, Saved, partner_card_notice};
use super::load::fresh;
use super::payments::{Payments, stripe_error, stripe_key};
use super::refill::{Card, Offer, Payer, RefillState, Setting, named_refill, unnamed_refill};
use super::{Billing, CheckoutCreated, Mutation, OpError, Replied, WebhookOutcome};

/// The partner's customer on the platform account, as read.
fn platform_customer(read: &Snapshot, p: &PartnerId) -> Result<Option<PlatformCustomer>, OpError> {
    Ok(read.get(&keys::partner_customer(p)).map(records::platform_customer_from).transpose()?)
}

/// The partner wallet's auto-refill as read (off, version 0, if never set) and its amount.
pub(super) fn refill_setting(item: Option<&Item>) -> Result<Setting, OpError> {
    let (auto, amount) = item.map(records::partner_refill_from).transpose()?.unwrap_or_default();
    Ok(Setting { auto, amount })
}

/// The card a wallet checkout saved on the partner's customer.
pub(super) fn card_of(customer: Option<PlatformCustomer>) -> Option<Card> {
    customer.and_then(|c| {
        let payment_method = c.payment_method?;
        Some(Card { account: None, customer: c.customer, payment_method })
    })
}

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

/// What one refill buys: its amount as a top-up option, for the auto top-up rules.
pub(super) fn refill_offer(amount: Option<Money>) -> Result<Offer, OpError> {
    let Some(amount) = amount else { return Ok(Offer::Nothing) };
    let (id, option) = refill_option(amount)?;
    Ok(Offer::Buy(id, option, None))
}

impl<T: Table> Billing<T> {
    /// The partner as the platform's Stripe customer, if it has paid (or tried to) before.
    pub async fn platform_customer(&self, p: &PartnerId) -> Result<Option<PlatformCustomer>, OpError> {
        let item = self.store.get(&keys::partner_customer(p)).await?;
        Ok(item.as_ref().map(records::platform_customer_from).transpose()?)
    }

    /// The partner wallet's auto-refill (off, version 0, if never set) and its amount.
    pub(super) async fn partner_refill(&self, p: &PartnerId) -> Result<Setting, OpError> {
        refill_setting(self.store.get(&keys::partner_refill(p)).await?.as_ref())
    }

    /// The card the partner's last wallet checkout saved, on the platform's account.
    pub(super) async fn partner_card(&self, p: &PartnerId) -> Result<Option<Card>, OpError> {
        Ok(card_of(self.platform_customer(p).await?))
    }

    /// The partner wallet's auto-refill as the partner sees it.
    pub(super) async fn partner_refill_state(&self, p: &PartnerId) -> Result<RefillState, OpError> {
        let refill = self.partner_refill(p).await?;
        let card = self.partner_card(p).await?.is_some();
        Ok(RefillState::new(&refill, card, self.clock.now()))
    }

    /// `POST /partner/wallet/checkout`: a Checkout Session on the platform's account for
    /// `amount` (major units of the wallet's currency), stored as pending: send the partner to
    /// its `url`.
    pub async fn create_partner_checkout(
        &self,
        p: &PartnerId,
        amount: &str,
        success_url: &str,
        cancel_url: &str,
        m: Mutation<'_, CheckoutCreated>,
    ) -> Replied {
        let read = fresh!(self.load_for_partner(p, m.key(), &[keys::partner_customer(p)]).await?);
        let payments = self.payments()?;
        super::load::partner_profile(&read, p)?;
        let currency = self.meters.currency();
        let amount = Money::parse_major(amount, currency).map_err(|e| OpError::invalid("amount", e))?;
        amount.check_chargeable().map_err(|e| OpError::invalid("amount", e))?;
        for (param, url) in [("success_url", success_url), ("cancel_url", cancel_url)] {
            check_url(url).map_err(|e| OpError::invalid(param, e))?;
        }
        let customer = self.partner_customer(p, platform_customer(&read, p)?, payments).await?;
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
        let key = stripe_key(format!("partner-checkout:{p}:{}", m.key().fingerprint()))?;
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
        let writes = vec![Write::Put {
            item: records::checkout_item(&record),
            condition: Condition::not_exists(Guard::CheckoutNew),
        }];
        let reply = m.answer(&CheckoutCreated { checkout: record, url: created.url, expires_at: created.expires_at });
        self.commit(m.key(), writes, reply, |_| internal(format!("checkout {} stored twice", created.id))).await
    }

    /// The partner's customer on the platform account: created once (a race creates one
    /// customer, through the idempotency key) and stored.
    pub(super) async fn partner_customer(
        &self,
        p: &PartnerId,
        read: Option<PlatformCustomer>,
        payments: &Payments,
    ) -> Result<CustomerId, OpError> {
        if let Some(c) = read {
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
            card: None,
            expiry_noticed: false,
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

    /// A card the partner saved on the platform's account (paying into its wallet, or without
    /// paying): its customer record keeps it for off-session refills. `named` is the metadata
    /// of the PaymentIntent or SetupIntent that saved it.
    pub(super) async fn save_partner_card(
        &self,
        named: &std::collections::BTreeMap<String, String>,
        saved: Saved<'_>,
    ) -> Result<WebhookOutcome, OpError> {
        let Some(p) = named.get(metadata::PARTNER).and_then(|p| PartnerId::parse(p).ok()) else {
            return Ok(WebhookOutcome::Ignored);
        };
        self.save_card(CardOwner::Partner(&p), saved).await
    }

    // ---- auto-refill --------------------------------------------------------------------

    /// `PUT /partner/wallet/auto-refill`: on with a threshold and an amount (refused until a
    /// wallet checkout saved a card), or off.
    pub async fn put_partner_refill(
        &self,
        p: &PartnerId,
        terms: &PartnerRefillTerms,
        m: Mutation<'_, RefillState>,
    ) -> Replied {
        let needed = [keys::partner_refill(p), keys::partner_customer(p)];
        let snapshot = fresh!(self.load_for_partner(p, m.key(), &needed).await?);
        super::load::partner_profile(&snapshot, p)?;
        let read = refill_setting(snapshot.get(&keys::partner_refill(p)))?;
        let current = &read.auto;
        let card = card_of(platform_customer(&snapshot, p)?).is_some();
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
                    "no card is saved yet: save one through POST /partner/wallet/card, or pay once through POST /partner/wallet/checkout",
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
            (current.turned_off(), read.amount)
        };
        let next = Setting { amount, ..read.next(next) };
        let now = self.clock.now();
        let reply = m.answer(&RefillState::new(&next, card, now));
        let mut writes = vec![read.replaced_by(Payer::Partner(p), &next)];
        if next.auto.enabled {
            // A card that won't last the month is told of now.
            let need = Need { refills: true, renews_on: None };
            writes.extend(partner_card_notice(p, platform_customer(&snapshot, p)?, need, now));
        }
        self.commit(m.key(), writes, reply, |_| OpError::Conflict).await
    }

    /// `payment_intent.succeeded | payment_failed` of a partner refill (from the platform
    /// endpoint): its metadata (partner, attempt number) finds the partner; the engine does the
    /// rest.
    pub(super) async fn on_partner_refill_event(
        &self,
        succeeded: bool,
        pi: &PaymentIntentObject,
        event_id: &str,
    ) -> Result<WebhookOutcome, OpError> {
        let Some((p, number)) = named_refill(pi, metadata::PARTNER, |p| PartnerId::parse(p).ok()) else {
            return Ok(unnamed_refill(event_id, pi));
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
        self.on_refill_event(Payer::Partner(&p), None, succeeded, number, pi, event_id).await
    }
}
