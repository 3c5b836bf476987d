//! Auto top-up of a workspace's wallet (`domain::autotopup` holds the rules, `refill.rs` the
//! engine): the workspace's setting, its saved card, what a charge buys, and the view.
//!
//! The charge is made on the partner's connected account with the card the workspace's last
//! checkout saved, under the idempotency key `autotopup:<workspace>:<attempt number>`, for
//! enough of the workspace's chosen top-up option; a renewal's shortfall starts one, and so does
//! a debit that leaves the balance under the workspace's threshold.

use domain::{AutoTopup, Money, PartnerId, Points, TopupOption, TopupOptionId, Workspace, WorkspaceId};
use store::records::StripeCustomer;
use store::{Attr, Condition, Guard, Item, Table, Write, keys, records};
use stripe_gateway::event::{PaymentIntentObject, metadata};
use stripe_gateway::ids::AccountId;

use super::cards::{Need, workspace_card_notice};
use super::load::{Asker, fresh};
use super::refill::{Card, Offer, Payer, RefillState, Setting, named_refill, unnamed_refill};
use super::{Billing, Mutation, OpError, Replied, WebhookOutcome};

/// Who the ledger names for a top-up the renewal charged.
pub const AUTO_TOPUP_ACTOR: &str = "auto-topup";
/// The metadata `source` of an off-session top-up.
pub const SOURCE_AUTO_TOPUP: &str = "auto_topup";

/// Auto top-up as `PUT /workspace/auto-topup` sets it: on with a top-up option or a number of
/// points at the partner's credit rate (and, optionally, a threshold refill and a monthly cap),
/// or off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutoTopupTerms {
    pub enabled: bool,
    pub option: Option<TopupOptionId>,
    /// Points to buy at the credit rate each time, instead of an option.
    pub points: Option<Points>,
    pub threshold: Option<Points>,
    /// In minor units of the chosen option's currency.
    pub monthly_cap_minor: Option<i64>,
}

impl<T: Table> Billing<T> {
    /// The workspace's auto top-up (off, version 0, if it never set one).
    pub async fn auto_topup(&self, w: &WorkspaceId) -> Result<AutoTopup, OpError> {
        let item = self.store.get(&keys::workspace_auto_topup(w)).await?;
        Ok(item.as_ref().map(records::auto_topup_from).transpose()?.unwrap_or_default())
    }

    /// The card the workspace's last checkout saved, on its partner's account as it is now.
    pub(super) async fn saved_card(&self, ws: &Workspace) -> Result<Option<Card>, OpError> {
        let Some(connection) = self.usable_connection(&ws.partner).await? else { return Ok(None) };
        let at_key = self.store.get(&keys::workspace_customer(&ws.id)).await?;
        Ok(self.customer_read(&ws.id, &connection.account, at_key.as_ref()).await?.card())
    }

    /// The workspace's customer on `account`, from what its key held as read (`at_key`). A
    /// workspace created before its customer moved to that key may keep one under a key of its
    /// account: read there when the key holds nothing (such a workspace, until its first
    /// checkout or saved card moves it) or a customer on another account (the partner switched
    /// accounts). A workspace created since holds an empty slot there until its first customer:
    /// nothing more to read.
    pub(super) async fn customer_read(
        &self,
        w: &WorkspaceId,
        account: &AccountId,
        at_key: Option<&Item>,
    ) -> Result<CustomerRead, OpError> {
        let at_key = at_key.map(records::customer_slot_from).transpose()?;
        let (customer, version) = match &at_key {
            Some(slot) => (slot.customer.as_ref(), slot.version),
            None => (None, 0),
        };
        let read = |on_account| CustomerRead { on_account, version, earlier: false };
        match (&at_key, customer) {
            (_, Some(c)) if &c.account == account => return Ok(read(Some(c.clone()))),
            (Some(_), None) => return Ok(read(None)),
            _ => {}
        }
        let earlier = self.store.get(&keys::earlier_workspace_customer(w, account)).await?;
        let on_account = earlier.as_ref().map(records::stripe_customer_from).transpose()?;
        Ok(CustomerRead { earlier: on_account.is_some(), ..read(on_account) })
    }

    /// The workspace's auto top-up as it sees it.
    pub(super) async fn auto_topup_state(&self, ws: &Workspace) -> Result<RefillState, OpError> {
        let setting = Setting { auto: self.auto_topup(&ws.id).await?, amount: None };
        Ok(RefillState::new(&setting, self.saved_card(ws).await?.is_some(), self.clock.now()))
    }

