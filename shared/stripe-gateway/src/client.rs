//! [`PaymentGateway`] over async-stripe 1.0: with [`super::transport`], the only place that
//! knows async-stripe's types.
//!
//! - Every request names the connected account (`.account_id(..)` on the customized request)
//!   and, when it writes, carries the caller's key (`RequestStrategy::Idempotent`). The
//!   transport sends each call once, so the retry loop ([`StripeGateway::with_retries`]) is
//!   ours: the same key on every attempt, [`RetryPolicy`] backoff, at most
//!   [`super::gateway::MAX_ATTEMPTS`].
//! - async-stripe 1.0 has no call for Connect's OAuth token exchange (`POST
//!   https://connect.stripe.com/oauth/token`: it is not in Stripe's OpenAPI spec, which the crate is
//!   generated from), so [`StripeGateway::connect_account`] makes that POST itself over the same
//!   HTTP client.
//! - Amounts leave as `Money`'s integer minor units, which is what Stripe's `amount` /
//!   `unit_amount` are; the currency as its lowercase ISO code.
//! - Requests are async-stripe's typed parameters; answers are read into the small views below
//!   ([`CustomerView`], [`SessionView`], [`IntentView`], [`InvoiceView`], [`ChargeView`]): only
//!   the fields this gateway maps, parsed with the miniserde async-stripe itself uses.
//!   async-stripe's full `CheckoutSession` and `PaymentIntent` parsers (every nested object
//!   Stripe may return) were about half of each Stripe-calling bootstrap.
//! - Plans billed in money (products, prices, subscriptions, invoices) are in [`plans`].

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionInvoiceCreation, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentIntentDataSetupFutureUsage, CreateCheckoutSessionSetupIntentData, ProductData,
    RetrieveCheckoutSession,
};
use stripe_client_core::{RequestBuilder, RequestStrategy, StripeMethod, StripeRequest};
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentOffSession,
};
use stripe_shared::CheckoutSessionMode;
use time::OffsetDateTime;

use super::gateway::{
    Account, CheckoutSession, ConnectedAccount, CreatedCheckoutSession, EventPage, EventQuery, GatewayError,
    ListedEvent, Metadata, NewCheckoutSession, NewCustomer, NewSetupSession, OffSessionCharge, OffSessionOutcome,
    PaymentGateway, PaymentStatus, ReceiptLinks, RetryPolicy, SessionStatus,
};
use super::ids::{
    AccountId, ChargeId, CheckoutId, CustomerId, IdempotencyKey, InvoiceId, OAuthCode, PaymentIntentId,
    PaymentMethodId, PriceId, ReceiptId, SubscriptionId,
};
use super::subscription::{
    InvoiceCharge, InvoiceOutcome, InvoicePage, NewSubscriptionCheckout, PriceSpec, Subscription, SubscriptionChange,
};
use super::transport::{ApiError, CallError, HttpsClient, StripeHttp, exchange, https_client};
use domain::{Currency, Money};

/// Stripe's API, when no other base is configured.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com/";
/// Where Connect's OAuth token exchange lives.
pub const STRIPE_CONNECT_BASE: &str = "https://connect.stripe.com/";
/// Per attempt. Stripe answers in well under a second on a normal day. The worst case of a call
/// is [`super::gateway::MAX_ATTEMPTS`] x this + the backoff waits (at most 1.75 s by default):
/// 4 x 6 + 1.75 = 25.75 s, inside API Gateway's 29 s for create-checkout (its Lambda timeout
/// must allow it too). A too-short timeout is safe (the retry replays with the same key) but
/// wasteful; a caller with another budget sets its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6);

/// How to reach Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// The platform's secret key (`sk_live_...`, `sk_test_...`, or `rk_...`).
    pub secret_key: String,
    /// The API base URL: [`STRIPE_API_BASE`], or the fake's URL.
    pub api_base: String,
    /// The OAuth base URL: [`STRIPE_CONNECT_BASE`], or the fake's URL.
    pub connect_base: String,
    /// Per attempt, including reading the answer.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl StripeConfig {
    /// Stripe itself, with the default timeout and retries.
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: STRIPE_API_BASE.into(),
            connect_base: STRIPE_CONNECT_BASE.into(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// API and OAuth calls both go to `base` (the fake serves both).
    pub fn with_base(mut self, base: &str) -> Self {
        self.api_base = base.into();
        self.connect_base = base.into();
        self
    }
}

