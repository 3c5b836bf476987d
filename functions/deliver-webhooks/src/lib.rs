//! Partner webhooks, on the table's stream and on a schedule. A stream batch names ledger entries
//! and partner events just written. A wallet whose ledger moved has its balance alerts worked out
//! (`balance.low`, `balance.recovered`: partner events themselves). Each event is queued for its
//! partner's endpoint (once, however often the stream hands it over) and the partner's queue is
//! sent at once. The schedule (every
//! minute) sends what waits for its retry, for every partner with deliveries queued. The rules
//! (signing, retries, order per workspace) are `billing`'s; this crate is the HTTP.
//!
//! [`HttpSender`] connects only to public addresses: the name is resolved here and an address of
//! a private, loopback or link-local network (the cloud's metadata service) is refused, so a
//! partner's URL cannot reach into the platform's own network, even through a name that once
//! resolved elsewhere. It follows no redirect: a 3xx is a failed attempt.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use billing::{Billing, DeliveryRun, OpError, WebhookSender};
use domain::{PartnerId, WalletId};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use runtime::metrics::MetricLine;
use serde_json::Value;
use store::{Key, Table};

/// How long one attempt may take, connecting included: the endpoint should answer at once and
/// do its work after.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long before the invocation's deadline the scheduled pass stops starting partners.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(20);
/// The value of the metrics' `Function` dimension.
pub const FUNCTION: &str = "deliver-webhooks";
/// Most of an answer read (and dropped): the status is what counts.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const USER_AGENT: &str = concat!("billing-backend-webhooks/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("a stream record that is neither a partner event nor a ledger entry: {0}")]
    NotAnEvent(String),
    #[error("the pass failed")]
    Failed(#[source] OpError),
}

impl From<DeliverError> for lambda_runtime::Diagnostic {
    fn from(e: DeliverError) -> Self {
        lambda_runtime::Diagnostic { error_type: "DeliverFailed".to_owned(), error_message: billing::error_chain(&e) }
    }
}

/// Resolves a host name to its public addresses only (see the module doc); `any` (the local
/// runner and the tests) takes every address.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver {
    any: bool,
}

impl tower_service::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let any = self.any;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| any || billing::is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no public address"));
            }
            Ok(found.into_iter())
        })
    }
}

type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector<PublicResolver>>;

/// The partner endpoints' HTTP client: HTTPS (HTTP too when `local`), public addresses only.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: Client<HttpsConnector, Full<Bytes>>,
    local: bool,
}

impl HttpSender {
    /// `local`: also plain HTTP and any address (the local runner's and the tests' endpoints).
    pub fn new(local: bool) -> Result<Self, String> {
        let mut http = HttpConnector::new_with_resolver(PublicResolver { any: local });
        http.enforce_http(false);
        http.set_connect_timeout(Some(SEND_TIMEOUT));
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no root certificates: {e}"))?;
        let connector = if local { builder.https_or_http() } else { builder.https_only() };
        let connector = connector.enable_http1().wrap_connector(http);
        Ok(Self { client: Client::builder(TokioExecutor::new()).build(connector), local })
    }

    async fn send(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<u16, String> {
        let uri: hyper::Uri = url.parse().map_err(|_| "not a URL".to_owned())?;
        // A literal address is connected to without the resolver: check it here.
        if let Some(ip) = uri.host().and_then(|h| h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok())
            && !self.local
            && !billing::is_public(ip)
        {
            return Err("not a public address".into());
        }
        let mut request = hyper::Request::post(uri).header(hyper::header::USER_AGENT, USER_AGENT);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| format!("no answer: {e}"))?;
            let status = response.status().as_u16();
            // Read (at most a little of) the answer, so the connection can be used again.
            let _ = Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await;
            Ok(status)
        };
        tokio::time::timeout(SEND_TIMEOUT, exchange).await.map_err(|_| "timed out".to_owned())?
    }
}

impl WebhookSender for HttpSender {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'static str, String)],
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>> {
        Box::pin(self.send(url, headers, body))
    }
}

/// What a stream batch names: partner events just written to the outbox, and wallets whose
/// ledger moved. `None`: the event is not a stream batch, so it is the schedule's.
#[derive(Debug, Default, PartialEq)]
pub struct StreamBatch {
    pub events: Vec<(PartnerId, Key)>,
    /// Each once, in the order first named.
    pub wallets: Vec<WalletId>,
}