    /// `PUT /workspace/auto-topup`: on with a top-up option (refused until a checkout saved a
    /// card, and for an option the partner doesn't offer), or off.
    pub async fn put_auto_topup(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        terms: AutoTopupTerms,
        m: Mutation<'_, RefillState>,
    ) -> Replied {
        let needed = |p: &PartnerId| {
            vec![
                keys::workspace_auto_topup(w),
                keys::workspace_customer(w),
                keys::partner_topups(p),
                keys::partner_stripe(p),
                keys::partner_credit_rate(p),
                keys::partner_profile(p),
            ]
        };
        let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
        let current = read.get(&keys::workspace_auto_topup(w)).map(records::auto_topup_from).transpose()?;
        let current = current.unwrap_or_default();
        let card = match self.usable(super::load::connection(&read, &ws.partner)?) {
            Some(connection) => {
                let at_key = read.get(&keys::workspace_customer(w));
                self.customer_read(w, &connection.account, at_key).await?.card()
            }
            None => None,
        };
        let AutoTopupTerms { enabled, option, points, threshold, monthly_cap_minor } = terms;
        let next = if enabled {
            // What one refill charges, and the setting that buys it.
            let (amount, on) = match (option, points) {
                (Some(option), None) => {
                    let offered = super::load::topup_options(&read, &ws.partner)?;
                    let Some(chosen) = offered.options.iter().find(|o| o.id == option) else {
                        return Err(OpError::invalid("topup_option_id", "no such top-up option"));
                    };
                    (chosen.option.amount(), current.turned_on(option))
                }
                (None, Some(points)) => {
                    let rate = super::load::credit_rate(&read, &ws.partner)?.ok_or_else(|| {
                        OpError::invalid("points", "this partner sells no points at a rate: pick a top-up option")
                    })?;
                    let profile = super::load::partner_profile(&read, &ws.partner)?;
                    self.floors_of(&profile).check_rate(rate.rate()).map_err(|_| {
                        OpError::Forbidden(
                            "the partner's credit rate is below the platform's cost: points can't be sold at it",
                        )
                    })?;
                    (
                        rate.amount_for(points).map_err(|e| OpError::invalid("points", e))?,
                        current.turned_on_points(points),
                    )
                }
                (Some(_), Some(_)) => {
                    return Err(OpError::invalid("points", "give topup_option_id or points, not both"));
                }
                (None, None) => {
                    return Err(OpError::invalid("topup_option_id", "required to turn auto top-up on (or points)"));
                }
            };
            if threshold.is_some_and(|t| t.is_zero()) {
                return Err(OpError::invalid("threshold", "must be greater than 0"));
            }
            // The cap is in the charge's currency, and at least one charge, or it could never
            // let a top-up through.
            let cap = monthly_cap_minor
                .map(|minor| Money::from_minor(minor, amount.currency()))
                .transpose()
                .map_err(|e| OpError::invalid("monthly_cap_minor", e))?;
            if let Some(cap) = cap.filter(|c| c.amount_minor() < amount.amount_minor()) {
                return Err(OpError::invalid(
                    "monthly_cap_minor",
                    format!("must be at least one refill's charge ({}), not {}", amount, cap),
                ));
            }
            if card.is_none() {
                return Err(OpError::invalid(
                    "enabled",
                    "no card is saved yet: save one through POST /workspace/card, or pay once through POST /workspace/checkout",
                ));
            }
            AutoTopup { threshold, monthly_cap: cap, ..on }
        } else {
            if option.is_some() || points.is_some() {
                let param = if option.is_some() { "topup_option_id" } else { "points" };
                return Err(OpError::invalid(param, "only with \"enabled\": true"));
            }
            if threshold.is_some() || monthly_cap_minor.is_some() {
                let param = if threshold.is_some() { "threshold" } else { "monthly_cap_minor" };
                return Err(OpError::invalid(param, "only with \"enabled\": true"));
            }
            current.turned_off()
        };
        let read_setting = Setting { auto: current, amount: None };
        let next = read_setting.next(next);
        let now = self.clock.now();
        let reply = m.answer(&RefillState::new(&next, card.is_some(), now));
        let mut writes = vec![read_setting.replaced_by(Payer::Workspace(&ws), &next)];
        if next.auto.enabled {
            // A card that won't last the month, or to the next renewal, is told of now.
            let account = card.as_ref().and_then(|c| c.account.as_ref());
            let need = Need { refills: true, renews_on: Some(ws.renews_on) };
            writes.extend(workspace_card_notice(&ws, account, read.get(&keys::workspace_customer(w)), need, now)?);
        }
        self.commit(m.key(), writes, reply, |_| OpError::Conflict).await
    }