/// Paths join as `{base}v1/...`: the base must end with a slash.
fn with_trailing_slash(url: &str) -> String {
    if url.ends_with('/') { url.to_owned() } else { format!("{url}/") }
}

/// The gateway over Stripe's HTTP API. Cheap to clone; build it once per process.
#[derive(Clone)]
pub struct StripeGateway {
    client: StripeHttp,
    http: HttpsClient,
    oauth_url: String,
    secret_key: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No secret key in logs.
        f.debug_struct("StripeGateway").field("oauth_url", &self.oauth_url).finish_non_exhaustive()
    }
}

impl StripeGateway {
    /// Builds the client. Fails on a key that can't be a header, or when the system has no root
    /// certificates.
    pub fn new(config: StripeConfig) -> Result<Self, GatewayError> {
        let http = https_client().map_err(GatewayError::Fatal)?;
        let api_base = with_trailing_slash(&config.api_base);
        let client = StripeHttp::new(http.clone(), api_base, &config.secret_key, config.timeout)
            .map_err(|e| GatewayError::Fatal(format!("Stripe client: {e}")))?;
        Ok(Self {
            client,
            http,
            oauth_url: format!("{}oauth/token", with_trailing_slash(&config.connect_base)),
            secret_key: config.secret_key,
            timeout: config.timeout,
            retry: config.retry,
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or [`RetryPolicy::attempts`] are used.
    /// The caller's closure sends the same idempotency key every time.
    async fn with_retries<T, Fut>(
        &self,
        operation: &'static str,
        mut attempt: impl FnMut() -> Fut + Send,
    ) -> Result<T, GatewayError>
    where
        Fut: Future<Output = Result<T, GatewayError>> + Send,
    {
        let attempts = self.retry.attempts();
        let mut made = 0;
        loop {
            made += 1;
            match attempt().await {
                Err(e) if e.is_retryable() && made < attempts => {
                    let wait = self.retry.backoff(made - 1);
                    tracing::warn!(operation, attempt = made, error = %e, wait_ms = wait.as_millis() as u64, "Stripe call failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    tracing::warn!(operation, attempts = made, error = %e, "Stripe call failed");
                    return Err(e);
                }
                Ok(v) => return Ok(v),
            }
        }
    }

    fn strategy(key: &IdempotencyKey) -> Result<RequestStrategy, GatewayError> {
        let key = stripe_client_core::IdempotencyKey::new(key.as_str())
            .map_err(|e| GatewayError::Fatal(format!("idempotency key: {e}")))?;
        Ok(RequestStrategy::Idempotent(key))
    }

    /// One OAuth token exchange attempt: `Ok(Err(..))` is Stripe's OAuth error (`invalid_grant`...).
    async fn oauth_attempt(&self, code: &OAuthCode) -> Result<Result<ConnectedAccount, OAuthError>, GatewayError> {
        let body = format!("grant_type=authorization_code&code={}", code.as_str());
        let request = hyper::Request::post(&self.oauth_url)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.secret_key))
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| GatewayError::Fatal(format!("OAuth request: {e}")))?;
        let (status, body) = exchange(&self.http, request, self.timeout).await.map_err(classify)?;
        parse_oauth_response(status, &body)
    }
}

/// Stripe's OAuth errors: `{"error": "invalid_grant", "error_description": "..."}`.
#[derive(Debug, serde::Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct OAuthToken {
    stripe_user_id: String,
    livemode: bool,
}

fn parse_oauth_response(status: u16, body: &[u8]) -> Result<Result<ConnectedAccount, OAuthError>, GatewayError> {
    match status {
        200..=299 => {
            let token: OAuthToken = serde_json::from_slice(body)
                .map_err(|e| GatewayError::Ambiguous(format!("unreadable OAuth token answer: {e}")))?;
            let account = AccountId::parse(&token.stripe_user_id)
                .map_err(|e| GatewayError::Ambiguous(format!("OAuth token answer: {e}")))?;
            Ok(Ok(ConnectedAccount { account, livemode: token.livemode }))
        }
        429 => Err(GatewayError::RateLimited),
        409 | 500..=599 => Err(GatewayError::Unavailable),
        _ => match serde_json::from_slice::<OAuthError>(body) {
            Ok(e) => Ok(Err(e)),
            Err(_) => Err(GatewayError::Fatal(format!("OAuth token exchange answered HTTP {status}"))),
        },
    }
}

