//! The Stripe API part: routing to operations, the secret key, `Stripe-Account`, idempotency,
//! injected faults, the request log.

use std::time::Duration;

use base64::Engine as _;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::Value;

use crate::Fake;
use crate::form::Param;
use crate::state::{
    self, Acct, Expand, FaultKind, IdempotentResult, LoggedRequest, Reply, State, error, now_ms, random_id,
};

/// The calls the fake answers, named as faults and the request log name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CustomersCreate,
    CustomersRetrieve,
    CustomersRetrievePaymentMethod,
    CheckoutSessionsCreate,
    CheckoutSessionsRetrieve,
    CheckoutSessionsExpire,
    PaymentIntentsCreate,
    PaymentIntentsRetrieve,
    PaymentMethodsRetrieve,
    PaymentMethodsDetach,
    SetupIntentsRetrieve,
    ChargesRetrieve,
    InvoicesRetrieve,
    ProductsCreate,
    ProductsUpdate,
    ProductsRetrieve,
    PricesCreate,
    PricesRetrieve,
    SubscriptionsRetrieve,
    SubscriptionsUpdate,
    SubscriptionsCancel,
    InvoicesCreate,
    InvoicesPay,
    InvoicesVoid,
    InvoicesList,
    InvoiceItemsCreate,
    RefundsCreate,
    RefundsRetrieve,
    EventsList,
    OAuthToken,
}

