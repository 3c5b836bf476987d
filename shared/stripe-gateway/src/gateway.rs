//! The payment gateway: the few Stripe calls the product makes, in domain terms, with typed errors.
//!
//! Implemented over async-stripe by [`super::client::StripeGateway`]; tests and the local runner
//! point that same implementation at the `stripe-fake` server. No async-stripe type appears here.
//!
//! Every call made on a partner's behalf names the connected account (`Stripe-Account`: Connect
//! direct charges, so the partner is the merchant of record and the money lands with it). Every call that creates something takes an idempotency
//! key derived by the caller from what the call does; the implementation retries a failed attempt
//! (409, 429, 5xx, timeouts, dropped connections) at most [`MAX_ATTEMPTS`] times in all, with the
//! SAME key, so a retry after Stripe acted replays the first result instead of acting twice.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use time::OffsetDateTime;

use super::ids::{
    AccountId, ChargeId, CheckoutId, CustomerId, IdempotencyKey, InvoiceId, OAuthCode, PaymentIntentId,
    PaymentMethodId, PriceId, ReceiptId, SubscriptionId,
};
use super::subscription::{
    InvoiceCharge, InvoiceOutcome, InvoicePage, NewSubscriptionCheckout, PriceSpec, Subscription, SubscriptionChange,
};
use domain::{Currency, Money};

/// Most attempts one gateway call makes (the first and up to three retries). With the default
/// [`RetryPolicy`] the waits between them add up to at most 0.25 + 0.5 + 1 = 1.75 s; with the
/// client's default per-attempt timeout the worst case stays inside API Gateway's 29 s
/// (`client::DEFAULT_TIMEOUT`).
pub const MAX_ATTEMPTS: u32 = 4;

/// How a call retries. `max_attempts` is capped at [`MAX_ATTEMPTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each later one, capped at `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: MAX_ATTEMPTS, base_delay: Duration::from_millis(250), max_delay: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// Attempts actually made: at least one, at most [`MAX_ATTEMPTS`].
    pub fn attempts(&self) -> u32 {
        self.max_attempts.clamp(1, MAX_ATTEMPTS)
    }

    /// The wait before retry number `retry` (0 for the first retry): "equal jitter", a uniformly
    /// random duration in [d/2, d] where d = min(max_delay, base_delay x 2^retry). Half of it is
    /// random so that many clients failing together don't come back together, half is fixed so
    /// that a retry never follows at once.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base_ms = u64::try_from(self.base_delay.as_millis()).unwrap_or(u64::MAX);
        let max_ms = u64::try_from(self.max_delay.as_millis()).unwrap_or(u64::MAX);
        let d_ms = base_ms.saturating_mul(1u64 << retry.min(20)).min(max_ms);
        let half = d_ms / 2;
        Duration::from_millis(half + fastrand::u64(0..=d_ms - half))
    }
}

/// Why a gateway call failed, in the terms the caller acts on.
///
/// Whether Stripe may have acted matters more than the status code: every retryable error below
/// may follow an attempt that Stripe carried out (a timeout, a 500 after the write), so the caller
/// retries later with the SAME idempotency key, never a new one, until it gets an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The card was declined (HTTP 402 `card_error`): `code` is Stripe's `decline_code` when it
    /// gives one (`insufficient_funds`), else its error code (`card_declined`, `expired_card`).
    /// Nothing was charged. Retrying with the same key replays the decline.
    #[error("the card was declined ({code})")]
    Declined { code: String },
    /// The bank wants the customer present (HTTP 402 `authentication_required`). Nothing was charged.
    #[error("the payment needs the customer to authenticate")]
    AuthenticationRequired,
    /// Stripe refused the request as it stands (HTTP 400/404): bad parameters, an unknown object,
    /// an amount below the minimum (`code` = `amount_too_small`), an idempotency key reused with
    /// other parameters (`code` = `idempotency_error`), a used OAuth code (`invalid_grant`).
    /// Retrying won't help. `message` is Stripe's text: log it, don't show it to end users.
    #[error("Stripe refused the request: {message}")]
    InvalidRequest { message: String, param: Option<String>, code: Option<String> },
    /// HTTP 429 on every attempt. Retryable later with the same key.
    #[error("Stripe is rate limiting us")]
    RateLimited,
    /// Stripe answered 5xx or 409 (`idempotency_key_in_use`, `lock_timeout`), could not be
    /// reached, or did not answer in time, on every attempt. Stripe may have acted: retryable,
    /// with the same key.
    #[error("Stripe is unavailable")]
    Unavailable,
    /// Stripe answered but its answer can't be read: the call may well have succeeded, and
    /// retrying with the same key replays the same unreadable answer. For the OAuth exchange: an
    /// earlier attempt may have used the code (a later one was told `invalid_grant`), so the
    /// account may be connected without our knowing; the partner has to connect again.
    #[error("the outcome of the Stripe call is unknown: {0}")]
    Ambiguous(String),
    /// Retrying won't help: a bad secret key, no access to the connected account (the partner
    /// disconnected us), a misconfiguration, an answer that breaks Stripe's own contract.
    #[error("Stripe call failed: {0}")]
    Fatal(String),
}