/// The one place a Stripe failure becomes a [`GatewayError`].
fn classify(error: CallError) -> GatewayError {
    match error {
        CallError::Api { status, error } => classify_api(status, &error),
        // None of these says whether Stripe acted: all are retried with the same key.
        CallError::Transport(message) => {
            tracing::warn!(error = %message, "Stripe could not be reached");
            GatewayError::Unavailable
        }
        CallError::Timeout => GatewayError::Unavailable,
        CallError::UnreadableError { status } => {
            tracing::warn!(status, "Stripe answered an error that is not Stripe's JSON");
            GatewayError::Unavailable
        }
        // A success we can't parse: Stripe acted, we can't read what it did, and the same key
        // replays the same answer.
        CallError::Unreadable(message) => GatewayError::Ambiguous(message),
        CallError::Request(message) => GatewayError::Fatal(message),
    }
}

fn classify_api(status: u16, api: &ApiError) -> GatewayError {
    let code = api.code.clone().or_else(|| match api.type_.as_str() {
        // Stripe gives the reused-key error a type and no code.
        "idempotency_error" => Some("idempotency_error".to_owned()),
        _ => None,
    });
    let message = api.message.clone().unwrap_or_else(|| format!("HTTP {status}"));
    let is_card_error = api.type_ == "card_error";
    match status {
        402 if code.as_deref() == Some("authentication_required")
            || api.decline_code.as_deref() == Some("authentication_required") =>
        {
            GatewayError::AuthenticationRequired
        }
        402 => GatewayError::Declined {
            code: api.decline_code.clone().or(code).unwrap_or_else(|| "card_declined".to_owned()),
        },
        _ if is_card_error => {
            GatewayError::Declined { code: api.decline_code.clone().or(code).unwrap_or_else(|| "card_declined".into()) }
        }
        409 => GatewayError::Unavailable,
        429 => GatewayError::RateLimited,
        500..=599 => GatewayError::Unavailable,
        401 | 403 => GatewayError::Fatal(message),
        _ => GatewayError::InvalidRequest { message, param: api.param.clone(), code },
    }
}

/// Names the connected account on a request (`Stripe-Account`); the platform's own calls name none.
macro_rules! on {
    ($request:expr, $account:expr) => {{
        let request = $request;
        match $account {
            Account::Platform => request,
            Account::Connected(a) => request.account_id(stripe_client_core::AccountId::from(a.as_str())),
        }
    }};
}

// After `on!`, which it uses.
mod plans;

fn to_currency(currency: Currency) -> stripe_types::Currency {
    stripe_types::Currency::from_str(currency.code()).unwrap_or_else(|never| match never {})
}