impl Operation {
    pub const ALL: [Operation; 30] = [
        Self::CustomersCreate,
        Self::CustomersRetrieve,
        Self::CustomersRetrievePaymentMethod,
        Self::CheckoutSessionsCreate,
        Self::CheckoutSessionsRetrieve,
        Self::CheckoutSessionsExpire,
        Self::PaymentIntentsCreate,
        Self::PaymentIntentsRetrieve,
        Self::PaymentMethodsRetrieve,
        Self::PaymentMethodsDetach,
        Self::SetupIntentsRetrieve,
        Self::ChargesRetrieve,
        Self::InvoicesRetrieve,
        Self::ProductsCreate,
        Self::ProductsUpdate,
        Self::ProductsRetrieve,
        Self::PricesCreate,
        Self::PricesRetrieve,
        Self::SubscriptionsRetrieve,
        Self::SubscriptionsUpdate,
        Self::SubscriptionsCancel,
        Self::InvoicesCreate,
        Self::InvoicesPay,
        Self::InvoicesVoid,
        Self::InvoicesList,
        Self::InvoiceItemsCreate,
        Self::RefundsCreate,
        Self::RefundsRetrieve,
        Self::EventsList,
        Self::OAuthToken,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CustomersCreate => "customers.create",
            Self::CustomersRetrieve => "customers.retrieve",
            Self::CustomersRetrievePaymentMethod => "customers.retrieve_payment_method",
            Self::CheckoutSessionsCreate => "checkout.sessions.create",
            Self::CheckoutSessionsRetrieve => "checkout.sessions.retrieve",
            Self::CheckoutSessionsExpire => "checkout.sessions.expire",
            Self::PaymentIntentsCreate => "payment_intents.create",
            Self::PaymentIntentsRetrieve => "payment_intents.retrieve",
            Self::PaymentMethodsRetrieve => "payment_methods.retrieve",
            Self::PaymentMethodsDetach => "payment_methods.detach",
            Self::SetupIntentsRetrieve => "setup_intents.retrieve",
            Self::ChargesRetrieve => "charges.retrieve",
            Self::InvoicesRetrieve => "invoices.retrieve",
            Self::ProductsCreate => "products.create",
            Self::ProductsUpdate => "products.update",
            Self::ProductsRetrieve => "products.retrieve",
            Self::PricesCreate => "prices.create",
            Self::PricesRetrieve => "prices.retrieve",
            Self::SubscriptionsRetrieve => "subscriptions.retrieve",
            Self::SubscriptionsUpdate => "subscriptions.update",
            Self::SubscriptionsCancel => "subscriptions.cancel",
            Self::InvoicesCreate => "invoices.create",
            Self::InvoicesPay => "invoices.pay",
            Self::InvoicesVoid => "invoices.void",
            Self::InvoicesList => "invoices.list",
            Self::InvoiceItemsCreate => "invoiceitems.create",
            Self::RefundsCreate => "refunds.create",
            Self::RefundsRetrieve => "refunds.retrieve",
            Self::EventsList => "events.list",
            Self::OAuthToken => "oauth.token",
        }
    }

    /// The operation and the ids in its path.
    fn route<'a>(method: &Method, segments: &[&'a str]) -> Option<(Operation, PathIds<'a>)> {
        let get = method == Method::GET;
        let post = method == Method::POST;
        let delete = method == Method::DELETE;
        let none = PathIds::default();
        let id = |id: &'a str| PathIds { id, parent: "" };
        Some(match *segments {
            ["v1", "customers"] if post => (Self::CustomersCreate, none),
            ["v1", "customers", cus] if get => (Self::CustomersRetrieve, id(cus)),
            ["v1", "customers", cus, "payment_methods", pm] if get => {
                (Self::CustomersRetrievePaymentMethod, PathIds { id: pm, parent: cus })
            }
            ["v1", "checkout", "sessions"] if post => (Self::CheckoutSessionsCreate, none),
            ["v1", "checkout", "sessions", cs] if get => (Self::CheckoutSessionsRetrieve, id(cs)),
            ["v1", "checkout", "sessions", cs, "expire"] if post => (Self::CheckoutSessionsExpire, id(cs)),
            ["v1", "payment_intents"] if post => (Self::PaymentIntentsCreate, none),
            ["v1", "payment_intents", pi] if get => (Self::PaymentIntentsRetrieve, id(pi)),
            ["v1", "payment_methods", pm] if get => (Self::PaymentMethodsRetrieve, id(pm)),
            ["v1", "payment_methods", pm, "detach"] if post => (Self::PaymentMethodsDetach, id(pm)),
            ["v1", "setup_intents", seti] if get => (Self::SetupIntentsRetrieve, id(seti)),
            ["v1", "charges", ch] if get => (Self::ChargesRetrieve, id(ch)),
            ["v1", "invoices"] if get => (Self::InvoicesList, none),
            ["v1", "invoices"] if post => (Self::InvoicesCreate, none),
            ["v1", "invoices", inv] if get => (Self::InvoicesRetrieve, id(inv)),
            ["v1", "invoices", inv, "pay"] if post => (Self::InvoicesPay, id(inv)),
            ["v1", "invoices", inv, "void"] if post => (Self::InvoicesVoid, id(inv)),
            ["v1", "invoiceitems"] if post => (Self::InvoiceItemsCreate, none),
            ["v1", "products"] if post => (Self::ProductsCreate, none),
            ["v1", "products", prod] if post => (Self::ProductsUpdate, id(prod)),
            ["v1", "products", prod] if get => (Self::ProductsRetrieve, id(prod)),
            ["v1", "prices"] if post => (Self::PricesCreate, none),
            ["v1", "prices", price] if get => (Self::PricesRetrieve, id(price)),
            ["v1", "subscriptions", sub] if get => (Self::SubscriptionsRetrieve, id(sub)),
            ["v1", "subscriptions", sub] if post => (Self::SubscriptionsUpdate, id(sub)),
            ["v1", "subscriptions", sub] if delete => (Self::SubscriptionsCancel, id(sub)),
            ["v1", "refunds"] if post => (Self::RefundsCreate, none),
            ["v1", "refunds", re] if get => (Self::RefundsRetrieve, id(re)),
            ["v1", "events"] if get => (Self::EventsList, none),
            ["oauth", "token"] if post => (Self::OAuthToken, none),
            _ => return None,
        })
    }

    fn run(self, state: &mut State, acct: &Acct, ids: PathIds, p: &Param) -> Reply {
        let PathIds { id, parent } = ids;
        let result = match self {
            Self::CustomersCreate => state.create_customer(acct, p),
            Self::CustomersRetrieve => state.retrieve_customer(acct, id),
            Self::CustomersRetrievePaymentMethod => state.retrieve_customer_payment_method(acct, parent, id),
            Self::CheckoutSessionsCreate => state.create_session(acct, p),
            Self::CheckoutSessionsRetrieve => state.retrieve_session(acct, id, &Expand::of(p)),
            Self::CheckoutSessionsExpire => state.expire_session(Some(acct), id),
            Self::PaymentIntentsCreate => state.create_payment_intent(acct, p),
            Self::PaymentIntentsRetrieve => state.retrieve_payment_intent(acct, id),
            Self::PaymentMethodsRetrieve => state.retrieve_payment_method(acct, id),
            Self::PaymentMethodsDetach => state.detach_payment_method(acct, id),
            Self::SetupIntentsRetrieve => state.retrieve_setup_intent(acct, id, &Expand::of(p)),
            Self::ChargesRetrieve => state.retrieve_charge(acct, id),
            Self::InvoicesRetrieve => state.retrieve_invoice(acct, id),
            Self::InvoicesList => state.list_invoices(acct, p),
            Self::InvoicesCreate => state.create_invoice(acct, p),
            Self::InvoicesPay => state.pay_invoice(acct, id, p),
            Self::InvoicesVoid => state.void_invoice(acct, id, p),
            Self::InvoiceItemsCreate => state.create_invoice_item(acct, p),
            Self::ProductsCreate => state.create_product(acct, p),
            Self::ProductsUpdate => state.update_product(acct, id, p),
            Self::ProductsRetrieve => state.retrieve_product(acct, id),
            Self::PricesCreate => state.create_price(acct, p),
            Self::PricesRetrieve => state.retrieve_price(acct, id),
            Self::SubscriptionsRetrieve => state.retrieve_subscription(acct, id),
            Self::SubscriptionsUpdate => state.update_subscription(acct, id, p),
            Self::SubscriptionsCancel => state.cancel_subscription(acct, id, p),
            Self::RefundsCreate => state.create_refund(acct, p),
            Self::RefundsRetrieve => state.retrieve_refund(acct, id),
            Self::EventsList => state.list_events(acct, p),
            Self::OAuthToken => Ok(state.oauth_token(p)),
        };
        result.unwrap_or_else(|e| e)
    }
}