impl GatewayError {
    /// Worth trying again later with the same idempotency key.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable)
    }
}

/// Stripe's limits on metadata: at most 50 keys, keys of at most 40 characters without square
/// brackets, values of at most 500 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, String>);

pub const METADATA_MAX_KEYS: usize = 50;
pub const METADATA_KEY_MAX_LEN: usize = 40;
pub const METADATA_VALUE_MAX_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMetadata {
    #[error("at most {METADATA_MAX_KEYS} metadata keys")]
    TooManyKeys,
    #[error("a metadata key must be 1 to {METADATA_KEY_MAX_LEN} characters without '[' or ']'")]
    BadKey,
    #[error("a metadata value must be at most {METADATA_VALUE_MAX_LEN} characters")]
    ValueTooLong,
}

impl Metadata {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), InvalidMetadata> {
        if key.is_empty() || key.chars().count() > METADATA_KEY_MAX_LEN || key.contains(['[', ']']) {
            return Err(InvalidMetadata::BadKey);
        }
        if value.chars().count() > METADATA_VALUE_MAX_LEN {
            return Err(InvalidMetadata::ValueTooLong);
        }
        if !self.0.contains_key(key) && self.0.len() >= METADATA_MAX_KEYS {
            return Err(InvalidMetadata::TooManyKeys);
        }
        self.0.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// `metadata.insert` chained: `Metadata::new().with("workspace_id", "ws-1")?`.
    pub fn with(mut self, key: &str, value: &str) -> Result<Self, InvalidMetadata> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// What Stripe returned: within its own limits, so not checked again.
    #[cfg(feature = "client")]
    pub(crate) fn from_stripe(map: std::collections::HashMap<String, String>) -> Self {
        Self(map.into_iter().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A customer to create on the connected account, once per workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    /// Shown in the partner's Stripe dashboard (the workspace's name or id).
    pub description: String,
    pub metadata: Metadata,
}

/// A hosted Checkout Session for one payment: `mode=payment`, one line item built from
/// `price_data` (`amount`, `label` as the product name), the payment method saved for later
/// off-session charges (`payment_intent_data.setup_future_usage=off_session`), and a paid
/// invoice made for it (`invoice_creation[enabled]=true`): Stripe emails the customer its
/// receipt and the completed session names the invoice, the top-up's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckoutSession {
    pub customer: CustomerId,
    /// What the customer pays. Whether it is at least Stripe's minimum is checked by the caller
    /// ([`Money::check_chargeable`]); Stripe refuses it otherwise (`amount_too_small`).
    pub amount: Money,
    /// The line item's product name, shown on the payment page: "1,000 points".
    pub label: String,
    /// Our reference for the session (Stripe allows 200 characters).
    pub client_reference_id: String,
    pub metadata: Metadata,
    pub success_url: String,
    pub cancel_url: String,
}

/// A hosted Checkout Session that saves a card without charging it: `mode=setup`, its
/// SetupIntent for off-session use, on the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSetupSession {
    pub customer: CustomerId,
    /// Stripe wants one in setup mode (it picks the payment methods offered by it): the
    /// currency the card will be charged in.
    pub currency: Currency,
    /// Our reference for the session (Stripe allows 200 characters).
    pub client_reference_id: String,
    /// On the session and on its SetupIntent (`setup_intent_data.metadata`), whose event saves
    /// the card.
    pub metadata: Metadata,
    /// The SetupIntent's description, shown in the dashboard.
    pub description: String,
    pub success_url: String,
    pub cancel_url: String,
}

/// Which of an account's events to list: those created in `[created_gte, created_lt)` of the
/// given types, a page of at most `limit` (1 to 100), older than `starting_after` when paging on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery<'a> {
    pub created_gte: i64,
    pub created_lt: i64,
    /// At most 20, as Stripe takes.
    pub types: &'a [&'a str],
    pub limit: u8,
    pub starting_after: Option<&'a str>,
}

