//! Money in: a partner connects its Stripe account, a workspace pays for
//! points through Stripe Checkout on that account. The crediting itself happens when Stripe says
//! the money is there (`webhook.rs`).
//!
//! Every Stripe call carries an idempotency key derived from what it does: the workspace's
//! customer `customer:<workspace>:<account>` (one per workspace and account, however many
//! checkouts race to create it), a session `checkout:<workspace>:<fingerprint of the request's
//! Idempotency-Key>` (a client's retry of one request makes one session).

use std::sync::Arc;

use domain::{
    CheckoutStatus, CreditRateError, Money, PartnerId, PartnerTopupOption, Points, TopupOptionId, WalletId, Workspace,
    WorkspaceId,
};
use store::records::{self, CheckoutRecord, StripeConnection, StripeCustomer};
use store::{Attr, Condition, Guard, Snapshot, StoreError, Table, Write, keys};
use stripe_gateway::event::metadata;
use stripe_gateway::gateway::{Account, Gateway, GatewayError, Metadata, NewCheckoutSession, NewCustomer};
use stripe_gateway::ids::{self as stripe_ids, AccountId, CustomerId, OAuthCode};

use super::autotopup::CustomerRead;
use super::load::{Asker, fresh};
use super::{Billing, Mutation, OpError, Replied};

/// The deployment's Stripe: the gateway (for the functions that call Stripe), the webhook
/// secrets (for the one that hears from it) and the mode.
pub struct Payments {
    gateway: Option<Arc<dyn Gateway>>,
    /// The Connect webhook endpoint's signing secrets (events of the partners' connected
    /// accounts): one, or two during a rotation.
    webhook_secrets: Vec<String>,
    /// The platform endpoint's (events of the platform's own account: partner wallet payments).
    platform_webhook_secrets: Vec<String>,
    /// Whether this deployment takes real money. Events and connected accounts of the other
    /// mode are refused.
    livemode: bool,
}

impl Payments {
    pub fn new(livemode: bool) -> Self {
        Self { gateway: None, webhook_secrets: Vec::new(), platform_webhook_secrets: Vec::new(), livemode }
    }

    pub fn with_gateway(mut self, gateway: Arc<dyn Gateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    pub fn with_webhook_secrets(mut self, secrets: Vec<String>) -> Self {
        self.webhook_secrets = secrets;
        self
    }

    pub fn with_platform_webhook_secrets(mut self, secrets: Vec<String>) -> Self {
        self.platform_webhook_secrets = secrets;
        self
    }

    pub fn livemode(&self) -> bool {
        self.livemode
    }

    pub(super) fn gateway(&self) -> Result<&dyn Gateway, OpError> {
        self.gateway.as_deref().ok_or_else(|| OpError::Internal("this function has no Stripe client".into()))
    }

    pub(super) fn webhook_secrets(&self, endpoint: WebhookEndpoint) -> Result<Vec<&str>, OpError> {
        let secrets = match endpoint {
            WebhookEndpoint::Connect => &self.webhook_secrets,
            WebhookEndpoint::Platform => &self.platform_webhook_secrets,
        };
        if secrets.is_empty() {
            return Err(OpError::Internal(format!("this function has no {} webhook secret", endpoint.as_str())));
        }
        Ok(secrets.iter().map(String::as_str).collect())
    }
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Payments")
            .field("livemode", &self.livemode)
            .field("gateway", &self.gateway.is_some())
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("platform_webhook_secrets", &self.platform_webhook_secrets.len())
            .finish()
    }
}

/// The deployment's two Stripe webhook endpoints, each with its own signing secret: Stripe sends
/// the partners' connected accounts' events to a Connect endpoint (`connect=true`; each event
/// names its `account`) and the platform's own account's to an account endpoint (no `account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookEndpoint {
    /// `POST /stripe/webhook`: workspaces' payments on the partners' accounts.
    Connect,
    /// `POST /stripe/platform-webhook`: partners' payments into their partner wallets.
    Platform,
}