/// The ids in a call's path: the object's, and its parent's for an object read through another
/// (`/v1/customers/{parent}/payment_methods/{id}`); empty where the path has none.
#[derive(Debug, Clone, Copy, Default)]
struct PathIds<'a> {
    id: &'a str,
    parent: &'a str,
}

/// Whether Stripe keeps an answer under its idempotency key: when the endpoint ran (a success,
/// a card error), not when the parameters failed validation.
fn kept_under_key(status: u16) -> bool {
    (200..300).contains(&status) || status == 402
}

pub(crate) fn json_response(status: u16, body: &Value, headers: &[(&'static str, String)]) -> Response<Full<Bytes>> {
    let mut response = crate::text_response(
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR),
        "application/json",
        body.to_string(),
    );
    for (name, value) in headers {
        if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, v);
        }
    }
    response
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Takes one injected fault for `operation`, if any is left.
fn take_fault(state: &mut State, operation: &str) -> Option<(FaultKind, u64)> {
    let i = state.faults.iter().position(|f| f.remaining > 0 && (f.operation == operation || f.operation == "*"))?;
    let fault = &mut state.faults[i];
    fault.remaining -= 1;
    let taken = (fault.kind, fault.delay_ms);
    if fault.remaining == 0 {
        state.faults.remove(i);
    }
    Some(taken)
}

fn check_key(fake: &Fake, parts: &Parts) -> Result<(), Reply> {
    let Some(auth) = header(parts, "authorization") else {
        return Err(error(
            401,
            "invalid_request_error",
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            None,
        ));
    };
    // Bearer, as the libraries send it, or Basic with the key as the user name (`curl -u sk_test_..:`).
    let given = match auth.strip_prefix("Basic ") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .map(|user| user.split(':').next().unwrap_or_default().to_owned())
            .unwrap_or_default(),
        None => auth.strip_prefix("Bearer ").unwrap_or(auth).to_owned(),
    };
    if given != fake.config().secret_key {
        let tail: String = given.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(error(
            401,
            "invalid_request_error",
            None,
            &format!("Invalid API Key provided: sk_test_****{tail}"),
            None,
        ));
    }
    Ok(())
}