    /// What the workspace's next attempt buys: its chosen option, if the partner still offers
    /// it at or above the wholesale floor; or its points at the partner's credit rate as it is
    /// now, if the rate still sells them.
    pub(super) async fn topup_offer(&self, ws: &Workspace, auto: &AutoTopup) -> Result<Offer, OpError> {
        if let Some(points) = auto.points {
            return self.rate_offer(ws, points).await;
        }
        let Some(id) = auto.option.clone() else { return Ok(Offer::Nothing) };
        let offered = self.topup_options(&ws.partner).await?;
        let Some(option) = offered.options.into_iter().find(|o| o.id == id) else {
            return Ok(Offer::Refused("topup_option_removed"));
        };
        // The option was at or above the floor when the partner saved it; the platform may have
        // raised the floor since, and an option under it is not sold, on a Checkout page or
        // off-session.
        let profile = self.partner_profile(&ws.partner).await?;
        if let Err(e) = self.floors_of(&profile).check_option(&option.option) {
            tracing::warn!(workspace = %ws.id, option = %id, error = %e, "auto top-up option under the wholesale floor");
            return Ok(Offer::Refused("topup_option_below_floor"));
        }
        Ok(Offer::Buy(id, option.option, Some(profile.settings.unit_name)))
    }

    /// `points` at the partner's credit rate: a refill that buys by the point.
    async fn rate_offer(&self, ws: &Workspace, points: Points) -> Result<Offer, OpError> {
        let [rate, profile] =
            self.read([keys::partner_credit_rate(&ws.partner), keys::partner_profile(&ws.partner)]).await?;
        let Some(rate) = rate.as_ref().map(records::credit_rate_from).transpose()? else {
            return Ok(Offer::Refused("credit_rate_removed"));
        };
        let profile = records::partner_profile_from(profile.as_ref().ok_or(OpError::NotFound("partner"))?)?;
        if let Err(e) = self.floors_of(&profile).check_rate(rate.rate()) {
            tracing::warn!(workspace = %ws.id, error = %e, "auto top-up at a credit rate under the wholesale floor");
            return Ok(Offer::Refused("credit_rate_below_floor"));
        }
        // The partner may have moved its bounds (`min_points`, `max_points`) since.
        let Ok(amount) = rate.amount_for(points) else { return Ok(Offer::Refused("points_out_of_bounds")) };
        let unit = profile.settings.unit_name;
        let option = TopupOption::new(&super::payments::in_units(points, &unit), amount, points)
            .map_err(|e| OpError::Internal(format!("a refill of {points} points at the rate is no top-up: {e}")))?;
        Ok(Offer::Buy(domain::rate_option(), option, Some(unit)))
    }

    /// `payment_intent.succeeded | payment_failed` of an off-session top-up on `account`: its
    /// metadata (workspace, attempt number) finds the workspace, which must be of the account's
    /// partner; the engine does the rest.
    pub(super) async fn on_auto_topup_event(
        &self,
        succeeded: bool,
        account: &AccountId,
        pi: &PaymentIntentObject,
        event_id: &str,
    ) -> Result<WebhookOutcome, OpError> {
        let Some((w, number)) = named_refill(pi, metadata::WORKSPACE, |w| WorkspaceId::parse(w).ok()) else {
            return Ok(unnamed_refill(event_id, pi));
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
        self.on_refill_event(Payer::Workspace(&ws), Some(account), succeeded, number, pi, event_id).await
    }
}

/// A workspace's customer record as one operation read it.
#[derive(Debug, Clone)]
pub(super) struct CustomerRead {
    /// The workspace's customer on the account asked for.
    on_account: Option<StripeCustomer>,
    /// The version of what the workspace's key held (0: nothing).
    version: u64,
    /// `on_account` was read where it was kept before it moved to the workspace's key.
    earlier: bool,
}

impl CustomerRead {
    /// `customer`, found at the workspace's key at `version`.
    pub(super) fn at_key(customer: StripeCustomer, version: u64) -> Self {
        Self { on_account: Some(customer), version, earlier: false }
    }

    pub(super) fn customer(&self) -> Option<&StripeCustomer> {
        self.on_account.as_ref()
    }

    /// The saved card of the customer on the account asked for.
    pub(super) fn card(&self) -> Option<Card> {
        let c = self.on_account.as_ref()?;
        let payment_method = c.payment_method.clone()?;
        Some(Card { account: Some(c.account.clone()), customer: c.customer.clone(), payment_method })
    }

    /// Whether the customer on the account was read where it was kept before: a write of it
    /// ([`CustomerRead::put`]) moves it to the workspace's key.
    pub(super) fn is_earlier(&self) -> bool {
        self.earlier
    }

    /// Stores `next` at the workspace's key, one version on from what the read found there
    /// (an empty slot, or a customer on another account, is replaced), guarded by that version.
    pub(super) fn put(&self, w: &WorkspaceId, next: StripeCustomer) -> Write {
        let condition = match self.version {
            0 => Condition::not_exists(Guard::CustomerNew),
            v => Condition::equals(Guard::CustomerVersion, "version", Attr::n(v)),
        };
        let item = records::stripe_customer_item(w, &StripeCustomer { version: self.version + 1, ..next });
        Write::Put { item, condition }
    }
}