impl WebhookEndpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEndpoint::Connect => "connect",
            WebhookEndpoint::Platform => "platform",
        }
    }
}

/// A Checkout Session made and stored: send the payer to `url` until `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutCreated {
    pub checkout: CheckoutRecord,
    pub url: String,
    pub expires_at: time::OffsetDateTime,
}

/// What a workspace pays for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutRequest {
    /// One of its partner's top-up options.
    Option(TopupOptionId),
    /// A number of points at the partner's credit rate.
    Points(Points),
}

/// A failed Stripe call as the caller sees it. Nothing was charged in any case (a session is
/// only a page to pay on); the request may be retried with the same Idempotency-Key. The edge
/// logs the error with its cause; this names the call that failed.
pub(super) fn stripe_error(call: &'static str, e: GatewayError) -> OpError {
    match e {
        GatewayError::InvalidRequest { code: Some(ref code), .. } if code == "amount_too_small" => {
            OpError::invalid("amount", "below the smallest amount Stripe charges in this currency")
        }
        e if e.is_retryable() => {
            tracing::warn!(call, error = %e, "Stripe unavailable");
            OpError::StripeUnavailable(e)
        }
        e => {
            tracing::warn!(call, error = %e, "Stripe refused");
            OpError::StripeFailed(e)
        }
    }
}

pub(super) fn stripe_key(s: String) -> Result<stripe_ids::IdempotencyKey, OpError> {
    stripe_ids::IdempotencyKey::parse(&s).map_err(|_| OpError::Internal(format!("bad Stripe idempotency key {s:?}")))
}

impl<T: Table> Billing<T> {
    /// Adds the deployment's Stripe.
    pub fn with_payments(mut self, payments: Payments) -> Self {
        self.payments = Some(Arc::new(payments));
        self
    }

    /// Whether this deployment is live (no Stripe configured: test mode).
    pub fn livemode(&self) -> bool {
        self.payments.as_ref().is_some_and(|p| p.livemode)
    }

    pub(super) fn payments(&self) -> Result<&Payments, OpError> {
        self.payments.as_deref().ok_or_else(|| OpError::Internal("this function has no Stripe configured".into()))
    }

    /// The partner's connected account, if it has one (revoked or not).
    pub async fn stripe_connection(&self, p: &PartnerId) -> Result<Option<StripeConnection>, OpError> {
        let item = self.store.get(&keys::partner_stripe(p)).await?;
        Ok(item.as_ref().map(records::stripe_connection_from).transpose()?)
    }

    /// The account checkouts may use: connected, not revoked, in the deployment's mode.
    pub(super) async fn usable_connection(&self, p: &PartnerId) -> Result<Option<StripeConnection>, OpError> {
        Ok(self.usable(self.stripe_connection(p).await?))
    }

    /// The connection as read, if checkouts may use it.
    pub(super) fn usable(&self, connection: Option<StripeConnection>) -> Option<StripeConnection> {
        let live = self.livemode();
        connection.filter(|c| c.deauthorized_at.is_none() && c.livemode == live)
    }