/// One page of events, newest first, each as the body a webhook delivery of it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<ListedEvent>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEvent {
    pub id: String,
    pub created: i64,
    /// The event's JSON, as Stripe would POST it to a webhook endpoint.
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Open,
    Complete,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// The money is there: credit.
    Paid,
    /// Not (yet) paid: an open session, or a completed one whose payment method settles later
    /// (`checkout.session.async_payment_succeeded|failed` follows).
    Unpaid,
    NoPaymentRequired,
}

/// A session just created: send the customer to `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCheckoutSession {
    pub id: CheckoutId,
    pub url: String,
    pub payment_status: PaymentStatus,
    pub expires_at: OffsetDateTime,
}

/// A session as Stripe holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: CheckoutId,
    pub status: SessionStatus,
    pub payment_status: PaymentStatus,
    /// The total charged; `None` only if Stripe left it out.
    pub amount_total: Option<Money>,
    pub customer: Option<CustomerId>,
    pub client_reference_id: Option<String>,
    pub metadata: Metadata,
    pub payment_intent: Option<PaymentIntentId>,
    /// The card saved by this payment for later off-session charges (read from the expanded
    /// PaymentIntent), once the session is paid.
    pub payment_method: Option<PaymentMethodId>,
    /// The charge of the payment, once paid: refunds and disputes name it.
    pub charge: Option<ChargeId>,
    pub expires_at: OffsetDateTime,
    /// The payment page, while the session is open.
    pub url: Option<String>,
}

/// An off-session charge of a saved card: `customer`, `payment_method`, `off_session=true`,
/// `confirm=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffSessionCharge {
    pub customer: CustomerId,
    pub payment_method: PaymentMethodId,
    pub amount: Money,
    pub description: String,
    pub metadata: Metadata,
}

/// What an off-session charge came to. Declines and authentication requests are outcomes of
/// this call, not errors: the caller records them and stops trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffSessionOutcome {
    /// Charged. `payment_intent.succeeded` follows. `charge` is its `latest_charge`, whose
    /// receipt the customer gets (`None` if Stripe named none, or not a card's `ch_...`).
    Succeeded { payment_intent: PaymentIntentId, charge: Option<ChargeId> },
    /// Accepted, the money arrives later (bank debits): wait for `payment_intent.succeeded|
    /// payment_failed`.
    Processing { payment_intent: PaymentIntentId },
    /// `authentication_required`: the customer must come back on session.
    AuthenticationRequired { payment_intent: Option<PaymentIntentId> },
    /// Declined; `code` as in [`GatewayError::Declined`].
    Declined { payment_intent: Option<PaymentIntentId>, code: String },
}

/// Where a receipt is read, as Stripe serves it now: its pages' URLs are Stripe's to change
/// (a hosted invoice link expires), so they are asked for when wanted, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptLinks {
    /// The page the customer reads it on: an invoice's `hosted_invoice_url`, a charge's
    /// `receipt_url`.
    pub url: String,
    /// An invoice's PDF (`invoice_pdf`); a charge's receipt has none.
    pub pdf: Option<String>,
}

/// A partner's Stripe account, connected through Connect OAuth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAccount {
    pub account: AccountId,
    /// Whether the code came from a live-mode authorization (a test-mode account is refused on a
    /// live deployment).
    pub livemode: bool,
}

/// Whose Stripe account a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account<'a> {
    /// The platform's own account (no `Stripe-Account` header): a partner paying into its
    /// partner wallet is the platform's customer.
    Platform,
    /// A partner's connected account (`Stripe-Account: acct_...`): a workspace paying for points
    /// is the partner's customer.
    Connected(&'a AccountId),
}