pub fn stream_batch(event: &Value) -> Result<Option<StreamBatch>, DeliverError> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else { return Ok(None) };
    let mut batch = StreamBatch::default();
    for record in records {
        if record["eventName"] != "INSERT" {
            continue;
        }
        let keys = &record["dynamodb"]["Keys"];
        let (pk, sk) = (keys[store::item::PK]["S"].as_str(), keys[store::item::SK]["S"].as_str());
        let (Some(pk), Some(sk)) = (pk, sk) else { return Err(DeliverError::NotAnEvent(keys.to_string())) };
        let wallet = store::keys::wallet_of_pk(pk);
        match wallet {
            Some(WalletId::Partner(p)) if sk.starts_with(store::keys::EVENT_PREFIX) => {
                batch.events.push((p, Key::new(pk, sk)));
            }
            Some(wallet) if sk.starts_with(store::keys::LEDGER_PREFIX) => {
                if !batch.wallets.contains(&wallet) {
                    batch.wallets.push(wallet);
                }
            }
            _ => return Err(DeliverError::NotAnEvent(keys.to_string())),
        }
    }
    Ok(Some(batch))
}

/// One invocation: the events a stream batch names, queued and their partners' queues sent; or
/// (the schedule's) a pass over every partner with deliveries queued.
pub async fn handle<T: Table>(
    billing: &Billing<T>,
    sender: &dyn WebhookSender,
    event: &Value,
    deadline: Instant,
) -> Result<DeliveryRun, DeliverError> {
    let run = match stream_batch(event)? {
        Some(batch) => {
            // Balance alerts first: the events they write come back through the stream.
            for wallet in &batch.wallets {
                billing.check_balance_alerts(wallet).await.map_err(DeliverError::Failed)?;
            }
            let mut partners: Vec<PartnerId> = Vec::new();
            for (p, key) in &batch.events {
                billing.queue_partner_event(p, key).await.map_err(DeliverError::Failed)?;
                if !partners.contains(p) {
                    partners.push(p.clone());
                }
            }
            let mut run = DeliveryRun::default();
            for p in &partners {
                let step = billing.deliver_webhooks(p, sender).await.map_err(DeliverError::Failed)?;
                run.add(step);
            }
            run
        }
        None => {
            let stop = deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline);
            billing.deliver_due_webhooks(sender, || Instant::now() >= stop).await.map_err(DeliverError::Failed)?
        }
    };
    let DeliveryRun { partners, sent, delivered, retrying, failed, skipped } = run;
    tracing::info!(partners, sent, delivered, retrying, failed, skipped, "webhook pass");
    metrics(&run).emit();
    Ok(run)
}

/// A pass as one metric line: deliveries that reached the partner, attempts that will be tried
/// again, and deliveries that ran out of attempts (the partner missed an event; it may replay).
pub fn metrics(run: &DeliveryRun) -> MetricLine {
    MetricLine::new(FUNCTION)
        .count("WebhooksDelivered", run.delivered)
        .count("WebhooksRetrying", run.retrying)
        .count("WebhooksFailed", run.failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stream_batch_names_its_events_and_wallets() {
        let record = |name: &str, pk: &str, sk: &str| json!({ "eventName": name, "dynamodb": { "Keys": { "PK": { "S": pk }, "SK": { "S": sk } } } });
        let batch = json!({ "Records": [
            record("INSERT", "PARTNER#p-acme", "EVENT#000000000000000000010000000001#evt_ab"),
            record("REMOVE", "PARTNER#p-acme", "EVENT#000000000000000000010000000002#evt_cd"),
            record("INSERT", "WS#ws-1", "LEDGER#00000000000000000007"),
            record("INSERT", "WS#ws-1", "LEDGER#00000000000000000008"),
            record("INSERT", "PARTNER#p-acme", "LEDGER#00000000000000000002"),
        ] });
        let batch = stream_batch(&batch).unwrap().unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].0.as_str(), "p-acme");
        let wallets: Vec<String> = batch.wallets.iter().map(ToString::to_string).collect();
        assert_eq!(wallets.len(), 2, "each wallet once: {wallets:?}");
        assert!(stream_batch(&json!({ "source": "aws.scheduler" })).unwrap().is_none());
        let stray = json!({ "Records": [record("INSERT", "WS#w", "PROFILE")] });
        assert!(matches!(stream_batch(&stray), Err(DeliverError::NotAnEvent(_))));
    }

    #[tokio::test]
    async fn a_private_address_is_never_connected_to() {
        let sender = HttpSender::new(false).unwrap();
        for url in ["https://127.0.0.1:9/hook", "https://[::1]:9/hook", "https://169.254.169.254/latest"] {
            let answer = sender.send(url, &[], "{}").await;
            assert_eq!(answer, Err("not a public address".to_owned()), "{url}");
        }
        // A name that resolves only to loopback is refused by the resolver.
        let answer = sender.send("https://localhost:9/hook", &[], "{}").await;
        assert!(answer.as_ref().is_err_and(|e| e.contains("no answer")), "{answer:?}");
    }
}