    /// `POST /partner/stripe/connect`: exchanges the OAuth code from the partner's redirect for
    /// its account and stores it. An account of the other mode is refused; an account another
    /// partner connected is refused; connecting a new account replaces the old one.
    pub async fn connect_stripe(&self, p: &PartnerId, code: &OAuthCode, m: Mutation<'_, StripeConnection>) -> Replied {
        let read = fresh!(self.load_for_partner(p, m.key(), &[keys::partner_stripe(p)]).await?);
        let payments = self.payments()?;
        super::load::partner_profile(&read, p)?;
        let connected = match payments.gateway()?.connect_account(code).await {
            Ok(c) => c,
            Err(GatewayError::InvalidRequest { .. }) => {
                return Err(OpError::invalid("code", "Stripe refused the code: it is unknown, used or expired"));
            }
            Err(e) => return Err(stripe_error("oauth.token", e)),
        };
        if connected.livemode != payments.livemode {
            return Err(OpError::invalid(
                "code",
                if payments.livemode {
                    "this is a test-mode Stripe account; this deployment takes live payments"
                } else {
                    "this is a live-mode Stripe account; this deployment takes test payments"
                },
            ));
        }
        let now = self.clock.now();
        let connection = StripeConnection {
            account: connected.account.clone(),
            livemode: connected.livemode,
            connected_at: now,
            deauthorized_at: None,
        };
        // The account is this partner's already, or nobody's: checked by the write itself, so
        // another partner's claim, made before or meanwhile, refuses it.
        let claim = Condition::not_exists_or_equals(Guard::StripeAccountClaim, "partner_id", Attr::s(p.as_str()));
        // Replaces the connection read with the request: a connection made meanwhile fails the
        // guard, and this answers 409 to be retried (its old account's claim would be kept).
        let old = super::load::connection(&read, p)?;
        let as_read = match &old {
            Some(old) => Condition::equals(Guard::StripeConnectionAsRead, "account", Attr::s(old.account.as_str())),
            None => Condition::not_exists(Guard::StripeConnectionAsRead),
        };
        let mut writes = vec![
            Write::Put { item: records::stripe_connection_item(p, &connection), condition: as_read },
            Write::Put { item: records::stripe_account_item(&connected.account, p), condition: claim },
        ];
        if let Some(old) = old.filter(|old| old.account != connected.account) {
            writes.push(Write::Delete { key: keys::stripe_account(&old.account), condition: Condition::Always });
        }
        tracing::info!(partner = %p, account = %connected.account, livemode = connected.livemode, "Stripe account connected");
        let reply = m.answer(&connection);
        self.commit(m.key(), writes, reply, |failed| {
            if failed.contains(Guard::StripeAccountClaim) {
                OpError::AlreadyExists("Stripe account connected by another partner")
            } else {
                OpError::Conflict
            }
        })
        .await
    }

    /// `POST /workspace/checkout`: a Checkout Session on the partner's connected account for a
    /// top-up option or a number of points at the credit rate, stored as pending with the points
    /// it promises: send the customer to its `url`.
    pub async fn create_checkout(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        request: &CheckoutRequest,
        m: Mutation<'_, CheckoutCreated>,
    ) -> Replied {
        let needed = |p: &PartnerId| checkout_keys(w, p);
        let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
        let payments = self.payments()?;
        let CheckoutTerms { profile, connection, success_url, cancel_url } = self.checkout_terms(&read, &ws.partner)?;
        let Purchase { points, amount, option } = offer(&read, &ws.partner, self.floors_of(&profile), request)?;

        let at_key = read.get(&keys::workspace_customer(w));
        let customer_read = self.customer_read(w, &connection.account, at_key).await?;
        let (customer, moved) = self.workspace_customer(&ws, &connection.account, &customer_read, payments).await?;
        let mut meta = Metadata::new();
        let option_id = option.as_ref().map(|o| o.id.as_str());
        let unit = &profile.settings.unit_name;
        let label = match &option {
            Some(o) => option_text(o.option.label(), points, unit),
            None => in_units(points, unit),
        };
        for (k, v) in [
            (metadata::WORKSPACE, Some(ws.id.as_str())),
            (metadata::PARTNER, Some(ws.partner.as_str())),
            (metadata::POINTS, Some(&points.to_string())),
            (metadata::TOPUP_OPTION, option_id),
            (metadata::SOURCE, Some(metadata::SOURCE_CHECKOUT)),
        ] {
            if let Some(v) = v {
                meta.insert(k, v).map_err(|e| OpError::Internal(e.to_string()))?;
            }
        }
        let session = NewCheckoutSession {
            customer,
            amount,
            label,
            client_reference_id: ws.id.as_str().to_owned(),
            metadata: meta,
            success_url,
            cancel_url,
        };
        let key = stripe_key(format!("checkout:{}:{}", ws.id, m.key().fingerprint()))?;
        let created = payments
            .gateway()?
            .create_checkout_session(Account::Connected(&connection.account), &key, &session)
            .await
            .map_err(|e| stripe_error("checkout.sessions.create", e))?;
        let now = self.clock.now();
        let record = CheckoutRecord {
            id: created.id.clone(),
            wallet: WalletId::Workspace(ws.id.clone()),
            partner: ws.partner.clone(),
            account: Some(connection.account),
            points,
            amount,
            topup_option_id: option.map(|o| o.id),
            status: CheckoutStatus::Pending,
            payment_intent: None,
            created_at: now,
            updated_at: now,
        };
        tracing::info!(workspace = %ws.id, checkout = %created.id, %points, amount = %amount.format_major(),
            currency = amount.currency().code(), "checkout created");
        let writes = std::iter::once(Write::Put {
            item: records::checkout_item(&record),
            condition: Condition::not_exists(Guard::CheckoutNew),
        })
        .chain(moved)
        .collect();
        let reply = m.answer(&CheckoutCreated { checkout: record, url: created.url, expires_at: created.expires_at });
        // The session id is new unless this request's own earlier attempt stored it, and then
        // the idempotency record answers first: a clash there is a bug, not a race. The customer
        // record moved meanwhile (a card saved): the caller tries again.
        self.commit(m.key(), writes, reply, |failed| {
            if failed.contains(Guard::CheckoutNew) {
                OpError::Internal(format!("checkout {} stored twice", created.id))
            } else {
                OpError::Conflict
            }
        })
        .await
    }