/// The Stripe calls the product makes.
pub trait PaymentGateway: Send + Sync + 'static {
    /// Creates a customer on `account`. Call it once per workspace and store the id;
    /// a retry with the same `key` returns the same customer.
    fn create_customer(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        customer: &NewCustomer,
    ) -> impl Future<Output = Result<CustomerId, GatewayError>> + Send;

    /// Creates a hosted Checkout Session on `account`.
    fn create_checkout_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewCheckoutSession,
    ) -> impl Future<Output = Result<CreatedCheckoutSession, GatewayError>> + Send;

    /// Creates a hosted Checkout Session in setup mode on `account`: the customer saves a card
    /// and pays nothing; `setup_intent.succeeded` follows.
    fn create_setup_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewSetupSession,
    ) -> impl Future<Output = Result<CreatedCheckoutSession, GatewayError>> + Send;

    /// Detaches a payment method from its customer: it can't be charged again. One already
    /// detached is done already (`Ok`).
    fn detach_payment_method(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        id: &PaymentMethodId,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send;

    /// Reads a session, with its PaymentIntent expanded (for the saved payment method). A read
    /// needs no idempotency key: it is retried as it is.
    fn retrieve_checkout_session(
        &self,
        account: Account<'_>,
        id: &CheckoutId,
    ) -> impl Future<Output = Result<CheckoutSession, GatewayError>> + Send;

    /// Creates and confirms an off-session PaymentIntent on `account`.
    /// `Err(Declined | AuthenticationRequired)` never comes out of this call: those are outcomes.
    fn charge_off_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        charge: &OffSessionCharge,
    ) -> impl Future<Output = Result<OffSessionOutcome, GatewayError>> + Send;

    /// Lists `account`'s events (`GET /v1/events`), newest first: what happened on it, whether
    /// or not its webhook was delivered. A read: retried as it is.
    fn list_events(
        &self,
        account: Account<'_>,
        query: &EventQuery<'_>,
    ) -> impl Future<Output = Result<EventPage, GatewayError>> + Send;

    /// Reads a receipt's pages on `account`: an invoice's (`GET /v1/invoices/{id}`), or a
    /// charge's (`GET /v1/charges/{id}`). `Ok(None)`: Stripe has the object but no page for it
    /// (a draft invoice, a charge that did not succeed). An object of another account is
    /// `InvalidRequest` with code `resource_missing`, as one that never was. A read: retried as
    /// it is.
    fn retrieve_receipt(
        &self,
        account: Account<'_>,
        id: &ReceiptId,
    ) -> impl Future<Output = Result<Option<ReceiptLinks>, GatewayError>> + Send;

    /// Exchanges a Connect OAuth authorization code (from the partner's redirect) for the
    /// connected account. Made on the platform's own account; the code is single use, which makes
    /// the call idempotent by itself (see [`GatewayError::Ambiguous`] for a lost first answer).
    fn connect_account(&self, code: &OAuthCode) -> impl Future<Output = Result<ConnectedAccount, GatewayError>> + Send;

    /// Creates a monthly price of one of our products on `account`, creating the product (or
    /// renaming it) first: see [`PriceSpec`]. Call it once per product, amount and currency, and
    /// store the id; a retry with the same `key` returns the same price.
    fn create_price(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        spec: &PriceSpec,
    ) -> impl Future<Output = Result<PriceId, GatewayError>> + Send;

    /// Creates a hosted Checkout Session in subscription mode on `account`.
    fn create_subscription_checkout(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewSubscriptionCheckout,
    ) -> impl Future<Output = Result<CreatedCheckoutSession, GatewayError>> + Send;

    /// Reads a subscription as it is now (`GET /v1/subscriptions/{id}`). One of another account is
    /// `InvalidRequest` with code `resource_missing`. A read: retried as it is.
    fn retrieve_subscription(
        &self,
        account: Account<'_>,
        id: &SubscriptionId,
    ) -> impl Future<Output = Result<Subscription, GatewayError>> + Send;

    /// Changes a subscription's items or its end, never prorating (see [`SubscriptionChange`]),
    /// and answers it as it is after the change.
    fn update_subscription(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        id: &SubscriptionId,
        change: &SubscriptionChange,
    ) -> impl Future<Output = Result<Subscription, GatewayError>> + Send;

    /// Charges an amount now on an invoice of its own (see [`InvoiceCharge`]). A decline is
    /// `Ok(InvoiceOutcome::Declined)`, never an error.
    fn charge_invoice(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        charge: &InvoiceCharge,
    ) -> impl Future<Output = Result<InvoiceOutcome, GatewayError>> + Send;

    /// A page of a customer's invoices, newest first, at most `limit` (1 to 100), older than
    /// `starting_after` when paging on. A read: retried as it is.
    fn list_invoices(
        &self,
        account: Account<'_>,
        customer: &CustomerId,
        limit: u8,
        starting_after: Option<&InvoiceId>,
    ) -> impl Future<Output = Result<InvoicePage, GatewayError>> + Send;
}

/// A gateway call's future, boxed so that the gateway can sit behind a pointer.
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send + 'a>>;