pub async fn handle(fake: &Fake, parts: &Parts, segments: &[&str], body: &Bytes) -> Response<Full<Bytes>> {
    let request_id = random_id("req_", 14);
    let version = header(parts, "stripe-version").unwrap_or(state::API_VERSION).to_owned();
    let mut headers: Vec<(&'static str, String)> = vec![("request-id", request_id), ("stripe-version", version)];
    let path = parts.uri.path().to_owned();
    let mut log = LoggedRequest {
        at_ms: now_ms(),
        method: parts.method.to_string(),
        path: path.clone(),
        operation: None,
        account: header(parts, "stripe-account").map(str::to_owned),
        idempotency_key: header(parts, "idempotency-key").map(str::to_owned),
        params: Value::Null,
        status: 0,
        replayed: false,
        fault: None,
    };
    let finish = |mut log: LoggedRequest, reply: Reply, headers: &[(&'static str, String)]| {
        log.status = reply.status;
        fake.state().log_request(log);
        json_response(reply.status, &reply.body, headers)
    };

    let Some((op, ids)) = Operation::route(&parts.method, segments) else {
        let message = format!(
            "Unrecognized request URL ({}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            parts.method
        );
        return finish(log, error(404, "invalid_request_error", None, &message, None), &headers);
    };
    log.operation = Some(op.name().to_owned());
    if let Err(reply) = check_key(fake, parts) {
        return finish(log, reply, &headers);
    }
    // The OAuth exchange is the platform's own call: the account is its answer, not its header.
    let acct: Acct = match (&log.account, op) {
        (Some(_), Operation::OAuthToken) | (None, _) => None,
        (Some(a), _) => {
            if !fake.state().account_usable(a) {
                let message = format!(
                    "The provided key 'sk_test_****' does not have access to account '{a}' (or that account does not exist). Application access may have been revoked."
                );
                return finish(
                    log,
                    error(403, "invalid_request_error", Some("account_invalid"), &message, None),
                    &headers,
                );
            }
            Some(a.clone())
        }
    };
    let query = parts.uri.query().filter(|q| !q.is_empty());
    let raw = if parts.method == Method::GET {
        parts.uri.query().unwrap_or("")
    } else if let (&Method::DELETE, Some(query)) = (&parts.method, query) {
        // A DELETE's parameters may come in the query, as Stripe's libraries send them.
        query
    } else {
        std::str::from_utf8(body).unwrap_or("\u{fffd}")
    };
    let params = match Param::parse(raw) {
        Ok(p) => p,
        Err(e) => return finish(log, error(400, "invalid_request_error", None, &e.to_string(), None), &headers),
    };
    log.params = params.to_json();
    // Stripe ignores keys on reads.
    let key = log.idempotency_key.clone().filter(|_| parts.method == Method::POST);
    if let Some(key) = &key {
        headers.push(("idempotency-key", key.clone()));
    }

    let fault = take_fault(&mut fake.state(), op.name());
    let mut delay_after = None;
    match fault {
        Some((FaultKind::ServerError, _)) => {
            log.fault = Some("500".into());
            headers.push(("stripe-should-retry", "true".into()));
            let reply = error(500, "api_error", None, "An unknown error occurred (injected by the fake).", None);
            return finish(log, reply, &headers);
        }
        Some((FaultKind::BadGateway, _)) => {
            log.fault = Some("502".into());
            log.status = 502;
            fake.state().log_request(log);
            let html = "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned();
            return crate::text_response(hyper::StatusCode::BAD_GATEWAY, "text/html", html);
        }
        Some((FaultKind::RateLimited, _)) => {
            log.fault = Some("429".into());
            headers.push(("stripe-should-retry", "true".into()));
            let reply = error(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Too many requests hit the API too quickly (injected by the fake).",
                None,
            );
            return finish(log, reply, &headers);
        }
        Some((FaultKind::TimeoutBefore, delay_ms)) => {
            log.fault = Some("timeout_before".into());
            let reply = error(500, "api_error", None, "The fake slept instead of acting (timeout_before).", None);
            let response = finish(log, reply, &headers);
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            return response;
        }
        Some((FaultKind::TimeoutAfter, delay_ms)) => {
            log.fault = Some("timeout_after".into());
            delay_after = Some(Duration::from_millis(delay_ms));
        }
        None => {}
    }

    let (reply, replayed) = {
        let mut state = fake.state();
        act(&mut state, op, &acct, ids, key.as_deref(), parts.method.as_str(), &path, &params)
    };
    if replayed {
        headers.push(("idempotent-replayed", "true".into()));
    }
    log.replayed = replayed;
    crate::webhooks::dispatch(fake).await;
    let response = finish(log, reply, &headers);
    if let Some(delay) = delay_after {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Runs `op` once per idempotency key: the same key with the same method, path and parameters
/// replays the kept answer; with anything else it is an `idempotency_error`.
#[allow(clippy::too_many_arguments)]
fn act(
    state: &mut State,
    op: Operation,
    acct: &Acct,
    ids: PathIds,
    key: Option<&str>,
    method: &str,
    path: &str,
    params: &Param,
) -> (Reply, bool) {
    let Some(key) = key else {
        return (op.run(state, acct, ids, params), false);
    };
    // Keys are scoped to the account the call acts on.
    let slot = (acct.clone().unwrap_or_default(), key.to_owned());
    if let Some(kept) = state.idempotency.get(&slot) {
        if kept.method == method && kept.path == path && kept.params == *params {
            return (kept.reply.clone(), true);
        }
        let message = format!(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
        );
        return (error(400, "idempotency_error", None, &message, None), false);
    }
    let reply = op.run(state, acct, ids, params);
    if kept_under_key(reply.status) {
        let kept = IdempotentResult {
            method: method.to_owned(),
            path: path.to_owned(),
            params: params.clone(),
            reply: reply.clone(),
        };
        state.idempotency.insert(slot, kept);
    }
    (reply, false)
}