    /// Where a workspace's Checkout Session is made, and where it sends the customer back, from
    /// [`checkout_keys`] as read: refused while the partner is suspended, its credit billing is
    /// off, it has no usable connected account, or no return URLs.
    pub(super) fn checkout_terms(&self, read: &Snapshot, p: &PartnerId) -> Result<CheckoutTerms, OpError> {
        let profile = super::load::partner_profile(read, p)?;
        if profile.status.is_suspended() {
            return Err(OpError::AccessDenied(domain::AccessDenied::PartnerSuspended));
        }
        if !profile.settings.credit_billing {
            return Err(OpError::Forbidden("credit billing is off for this workspace's partner"));
        }
        let connection = self
            .usable(super::load::connection(read, p)?)
            .ok_or(OpError::Forbidden("this workspace's partner has no connected Stripe account"))?;
        let (Some(success_url), Some(cancel_url)) =
            (profile.settings.success_url.clone(), profile.settings.cancel_url.clone())
        else {
            return Err(OpError::Forbidden(
                "this workspace's partner has not set its checkout success and cancel URLs",
            ));
        };
        Ok(CheckoutTerms { profile, connection, success_url, cancel_url })
    }

    /// The workspace's customer on `account`: created once (a race creates one customer, through
    /// the idempotency key) and stored. With it, the write that moves a customer read where it
    /// was kept before to the workspace's key, for the checkout's transaction.
    pub(super) async fn workspace_customer(
        &self,
        ws: &Workspace,
        account: &AccountId,
        read: &CustomerRead,
        payments: &Payments,
    ) -> Result<(CustomerId, Option<Write>), OpError> {
        if let Some(known) = read.customer() {
            let moved = read.is_earlier().then(|| read.put(&ws.id, known.clone()));
            return Ok((known.customer.clone(), moved));
        }
        let new = NewCustomer {
            description: format!("{} ({})", ws.name, ws.id),
            metadata: Metadata::new()
                .with(metadata::WORKSPACE, ws.id.as_str())
                .and_then(|m| m.with(metadata::PARTNER, ws.partner.as_str()))
                .map_err(|e| OpError::Internal(e.to_string()))?,
        };
        let stripe_key = stripe_key(format!("customer:{}:{}", ws.id, account))?;
        let customer = payments
            .gateway()?
            .create_customer(Account::Connected(account), &stripe_key, &new)
            .await
            .map_err(|e| stripe_error("customers.create", e))?;
        let record = StripeCustomer {
            account: account.clone(),
            customer: customer.clone(),
            payment_method: None,
            payment_method_created: None,
            card: None,
            expiry_noticed: false,
            version: 1,
        };
        match self.store.write(vec![read.put(&ws.id, record)]).await {
            Ok(()) => Ok((customer, None)),
            // Stored meanwhile by a concurrent checkout: the stored one is the workspace's.
            Err(StoreError::ConditionFailed { failed }) => {
                let item = match failed.current(Guard::CustomerNew).or(failed.current(Guard::CustomerVersion)) {
                    Some(item) => Some(item.clone()),
                    None => self.store.get(&keys::workspace_customer(&ws.id)).await?,
                };
                let stored = item.as_ref().map(records::customer_slot_from).transpose()?.and_then(|s| s.customer);
                match stored {
                    Some(c) if &c.account == account => Ok((c.customer, None)),
                    _ => Err(OpError::Conflict),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What a workspace's Checkout Session is made from: its customer, its partner's profile and
/// connection, and what the partner sells.
pub(super) fn checkout_keys(w: &WorkspaceId, p: &PartnerId) -> Vec<store::Key> {
    vec![
        keys::workspace_customer(w),
        keys::partner_profile(p),
        keys::partner_stripe(p),
        keys::partner_topups(p),
        keys::partner_credit_rate(p),
    ]
}

/// A workspace's partner as its Checkout Sessions need it ([`Billing::checkout_terms`]).
pub(super) struct CheckoutTerms {
    pub(super) profile: records::PartnerProfile,
    pub(super) connection: StripeConnection,
    pub(super) success_url: String,
    pub(super) cancel_url: String,
}

/// The points and the amount of what the workspace asked for, priced now on the partner's terms
/// as read.
/// Points as a customer reads them, in its partner's name for them and without trailing zeros:
/// `500 credits`, `20.5 credits`.
pub(super) fn in_units(points: Points, unit: &str) -> String {
    format!("{} {unit}", points.as_decimal().normalize())
}

/// A top-up option as its buyer reads it: `Starter pack (500 credits)`.
pub(super) fn option_text(label: &str, points: Points, unit: &str) -> String {
    format!("{label} ({})", in_units(points, unit))
}

/// What a checkout buys: its points, their price, and the partner's option when it is one.
struct Purchase {
    points: Points,
    amount: Money,
    option: Option<PartnerTopupOption>,
}

fn offer(
    read: &Snapshot,
    p: &PartnerId,
    floors: &domain::WholesaleFloors,
    request: &CheckoutRequest,
) -> Result<Purchase, OpError> {
    match request {
        CheckoutRequest::Option(id) => {
            let list = super::load::topup_options(read, p)?;
            let found = list
                .options
                .iter()
                .find(|o| &o.id == id)
                .ok_or_else(|| OpError::invalid("topup_option_id", "no such top-up option"))?;
            // Saved at or above the floor; the platform may have raised it since.
            floors.check_option(&found.option).map_err(|_| {
                OpError::Forbidden("this top-up option is below the platform's wholesale floor: it can't be sold")
            })?;
            let amount = found.option.amount();
            amount.check_chargeable().map_err(|e| OpError::invalid("topup_option_id", e))?;
            Ok(Purchase { points: found.option.points(), amount, option: Some(found.clone()) })
        }
        CheckoutRequest::Points(points) => {
            let rate = super::load::credit_rate(read, p)?.ok_or_else(|| {
                OpError::invalid("points", "this partner sells no points at a rate: pick a top-up option")
            })?;
            floors.check_rate(rate.rate()).map_err(|e| match e {
                CreditRateError::BelowWholesale { .. } | CreditRateError::NoFloor { .. } => OpError::Forbidden(
                    "the partner's credit rate is below the platform's cost: points can't be sold at it",
                ),
                e => OpError::invalid("points", e),
            })?;
            let amount = rate.amount_for(*points).map_err(|e| OpError::invalid("points", e))?;
            Ok(Purchase { points: *points, amount, option: None })
        }
    }
}