/// [`PaymentGateway`] as a trait object: the operations hold an `Arc<dyn Gateway>` so that the
/// handlers' signatures don't grow a type parameter for it. Every [`PaymentGateway`] is one; the
/// box per call is nothing next to a network round trip.
pub trait Gateway: Send + Sync {
    fn create_customer<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        customer: &'a NewCustomer,
    ) -> GatewayFuture<'a, CustomerId>;

    fn create_checkout_session<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        session: &'a NewCheckoutSession,
    ) -> GatewayFuture<'a, CreatedCheckoutSession>;

    fn retrieve_checkout_session<'a>(
        &'a self,
        account: Account<'a>,
        id: &'a CheckoutId,
    ) -> GatewayFuture<'a, CheckoutSession>;

    fn create_setup_session<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        session: &'a NewSetupSession,
    ) -> GatewayFuture<'a, CreatedCheckoutSession>;

    fn detach_payment_method<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        id: &'a PaymentMethodId,
    ) -> GatewayFuture<'a, ()>;

    fn charge_off_session<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        charge: &'a OffSessionCharge,
    ) -> GatewayFuture<'a, OffSessionOutcome>;

    fn list_events<'a>(&'a self, account: Account<'a>, query: &'a EventQuery<'a>) -> GatewayFuture<'a, EventPage>;

    fn retrieve_receipt<'a>(
        &'a self,
        account: Account<'a>,
        id: &'a ReceiptId,
    ) -> GatewayFuture<'a, Option<ReceiptLinks>>;

    fn connect_account<'a>(&'a self, code: &'a OAuthCode) -> GatewayFuture<'a, ConnectedAccount>;

    fn create_price<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        spec: &'a PriceSpec,
    ) -> GatewayFuture<'a, PriceId>;

    fn create_subscription_checkout<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        session: &'a NewSubscriptionCheckout,
    ) -> GatewayFuture<'a, CreatedCheckoutSession>;

    fn retrieve_subscription<'a>(
        &'a self,
        account: Account<'a>,
        id: &'a SubscriptionId,
    ) -> GatewayFuture<'a, Subscription>;

    fn update_subscription<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        id: &'a SubscriptionId,
        change: &'a SubscriptionChange,
    ) -> GatewayFuture<'a, Subscription>;

    fn charge_invoice<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        charge: &'a InvoiceCharge,
    ) -> GatewayFuture<'a, InvoiceOutcome>;

    fn list_invoices<'a>(
        &'a self,
        account: Account<'a>,
        customer: &'a CustomerId,
        limit: u8,
        starting_after: Option<&'a InvoiceId>,
    ) -> GatewayFuture<'a, InvoicePage>;
}