fn to_metadata(metadata: &Metadata) -> HashMap<String, String> {
    metadata.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// An id Stripe returned that isn't what Stripe promises: its contract broke, not ours.
fn returned<T, E: std::fmt::Display>(what: &str, parsed: Result<T, E>) -> Result<T, GatewayError> {
    parsed.map_err(|e| GatewayError::Fatal(format!("Stripe returned a bad {what}: {e}")))
}

fn timestamp(what: &str, unix_s: i64) -> Result<OffsetDateTime, GatewayError> {
    returned(what, OffsetDateTime::from_unix_timestamp(unix_s))
}

/// The fields of a Customer this gateway reads.
#[derive(miniserde::Deserialize)]
struct CustomerView {
    id: String,
}

/// The fields of a just-created Checkout Session this gateway reads.
#[derive(miniserde::Deserialize)]
struct CreatedSessionView {
    id: String,
    payment_status: String,
    expires_at: i64,
    url: Option<String>,
}

/// The fields of a retrieved Checkout Session this gateway reads. Its PaymentIntent is asked for
/// expanded (an object); the customer, and the PaymentIntent's card and charge, are not (ids).
#[derive(miniserde::Deserialize)]
struct SessionView {
    id: String,
    status: Option<String>,
    payment_status: String,
    amount_total: Option<i64>,
    currency: Option<String>,
    customer: Option<String>,
    client_reference_id: Option<String>,
    metadata: Option<HashMap<String, String>>,
    payment_intent: Option<SessionIntentView>,
    expires_at: i64,
    url: Option<String>,
}

#[derive(miniserde::Deserialize)]
struct SessionIntentView {
    id: String,
    payment_method: Option<String>,
    latest_charge: Option<String>,
}

/// The fields of a PaymentIntent this gateway reads.
#[derive(miniserde::Deserialize)]
struct IntentView {
    id: String,
    status: String,
    last_payment_error: Option<PaymentErrorView>,
    /// Not expanded: an id.
    latest_charge: Option<String>,
}

/// The fields of an Invoice this gateway reads: its pages, once finalized.
#[derive(miniserde::Deserialize)]
struct InvoiceView {
    hosted_invoice_url: Option<String>,
    invoice_pdf: Option<String>,
}

/// The field of a Charge this gateway reads: its receipt's page.
#[derive(miniserde::Deserialize)]
struct ChargeView {
    receipt_url: Option<String>,
}

#[derive(miniserde::Deserialize)]
struct PaymentErrorView {
    code: Option<String>,
    decline_code: Option<String>,
}

/// The field of a PaymentMethod this gateway reads: whether it is still attached (its customer
/// is not expanded: an id).
#[derive(miniserde::Deserialize)]
struct PaymentMethodView {
    customer: Option<String>,
}

/// A page of events: each kept whole (as JSON), for the webhook's own parser.
#[derive(miniserde::Deserialize)]
struct EventListView {
    data: Vec<miniserde::json::Value>,
    has_more: bool,
}

/// The id and time of a listed event, read from its JSON.
#[derive(miniserde::Deserialize)]
struct EventHead {
    id: String,
    created: i64,
}

/// `GET /v1/events`' query, in Stripe's own notation (`created[gte]`, `types[]`): async-stripe's
/// encoder would number the types (`types[0]`), which Stripe takes too, but this is the form its
/// documentation shows.
fn events_query(q: &EventQuery<'_>) -> String {
    let mut query = format!("created[gte]={}&created[lt]={}&limit={}", q.created_gte, q.created_lt, q.limit);
    for t in q.types {
        query.push_str(&format!("&types[]={t}"));
    }
    if let Some(after) = q.starting_after {
        query.push_str(&format!("&starting_after={after}"));
    }
    query
}

fn listed_event(value: &miniserde::json::Value) -> Result<ListedEvent, GatewayError> {
    let payload = miniserde::json::to_string(value);
    let head: EventHead = returned("event", miniserde::json::from_str(&payload))?;
    Ok(ListedEvent { id: head.id, created: head.created, payload })
}

fn payment_status(status: &str) -> Result<PaymentStatus, GatewayError> {
    match status {
        "paid" => Ok(PaymentStatus::Paid),
        "unpaid" => Ok(PaymentStatus::Unpaid),
        "no_payment_required" => Ok(PaymentStatus::NoPaymentRequired),
        other => Err(GatewayError::Fatal(format!("unknown payment_status {other:?}"))),
    }
}

fn session_status(status: Option<&str>) -> Result<SessionStatus, GatewayError> {
    match status {
        Some("open") => Ok(SessionStatus::Open),
        Some("complete") => Ok(SessionStatus::Complete),
        Some("expired") => Ok(SessionStatus::Expired),
        other => Err(GatewayError::Fatal(format!("unknown session status {other:?}"))),
    }
}

fn session_from_stripe(s: SessionView) -> Result<CheckoutSession, GatewayError> {
    let amount_total = match (s.amount_total, &s.currency) {
        (Some(amount), Some(currency)) => {
            let currency = returned("currency", Currency::parse(currency))?;
            Some(returned("amount_total", Money::from_minor(amount, currency))?)
        }
        _ => None,
    };
    let (payment_intent, payment_method, charge) = match &s.payment_intent {
        None => (None, None, None),
        Some(pi) => (
            Some(returned("payment_intent", PaymentIntentId::parse(&pi.id))?),
            returned("payment_method", pi.payment_method.as_deref().map(PaymentMethodId::parse).transpose())?,
            returned("charge", pi.latest_charge.as_deref().map(ChargeId::parse).transpose())?,
        ),
    };
    Ok(CheckoutSession {
        id: returned("session id", CheckoutId::parse(&s.id))?,
        status: session_status(s.status.as_deref())?,
        payment_status: payment_status(&s.payment_status)?,
        amount_total,
        customer: returned("customer", s.customer.as_deref().map(CustomerId::parse).transpose())?,
        client_reference_id: s.client_reference_id,
        metadata: Metadata::from_stripe(s.metadata.unwrap_or_default()),
        payment_intent,
        payment_method,
        charge,
        expires_at: timestamp("expires_at", s.expires_at)?,
        url: s.url,
    })
}

/// The code of a decline: the card's `decline_code` first, then the error's `code`.
fn declined_code(decline_code: Option<&str>, code: Option<&str>) -> String {
    decline_code.or(code).unwrap_or("card_declined").to_owned()
}

fn outcome_from_error(error: &CallError) -> Option<OffSessionOutcome> {
    let CallError::Api { status: 402, error: api } = error else { return None };
    let payment_intent = api.payment_intent.as_ref().and_then(|pi| PaymentIntentId::parse(&pi.id).ok());
    Some(match classify_api(402, api) {
        GatewayError::AuthenticationRequired => OffSessionOutcome::AuthenticationRequired { payment_intent },
        _ => OffSessionOutcome::Declined {
            payment_intent,
            code: declined_code(api.decline_code.as_deref(), api.code.as_deref()),
        },
    })
}

fn outcome_from_intent(pi: IntentView) -> Result<OffSessionOutcome, GatewayError> {
    let payment_intent = returned("payment intent id", PaymentIntentId::parse(&pi.id))?;
    match pi.status.as_str() {
        "succeeded" => {
            // Only the receipt is named by it: a charge id we can't read costs the receipt, never
            // the outcome of a charge that was made.
            let charge = pi.latest_charge.as_deref().and_then(|c| ChargeId::parse(c).ok());
            Ok(OffSessionOutcome::Succeeded { payment_intent, charge })
        }
        "processing" => Ok(OffSessionOutcome::Processing { payment_intent }),
        "requires_action" => Ok(OffSessionOutcome::AuthenticationRequired { payment_intent: Some(payment_intent) }),
        "requires_payment_method" => {
            let error = pi.last_payment_error.as_ref();
            Ok(OffSessionOutcome::Declined {
                payment_intent: Some(payment_intent),
                code: declined_code(
                    error.and_then(|e| e.decline_code.as_deref()),
                    error.and_then(|e| e.code.as_deref()),
                ),
            })
        }
        other => Err(GatewayError::Fatal(format!("PaymentIntent {payment_intent} is {other:?} after confirm"))),
    }
}

impl StripeGateway {
    /// Creates a Checkout Session (either mode) under `key`: its id, page and expiry.
    async fn create_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        request: &CreateCheckoutSession,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        let strategy = &Self::strategy(key)?;
        let created = self
            .with_retries("checkout.sessions.create", || async move {
                on!(request.build().customize::<CreatedSessionView>(), account)
                    .request_strategy(strategy.clone())
                    .send(&self.client)
                    .await
                    .map_err(classify)
            })
            .await?;
        let id = returned("session id", CheckoutId::parse(&created.id))?;
        let url = created.url.ok_or_else(|| GatewayError::Fatal(format!("session {id} has no url")))?;
        Ok(CreatedCheckoutSession {
            payment_status: payment_status(&created.payment_status)?,
            expires_at: timestamp("expires_at", created.expires_at)?,
            id,
            url,
        })
    }
}

impl PaymentGateway for StripeGateway {
    async fn create_customer(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        customer: &NewCustomer,
    ) -> Result<CustomerId, GatewayError> {
        let request =
            CreateCustomer::new().description(customer.description.clone()).metadata(to_metadata(&customer.metadata));
        let (request, strategy) = (&request, &Self::strategy(key)?);
        let created = self
            .with_retries("customers.create", || async move {
                on!(request.build().customize::<CustomerView>(), account)
                    .request_strategy(strategy.clone())
                    .send(&self.client)
                    .await
                    .map_err(classify)
            })
            .await?;
        returned("customer id", CustomerId::parse(&created.id))
    }

    async fn create_checkout_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewCheckoutSession,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        let currency = to_currency(session.amount.currency());
        let mut price_data = CreateCheckoutSessionLineItemsPriceData::new(currency);
        price_data.unit_amount = Some(session.amount.amount_minor());
        price_data.product_data = Some(ProductData::new(session.label.clone()));
        let mut line_item = CreateCheckoutSessionLineItems::new();
        line_item.price_data = Some(price_data);
        line_item.quantity = Some(1);
        let mut payment_intent_data = CreateCheckoutSessionPaymentIntentData::new();
        // Saves the card on the customer for auto top-up's off-session charges.
        payment_intent_data.setup_future_usage =
            Some(CreateCheckoutSessionPaymentIntentDataSetupFutureUsage::OffSession);
        // The PaymentIntent carries the metadata too, so payment_intent.* events can be traced.
        payment_intent_data.metadata = Some(to_metadata(&session.metadata));
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(session.customer.as_str())
            .line_items(vec![line_item])
            .payment_intent_data(payment_intent_data)
            // A paid invoice for the payment: Stripe emails it to the customer as the receipt, and
            // the completed session names it (`invoice`) for the ledger entry of the top-up.
            .invoice_creation(CreateCheckoutSessionInvoiceCreation::new(true))
            .metadata(to_metadata(&session.metadata))
            .client_reference_id(session.client_reference_id.clone())
            .success_url(session.success_url.clone())
            .cancel_url(session.cancel_url.clone());
        self.create_session(account, key, &request).await
    }

    async fn retrieve_checkout_session(
        &self,
        account: Account<'_>,
        id: &CheckoutId,
    ) -> Result<CheckoutSession, GatewayError> {
        let request = RetrieveCheckoutSession::new(id.as_str()).expand(vec!["payment_intent".to_owned()]);
        let request = &request;
        let session = self
            .with_retries("checkout.sessions.retrieve", || async move {
                on!(request.build().customize::<SessionView>(), account).send(&self.client).await.map_err(classify)
            })
            .await?;
        session_from_stripe(session)
    }

    async fn create_setup_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewSetupSession,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        let mut setup_intent_data = CreateCheckoutSessionSetupIntentData::new();
        // The SetupIntent carries the metadata: its `setup_intent.succeeded` saves the card.
        setup_intent_data.metadata = Some(to_metadata(&session.metadata));
        setup_intent_data.description = Some(session.description.clone());
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Setup)
            .customer(session.customer.as_str())
            .currency(to_currency(session.currency))
            .setup_intent_data(setup_intent_data)
            .metadata(to_metadata(&session.metadata))
            .client_reference_id(session.client_reference_id.clone())
            .success_url(session.success_url.clone())
            .cancel_url(session.cancel_url.clone());
        self.create_session(account, key, &request).await
    }

    async fn detach_payment_method(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        id: &PaymentMethodId,
    ) -> Result<(), GatewayError> {
        // async-stripe has these two calls in a crate of its own (async-stripe-payment), whose
        // build is not worth two requests without parameters: they are made by path.
        let strategy = &Self::strategy(key)?;
        let detached = self
            .with_retries("payment_methods.detach", || async move {
                on!(
                    RequestBuilder::new(StripeMethod::Post, format!("/payment_methods/{id}/detach"))
                        .customize::<PaymentMethodView>(),
                    account
                )
                .request_strategy(strategy.clone())
                .send(&self.client)
                .await
                .map_err(classify)
            })
            .await;
        match detached {
            Ok(_) => Ok(()),
            // Refused: detached already (by an earlier request, or in the dashboard) is done.
            Err(refused @ GatewayError::InvalidRequest { .. }) => {
                let pm = self
                    .with_retries("payment_methods.retrieve", || async move {
                        on!(
                            RequestBuilder::new(StripeMethod::Get, format!("/payment_methods/{id}"))
                                .customize::<PaymentMethodView>(),
                            account
                        )
                        .send(&self.client)
                        .await
                        .map_err(classify)
                    })
                    .await?;
                if pm.customer.is_none() { Ok(()) } else { Err(refused) }
            }
            Err(e) => Err(e),
        }
    }

    async fn charge_off_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        charge: &OffSessionCharge,
    ) -> Result<OffSessionOutcome, GatewayError> {
        let mut automatic = CreatePaymentIntentAutomaticPaymentMethods::new(true);
        // Nobody is there to follow a redirect, and without this Stripe wants a return_url.
        automatic.allow_redirects = Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
        let request = CreatePaymentIntent::new(charge.amount.amount_minor(), to_currency(charge.amount.currency()))
            .customer(charge.customer.as_str())
            .payment_method(charge.payment_method.as_str())
            .off_session(CreatePaymentIntentOffSession::Bool(true))
            .confirm(true)
            .automatic_payment_methods(automatic)
            .description(charge.description.clone())
            .metadata(to_metadata(&charge.metadata));
        let (request, strategy) = (&request, &Self::strategy(key)?);
        self.with_retries("payment_intents.create", || async move {
            let request = on!(request.build().customize::<IntentView>(), account).request_strategy(strategy.clone());
            match request.send(&self.client).await {
                Ok(pi) => outcome_from_intent(pi),
                Err(e) => match outcome_from_error(&e) {
                    Some(outcome) => Ok(outcome),
                    None => Err(classify(e)),
                },
            }
        })
        .await
    }

    async fn list_events(&self, account: Account<'_>, query: &EventQuery<'_>) -> Result<EventPage, GatewayError> {
        // async-stripe has the call in a feature of its own (`event`), whose types the webhook
        // never uses: made by path, with the query written out.
        let query = &events_query(query);
        let page = self
            .with_retries("events.list", || async move {
                let mut request = RequestBuilder::new(StripeMethod::Get, "/events");
                request.query = Some(query.clone());
                on!(request.customize::<EventListView>(), account).send(&self.client).await.map_err(classify)
            })
            .await?;
        let events = page.data.iter().map(listed_event).collect::<Result<_, _>>()?;
        Ok(EventPage { events, has_more: page.has_more })
    }

    async fn retrieve_receipt(
        &self,
        account: Account<'_>,
        id: &ReceiptId,
    ) -> Result<Option<ReceiptLinks>, GatewayError> {
        // async-stripe has the invoice's call in a crate of its own (async-stripe-billing), and the
        // charge's behind a feature whose types nothing else here uses: two reads without
        // parameters, made by path.
        match id {
            ReceiptId::Invoice(invoice) => {
                let got = self
                    .with_retries("invoices.retrieve", || async move {
                        on!(
                            RequestBuilder::new(StripeMethod::Get, format!("/invoices/{invoice}"))
                                .customize::<InvoiceView>(),
                            account
                        )
                        .send(&self.client)
                        .await
                        .map_err(classify)
                    })
                    .await?;
                Ok(got.hosted_invoice_url.map(|url| ReceiptLinks { url, pdf: got.invoice_pdf }))
            }
            ReceiptId::Charge(charge) => {
                let got = self
                    .with_retries("charges.retrieve", || async move {
                        on!(
                            RequestBuilder::new(StripeMethod::Get, format!("/charges/{charge}"))
                                .customize::<ChargeView>(),
                            account
                        )
                        .send(&self.client)
                        .await
                        .map_err(classify)
                    })
                    .await?;
                Ok(got.receipt_url.map(|url| ReceiptLinks { url, pdf: None }))
            }
        }
    }

    async fn create_price(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        spec: &PriceSpec,
    ) -> Result<PriceId, GatewayError> {
        self.plans_create_price(account, key, spec).await
    }

    async fn create_subscription_checkout(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewSubscriptionCheckout,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        self.plans_create_subscription_checkout(account, key, session).await
    }

    async fn retrieve_subscription(
        &self,
        account: Account<'_>,
        id: &SubscriptionId,
    ) -> Result<Subscription, GatewayError> {
        self.plans_retrieve_subscription(account, id).await
    }

    async fn update_subscription(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        id: &SubscriptionId,
        change: &SubscriptionChange,
    ) -> Result<Subscription, GatewayError> {
        self.plans_update_subscription(account, key, id, change).await
    }

    async fn charge_invoice(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        charge: &InvoiceCharge,
    ) -> Result<InvoiceOutcome, GatewayError> {
        self.plans_charge_invoice(account, key, charge).await
    }

    async fn list_invoices(
        &self,
        account: Account<'_>,
        customer: &CustomerId,
        limit: u8,
        starting_after: Option<&InvoiceId>,
    ) -> Result<InvoicePage, GatewayError> {
        self.plans_list_invoices(account, customer, limit, starting_after).await
    }

    async fn connect_account(&self, code: &OAuthCode) -> Result<ConnectedAccount, GatewayError> {
        // No idempotency key: the code itself is single use. If an attempt whose answer we lost
        // used it, the retry is told `invalid_grant`, and we can't know the account: Ambiguous.
        let uncertain = AtomicBool::new(false);
        let uncertain = &uncertain;
        self.with_retries("oauth.token", || async move {
            let earlier_attempt_uncertain = uncertain.load(Ordering::Relaxed);
            match self.oauth_attempt(code).await {
                Ok(Ok(account)) => Ok(account),
                Ok(Err(e)) if e.error == "invalid_grant" && earlier_attempt_uncertain => Err(GatewayError::Ambiguous(
                    "the authorization code was used by an attempt whose answer was lost".into(),
                )),
                Ok(Err(e)) if matches!(e.error.as_str(), "invalid_grant" | "invalid_request") => {
                    Err(GatewayError::InvalidRequest {
                        message: e.error_description.unwrap_or_else(|| e.error.clone()),
                        param: Some("code".into()),
                        code: Some(e.error),
                    })
                }
                Ok(Err(e)) => Err(GatewayError::Fatal(format!(
                    "OAuth token exchange: {} {}",
                    e.error,
                    e.error_description.unwrap_or_default()
                ))),
                Err(e) => {
                    // A 429 was turned away before acting; anything else may have used the code.
                    if e != GatewayError::RateLimited {
                        uncertain.store(true, Ordering::Relaxed);
                    }
                    Err(e)
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(type_: &str, code: Option<&str>, decline_code: Option<&str>) -> ApiError {
        ApiError {
            type_: type_.into(),
            code: code.map(str::to_owned),
            decline_code: decline_code.map(str::to_owned),
            message: Some("m".into()),
            param: Some("p".into()),
            payment_intent: None,
        }
    }

    #[test]
    fn stripe_errors_map_to_what_the_caller_does() {
        let card = |code, decline| classify_api(402, &api("card_error", code, decline));
        assert_eq!(card(Some("authentication_required"), None), GatewayError::AuthenticationRequired);
        assert_eq!(card(Some("card_declined"), Some("authentication_required")), GatewayError::AuthenticationRequired);
        assert_eq!(
            card(Some("card_declined"), Some("insufficient_funds")),
            GatewayError::Declined { code: "insufficient_funds".into() }
        );
        assert_eq!(card(Some("expired_card"), None), GatewayError::Declined { code: "expired_card".into() });
        assert_eq!(card(None, None), GatewayError::Declined { code: "card_declined".into() });
        assert_eq!(
            classify_api(400, &api("idempotency_error", None, None)),
            GatewayError::InvalidRequest {
                message: "m".into(),
                param: Some("p".into()),
                code: Some("idempotency_error".into())
            }
        );
        assert_eq!(
            classify_api(400, &api("invalid_request_error", Some("amount_too_small"), None)),
            GatewayError::InvalidRequest {
                message: "m".into(),
                param: Some("p".into()),
                code: Some("amount_too_small".into())
            }
        );
        assert_eq!(
            classify_api(409, &api("idempotency_error", Some("idempotency_key_in_use"), None)),
            GatewayError::Unavailable
        );
        assert_eq!(
            classify_api(429, &api("invalid_request_error", Some("rate_limit"), None)),
            GatewayError::RateLimited
        );
        assert_eq!(classify_api(500, &api("api_error", None, None)), GatewayError::Unavailable);
        assert_eq!(classify_api(503, &api("api_error", None, None)), GatewayError::Unavailable);
        assert_eq!(
            classify_api(403, &api("invalid_request_error", Some("account_invalid"), None)),
            GatewayError::Fatal("m".into())
        );
        assert_eq!(classify_api(401, &api("invalid_request_error", None, None)), GatewayError::Fatal("m".into()));
        assert_eq!(classify(CallError::Timeout), GatewayError::Unavailable);
        assert_eq!(classify(CallError::Transport("reset".into())), GatewayError::Unavailable);
        assert_eq!(classify(CallError::Unreadable("x".into())), GatewayError::Ambiguous("x".into()));
        assert_eq!(classify(CallError::UnreadableError { status: 502 }), GatewayError::Unavailable);
    }

    #[test]
    fn oauth_answers() {
        let ok = parse_oauth_response(200, br#"{"stripe_user_id":"acct_1","livemode":false,"access_token":"x"}"#);
        assert_eq!(
            ok.unwrap().unwrap(),
            ConnectedAccount { account: AccountId::parse("acct_1").unwrap(), livemode: false }
        );
        let used = parse_oauth_response(400, br#"{"error":"invalid_grant","error_description":"used"}"#);
        assert_eq!(used.unwrap().unwrap_err().error, "invalid_grant");
        assert_eq!(parse_oauth_response(500, b"").unwrap_err(), GatewayError::Unavailable);
        assert_eq!(parse_oauth_response(429, b"").unwrap_err(), GatewayError::RateLimited);
        assert!(matches!(parse_oauth_response(200, b"{}"), Err(GatewayError::Ambiguous(_))));
        assert!(matches!(parse_oauth_response(401, b"<html>"), Err(GatewayError::Fatal(_))));
    }

    #[test]
    fn base_urls_get_their_slash() {
        assert_eq!(with_trailing_slash("http://127.0.0.1:1"), "http://127.0.0.1:1/");
        assert_eq!(with_trailing_slash("https://api.stripe.com/"), "https://api.stripe.com/");
    }
}