impl<G: PaymentGateway> Gateway for G {
    fn create_customer<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        customer: &'a NewCustomer,
    ) -> GatewayFuture<'a, CustomerId> {
        Box::pin(PaymentGateway::create_customer(self, account, key, customer))
    }

    fn create_checkout_session<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        session: &'a NewCheckoutSession,
    ) -> GatewayFuture<'a, CreatedCheckoutSession> {
        Box::pin(PaymentGateway::create_checkout_session(self, account, key, session))
    }

    fn retrieve_checkout_session<'a>(
        &'a self,
        account: Account<'a>,
        id: &'a CheckoutId,
    ) -> GatewayFuture<'a, CheckoutSession> {
        Box::pin(PaymentGateway::retrieve_checkout_session(self, account, id))
    }

    fn create_setup_session<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        session: &'a NewSetupSession,
    ) -> GatewayFuture<'a, CreatedCheckoutSession> {
        Box::pin(PaymentGateway::create_setup_session(self, account, key, session))
    }

    fn detach_payment_method<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        id: &'a PaymentMethodId,
    ) -> GatewayFuture<'a, ()> {
        Box::pin(PaymentGateway::detach_payment_method(self, account, key, id))
    }

    fn charge_off_session<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        charge: &'a OffSessionCharge,
    ) -> GatewayFuture<'a, OffSessionOutcome> {
        Box::pin(PaymentGateway::charge_off_session(self, account, key, charge))
    }

    fn list_events<'a>(&'a self, account: Account<'a>, query: &'a EventQuery<'a>) -> GatewayFuture<'a, EventPage> {
        Box::pin(PaymentGateway::list_events(self, account, query))
    }

    fn retrieve_receipt<'a>(
        &'a self,
        account: Account<'a>,
        id: &'a ReceiptId,
    ) -> GatewayFuture<'a, Option<ReceiptLinks>> {
        Box::pin(PaymentGateway::retrieve_receipt(self, account, id))
    }

    fn connect_account<'a>(&'a self, code: &'a OAuthCode) -> GatewayFuture<'a, ConnectedAccount> {
        Box::pin(PaymentGateway::connect_account(self, code))
    }

    fn create_price<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        spec: &'a PriceSpec,
    ) -> GatewayFuture<'a, PriceId> {
        Box::pin(PaymentGateway::create_price(self, account, key, spec))
    }

    fn create_subscription_checkout<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        session: &'a NewSubscriptionCheckout,
    ) -> GatewayFuture<'a, CreatedCheckoutSession> {
        Box::pin(PaymentGateway::create_subscription_checkout(self, account, key, session))
    }

    fn retrieve_subscription<'a>(
        &'a self,
        account: Account<'a>,
        id: &'a SubscriptionId,
    ) -> GatewayFuture<'a, Subscription> {
        Box::pin(PaymentGateway::retrieve_subscription(self, account, id))
    }

    fn update_subscription<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        id: &'a SubscriptionId,
        change: &'a SubscriptionChange,
    ) -> GatewayFuture<'a, Subscription> {
        Box::pin(PaymentGateway::update_subscription(self, account, key, id, change))
    }

    fn charge_invoice<'a>(
        &'a self,
        account: Account<'a>,
        key: &'a IdempotencyKey,
        charge: &'a InvoiceCharge,
    ) -> GatewayFuture<'a, InvoiceOutcome> {
        Box::pin(PaymentGateway::charge_invoice(self, account, key, charge))
    }

    fn list_invoices<'a>(
        &'a self,
        account: Account<'a>,
        customer: &'a CustomerId,
        limit: u8,
        starting_after: Option<&'a InvoiceId>,
    ) -> GatewayFuture<'a, InvoicePage> {
        Box::pin(PaymentGateway::list_invoices(self, account, customer, limit, starting_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            let b0 = p.backoff(0).as_millis();
            let b1 = p.backoff(1).as_millis();
            let b2 = p.backoff(2).as_millis();
            let b9 = p.backoff(9).as_millis();
            assert!((125..=250).contains(&b0), "{b0}");
            assert!((250..=500).contains(&b1), "{b1}");
            assert!((500..=1000).contains(&b2), "{b2}");
            assert!((1000..=2000).contains(&b9), "{b9}");
        }
        assert!(p.backoff(u32::MAX).as_millis() <= 2000);
        let none = RetryPolicy { base_delay: Duration::ZERO, ..p };
        assert_eq!(none.backoff(3), Duration::ZERO);
    }

    #[test]
    fn attempts_are_bounded() {
        assert_eq!(RetryPolicy { max_attempts: 0, ..RetryPolicy::default() }.attempts(), 1);
        assert_eq!(RetryPolicy { max_attempts: 99, ..RetryPolicy::default() }.attempts(), MAX_ATTEMPTS);
    }

    #[test]
    fn metadata_limits() {
        let mut m = Metadata::new();
        assert_eq!(m.insert("", "v"), Err(InvalidMetadata::BadKey));
        assert_eq!(m.insert(&"k".repeat(41), "v"), Err(InvalidMetadata::BadKey));
        assert_eq!(m.insert("a[b]", "v"), Err(InvalidMetadata::BadKey));
        assert_eq!(m.insert("k", &"v".repeat(501)), Err(InvalidMetadata::ValueTooLong));
        for i in 0..METADATA_MAX_KEYS {
            m.insert(&format!("k{i}"), "v").unwrap();
        }
        assert_eq!(m.insert("one_more", "v"), Err(InvalidMetadata::TooManyKeys));
        // Replacing an existing key is not one more.
        assert_eq!(m.insert("k0", "w"), Ok(()));
        assert_eq!(m.get("k0"), Some("w"));
        assert_eq!(m.len(), METADATA_MAX_KEYS);
    }

    #[test]
    fn retryable_errors() {
        assert!(GatewayError::RateLimited.is_retryable());
        assert!(GatewayError::Unavailable.is_retryable());
        for e in [
            GatewayError::Declined { code: "card_declined".into() },
            GatewayError::AuthenticationRequired,
            GatewayError::InvalidRequest { message: "m".into(), param: None, code: None },
            GatewayError::Ambiguous("x".into()),
            GatewayError::Fatal("x".into()),
        ] {
            assert!(!e.is_retryable(), "{e:?}");
        }
    }
}
