//! Partner webhooks: the partner events (the outbox, [`super::events`]) pushed to an HTTPS
//! endpoint the partner registers, signed the way Stripe signs its own.
//!
//! - **Registering.** `PUT /partner/webhook` sets the URL (https, a public host) and whether it
//!   is on; the first one mints a signing secret, shown in that answer only. Rolling the secret
//!   mints a new one and keeps the old one signing beside it for [`ROLLED_SECRET_LIFETIME`], so
//!   the partner can switch without missing a delivery.
//! - **Signing.** `Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//!   one `v1` per secret in force: Stripe's scheme, so a partner checks it as it checks Stripe's
//!   (a tolerance on `t` against replays; any `v1` matching).
//! - **At least once, with an id to de-duplicate on.** Each event that lands in the outbox while
//!   an endpoint is on becomes a delivery (`PARTNER#p / DELIVERY#<position>`, its history) and a
//!   queue entry (`WHQ#p / <position>`, while it is pending), written once, however often the
//!   table's stream hands the event over. A delivery is tried until the endpoint answers 2xx,
//!   [`RETRY_DELAYS_S`] apart (about 2.7 days in all), then marked failed; the partner lists
//!   deliveries and replays any. The body is the same each time; `id` is the event's.
//! - **In order per workspace.** A queue is sent oldest first. An event waiting for its retry
//!   holds back the later events of its workspace (a partner's own wallet counts as one more), not
//!   those of the others: `workspace.paused` never overtakes the `workspace.resumed` before it.
//!   A replay holds nothing back.
//! - **Claimed before sending.** An attempt first moves its queue entry's version and sets a
//!   lease, so two passes (the stream's and the schedule's) send it once; a pass that dies
//!   mid-send leaves the lease to expire and the next pass sends again (at least once).
//!
//! The HTTP is the caller's ([`WebhookSender`]): the `deliver-webhooks` function's client, which
//! connects only to public addresses.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use domain::PartnerId;
use store::records::rfc3339;
use store::{
    Attr, Condition, DeliveryCursor, Guard, Item, Key, Order, PageRequest, Query, StoreError, Table, Write, keys,
};

use super::{Billing, Mutation, OpError, Page, Replied};

/// The signature header, as Stripe's `Stripe-Signature`.
pub const SIGNATURE_HEADER: &str = "Billing-Signature";
/// The event's id, for a partner that de-duplicates before reading the body.
pub const EVENT_ID_HEADER: &str = "Billing-Event-Id";
/// How long a rolled secret goes on signing beside the new one.
pub const ROLLED_SECRET_LIFETIME: time::Duration = time::Duration::hours(24);
/// The waits after each failed attempt: 1 and 5 minutes, half an hour, 1, 2, 4, 8, 12, 12 and
/// 24 hours. Eleven attempts over about 2.7 days, Stripe's own horizon for its webhooks.
pub const RETRY_DELAYS_S: [i64; 10] = [60, 300, 1_800, 3_600, 7_200, 14_400, 28_800, 43_200, 43_200, 86_400];
/// How long an attempt holds its delivery: longer than the sender's timeout.
pub const LEASE_S: i64 = 60;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2_048;
/// Deliveries one pass looks at in a partner's queue.
const QUEUE_PAGE: usize = 100;

const ENDPOINT_SK: &str = "WEBHOOK";
const DELIVERY_PREFIX: &str = "DELIVERY#";
const DUE_PK: &str = "WEBHOOKS_DUE";

fn endpoint_key(p: &PartnerId) -> Key {
    Key::new(keys::partner_pk(p), ENDPOINT_SK)
}

fn delivery_key(p: &PartnerId, position: &str) -> Key {
    Key::new(keys::partner_pk(p), format!("{DELIVERY_PREFIX}{position}"))
}

fn queue_pk(p: &PartnerId) -> String {
    format!("WHQ#{p}")
}

fn queue_key(p: &PartnerId, position: &str) -> Key {
    Key::new(queue_pk(p), position)
}

fn due_key(p: &PartnerId) -> Key {
    Key::new(DUE_PK, p.as_str())
}

/// Sends one delivery: POSTs `body` with `headers` to `url`, and answers the status, or why
/// there was none (refused, timed out, an address that isn't public).
pub trait WebhookSender: Send + Sync {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'static str, String)],
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>>;
}

/// A signing secret and how long it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    pub secret: String,
    #[serde(with = "store::attrs::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set when a newer secret replaced it.
    #[serde(with = "store::attrs::rfc3339::optional", default)]
    pub expires_at: Option<OffsetDateTime>,
}

impl SigningSecret {
    fn mint(at: OffsetDateTime) -> Self {
        let random: String = (0..4).map(|_| format!("{:016x}", fastrand::u64(..))).collect();
        Self { secret: format!("whsec_{random}"), created_at: at, expires_at: None }
    }

    fn in_force(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }

    /// What a listing shows of it: its start, never the secret.
    pub fn hint(&self) -> String {
        format!("{}...", &self.secret[..self.secret.len().min(10)])
    }
}

/// A partner's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerEndpoint {
    pub url: String,
    pub enabled: bool,
    /// Newest first; those whose time has passed are dropped when it is next written.
    pub secrets: Vec<SigningSecret>,
    pub version: u64,
}

impl PartnerEndpoint {
    fn secrets_in_force(&self, now: OffsetDateTime) -> Vec<&str> {
        self.secrets.iter().filter(|s| s.in_force(now)).map(|s| s.secret.as_str()).collect()
    }
}

/// What a change of the endpoint answers: the endpoint, and the secret it minted (shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointChanged {
    pub endpoint: PartnerEndpoint,
    pub new_secret: Option<String>,
}

/// An endpoint URL the product will send to: `https://` and a host that is not an address of
/// a private, loopback or link-local network, nor `localhost`. (The sender checks again what
/// the name resolves to, each time it connects.) `allow_local` (the local runner and the tests
/// only) also takes `http://` and any host.
pub fn check_endpoint_url(text: &str, allow_local: bool) -> Result<String, OpError> {
    let invalid = |why: &str| OpError::invalid("url", why);
    if text.len() > MAX_URL_LEN {
        return Err(invalid("must be at most 2048 characters"));
    }
    let url = url::Url::parse(text).map_err(|_| invalid("must be an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry a user name or password"));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a fragment"));
    }
    let host = url.host().ok_or_else(|| invalid("must name a host"))?;
    if allow_local {
        return match url.scheme() {
            "https" | "http" => Ok(url.to_string()),
            _ => Err(invalid("must be an https URL")),
        };
    }
    if url.scheme() != "https" {
        return Err(invalid("must be an https URL"));
    }
    let public = match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d.contains('.') && d != "localhost" && !d.ends_with(".localhost") && !d.ends_with(".internal")
        }
        url::Host::Ipv4(ip) => is_public(std::net::IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_public(std::net::IpAddr::V6(ip)),
    };
    if !public {
        return Err(invalid("must name a public host"));
    }
    Ok(url.to_string())
}

/// Whether `ip` is an address on the internet: not loopback, private, link-local (the cloud's
/// metadata service), shared, documentation, multicast or unspecified.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(std::net::IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

fn endpoint_item(p: &PartnerId, e: &PartnerEndpoint) -> Item {
    Item::new(&endpoint_key(p), "webhook_endpoint")
        .with("url", Attr::s(&e.url))
        .with("enabled", Attr::Bool(e.enabled))
        .with("secrets", Attr::s(serde_json::to_string(&e.secrets).expect("secrets serialize")))
        .with("version", Attr::n(e.version))
}

fn endpoint_from(item: &Item) -> Result<PartnerEndpoint, OpError> {
    let enabled = matches!(item.get("enabled"), Some(Attr::Bool(true)));
    let secrets = item.parsed("secrets", |s| serde_json::from_str(s))?;
    Ok(PartnerEndpoint { url: item.str("url")?.to_owned(), enabled, secrets, version: item.u64("version")? })
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One event's delivery to the partner's endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The event's place in the outbox (`<written ns, 20 digits><seq, 10 digits>#<event id>`).
    pub position: String,
    pub event_id: String,
    pub event_type: String,
    pub workspace: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_attempt_at: Option<OffsetDateTime>,
    /// The endpoint's status code at the last attempt, if it answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Sent again because the partner asked.
    pub replay: bool,
    /// The queue entry's version, while pending.
    version: u64,
    lease_until: Option<i64>,
}

impl Delivery {
    /// The id the API shows (and replays by): `dlv_<position digits>_<event id's hex>`.
    pub fn id(&self) -> String {
        delivery_id(&self.position)
    }
}

fn delivery_id(position: &str) -> String {
    let (digits, event) = position.split_once('#').unwrap_or((position, ""));
    format!("dlv_{digits}_{}", event.trim_start_matches("evt_"))
}

/// The position a delivery id names (`None`: not one this API gave).
pub fn delivery_position(id: &str) -> Option<String> {
    let rest = id.strip_prefix("dlv_")?;
    let (digits, hex) = rest.split_once('_')?;
    let ok = digits.len() == 30
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !hex.is_empty()
        && hex.len() <= 40
        && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| format!("{digits}#evt_{hex}"))
}

fn time_attr(at: Option<OffsetDateTime>) -> Attr {
    at.map_or(Attr::Null, |t| Attr::s(rfc3339(t)))
}

fn optional_time(item: &Item, name: &str) -> Result<Option<OffsetDateTime>, OpError> {
    match item.get(name) {
        None | Some(Attr::Null) => Ok(None),
        Some(_) => Ok(Some(item.parsed(name, |s| OffsetDateTime::parse(s, &Rfc3339))?)),
    }
}

/// The delivery as its history (`DELIVERY#`) and, while pending, its queue entry (`WHQ#`) store
/// it: the same attributes in both.
fn delivery_item(key: &Key, entity: &str, d: &Delivery) -> Item {
    let mut item = Item::new(key, entity)
        .with("position", Attr::s(&d.position))
        .with("event_id", Attr::s(&d.event_id))
        .with("type", Attr::s(&d.event_type))
        .with("workspace_id", d.workspace.as_deref().map_or(Attr::Null, Attr::s))
        .with("status", Attr::s(d.status.as_str()))
        .with("attempts", Attr::n(d.attempts))
        .with("last_attempt_at", time_attr(d.last_attempt_at))
        .with("last_status", d.last_status.map_or(Attr::Null, Attr::n))
        .with("last_error", d.last_error.as_deref().map_or(Attr::Null, Attr::s))
        .with("next_attempt_at", time_attr(d.next_attempt_at))
        .with("replay", Attr::Bool(d.replay))
        .with("version", Attr::n(d.version));
    if let Some(lease) = d.lease_until {
        item.set("lease_until", Attr::n(lease));
    }
    item
}

fn delivery_from(item: &Item) -> Result<Delivery, OpError> {
    let optional_str = |name: &str| -> Result<Option<String>, OpError> {
        match item.get(name) {
            None | Some(Attr::Null) => Ok(None),
            Some(_) => Ok(Some(item.str(name)?.to_owned())),
        }
    };
    let status = item.str("status")?;
    Ok(Delivery {
        position: item.str("position")?.to_owned(),
        event_id: item.str("event_id")?.to_owned(),
        event_type: item.str("type")?.to_owned(),
        workspace: optional_str("workspace_id")?,
        status: DeliveryStatus::parse(status).ok_or_else(|| OpError::Internal(format!("delivery status {status}")))?,
        attempts: u32::try_from(item.u64("attempts")?).unwrap_or(u32::MAX),
        last_attempt_at: optional_time(item, "last_attempt_at")?,
        last_status: match item.get("last_status") {
            None | Some(Attr::Null) => None,
            Some(_) => Some(u16::try_from(item.u64("last_status")?).unwrap_or(u16::MAX)),
        },
        last_error: optional_str("last_error")?,
        next_attempt_at: optional_time(item, "next_attempt_at")?,
        replay: matches!(item.get("replay"), Some(Attr::Bool(true))),
        version: item.u64("version")?,
        lease_until: match item.get("lease_until") {
            None | Some(Attr::Null) => None,
            Some(_) => Some(i64::try_from(item.num("lease_until")?).unwrap_or(i64::MAX)),
        },
    })
}

/// The writes that put `d` in both its places: the history, and the queue while pending (its
/// entry guarded at `expected`: `None`, it must not exist yet).
fn delivery_writes(p: &PartnerId, d: &Delivery, expected: Option<u64>) -> Vec<Write> {
    let queue = queue_key(p, &d.position);
    let condition = match expected {
        None => Condition::not_exists(Guard::DeliveryQueued),
        Some(v) => Condition::equals(Guard::DeliveryQueued, "version", Attr::n(v)),
    };
    let mut writes = vec![Write::Put {
        item: delivery_item(&delivery_key(p, &d.position), "webhook_delivery", d),
        condition: Condition::Always,
    }];
    writes.push(match d.status {
        DeliveryStatus::Pending => Write::Put { item: delivery_item(&queue, "webhook_queued", d), condition },
        _ => Write::Delete { key: queue, condition },
    });
    writes
}

/// What one pass over one partner's queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRun {
    pub partners: u32,
    pub sent: u32,
    pub delivered: u32,
    /// Attempts that failed and will be tried again.
    pub retrying: u32,
    /// Deliveries that ran out of attempts.
    pub failed: u32,
    /// Deliveries another pass held, or that lost a race.
    pub skipped: u32,
}

impl DeliveryRun {
    /// Counts `other` in.
    pub fn add(&mut self, other: DeliveryRun) {
        self.partners += other.partners;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// The body of event `item`, as the endpoint receives it.
fn event_body(p: &PartnerId, item: &Item) -> Result<String, OpError> {
    let data: Value = serde_json::from_str(item.str("data")?).map_err(|e| OpError::Internal(e.to_string()))?;
    let workspace = match item.get("workspace_id") {
        None | Some(Attr::Null) => Value::Null,
        Some(_) => json!(item.str("workspace_id")?),
    };
    Ok(json!({
        "id": item.str("id")?,
        "object": "event",
        "type": item.str("type")?,
        "created": item.str("created_at")?,
        "partner_id": p.as_str(),
        "workspace_id": workspace,
        "data": data,
    })
    .to_string())
}

impl<T: Table> Billing<T> {
    /// The partner's endpoint, if it registered one.
    pub async fn partner_endpoint(&self, p: &PartnerId) -> Result<Option<PartnerEndpoint>, OpError> {
        self.partner_settings(p).await?;
        let item = self.store.get(&endpoint_key(p)).await?;
        item.as_ref().map(endpoint_from).transpose()
    }

    /// Registers or changes the partner's endpoint (`url` checked by [`check_endpoint_url`]).
    /// The first one mints its signing secret.
    pub async fn put_partner_endpoint(
        &self,
        p: &PartnerId,
        url: &str,
        enabled: bool,
        m: Mutation<'_, EndpointChanged>,
    ) -> Replied {
        let key = endpoint_key(p);
        let snapshot = match self.load_for_partner(p, m.key(), std::slice::from_ref(&key)).await? {
            super::load::Read::Answered(reply) => return Ok(reply),
            super::load::Read::Fresh(s) => s,
        };
        let url = check_endpoint_url(url, self.platform.local_webhook_endpoints)?;
        let now = self.clock.now();
        let before = snapshot.get(&key).map(endpoint_from).transpose()?;
        let (endpoint, new_secret, condition) = match before {
            Some(e) => {
                let condition = Condition::equals(Guard::WebhookEndpointVersion, "version", Attr::n(e.version));
                let secrets = e.secrets.into_iter().filter(|s| s.in_force(now)).collect();
                (PartnerEndpoint { url, enabled, secrets, version: e.version + 1 }, None, condition)
            }
            None => {
                let secret = SigningSecret::mint(now);
                let shown = secret.secret.clone();
                let endpoint = PartnerEndpoint { url, enabled, secrets: vec![secret], version: 1 };
                (endpoint, Some(shown), Condition::not_exists(Guard::WebhookEndpointVersion))
            }
        };
        let changed = EndpointChanged { endpoint, new_secret };
        let writes = vec![
            Write::Put { item: endpoint_item(p, &changed.endpoint), condition },
            Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
        ];
        self.commit(m.key(), writes, m.answer(&changed), |failed| {
            if failed.contains(Guard::WebhookEndpointVersion) {
                OpError::Conflict
            } else {
                OpError::NotFound("partner")
            }
        })
        .await
    }

    /// Mints a new signing secret; the ones before it sign for [`ROLLED_SECRET_LIFETIME`] more.
    pub async fn roll_endpoint_secret(&self, p: &PartnerId, m: Mutation<'_, EndpointChanged>) -> Replied {
        let key = endpoint_key(p);
        let snapshot = match self.load_for_partner(p, m.key(), std::slice::from_ref(&key)).await? {
            super::load::Read::Answered(reply) => return Ok(reply),
            super::load::Read::Fresh(s) => s,
        };
        let e = snapshot.get(&key).map(endpoint_from).transpose()?.ok_or(OpError::NotFound("webhook endpoint"))?;
        let now = self.clock.now();
        let ends = now + ROLLED_SECRET_LIFETIME;
        let mut secrets: Vec<SigningSecret> = e
            .secrets
            .into_iter()
            .filter(|s| s.in_force(now))
            .map(|s| SigningSecret { expires_at: Some(s.expires_at.map_or(ends, |at| at.min(ends))), ..s })
            .collect();
        let secret = SigningSecret::mint(now);
        let shown = secret.secret.clone();
        secrets.insert(0, secret);
        let endpoint = PartnerEndpoint { secrets, version: e.version + 1, ..e };
        let condition = Condition::equals(Guard::WebhookEndpointVersion, "version", Attr::n(e.version));
        let changed = EndpointChanged { endpoint, new_secret: Some(shown) };
        let writes = vec![Write::Put { item: endpoint_item(p, &changed.endpoint), condition }];
        self.commit(m.key(), writes, m.answer(&changed), |_| OpError::Conflict).await
    }

    /// The partner's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        p: &PartnerId,
        page: PageRequest<DeliveryCursor>,
    ) -> Result<Page<Delivery>, OpError> {
        self.partner_settings(p).await?;
        let start = page.after.as_ref().map(DeliveryCursor::sort_key);
        let mut items = self
            .store
            .table()
            .query(Query {
                pk: &keys::partner_pk(p),
                sk_prefix: DELIVERY_PREFIX,
                start_after: start.as_deref(),
                limit: page.limit + 1,
                order: Order::Descending,
            })
            .await
            .map_err(StoreError::from_table)?;
        let more = items.len() > page.limit;
        items.truncate(page.limit);
        let items = items.iter().map(delivery_from).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match items.last() {
            Some(last) if more => DeliveryCursor::from_position(&last.position).map(|c| c.encode(p)),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    /// Sends a delivery again, whatever became of it: queued now, holding nothing back. One that
    /// is still pending is left as it is.
    pub async fn replay_delivery(&self, p: &PartnerId, id: &str, m: Mutation<'_, Delivery>) -> Replied {
        let position = delivery_position(id).ok_or(OpError::NotFound("delivery"))?;
        let record = delivery_key(p, &position);
        let queued = queue_key(p, &position);
        let snapshot = match self.load_for_partner(p, m.key(), &[record.clone(), queued.clone(), due_key(p)]).await? {
            super::load::Read::Answered(reply) => return Ok(reply),
            super::load::Read::Fresh(s) => s,
        };
        let d = snapshot.get(&record).map(delivery_from).transpose()?.ok_or(OpError::NotFound("delivery"))?;
        if let Some(pending) = snapshot.get(&queued) {
            let pending = delivery_from(pending)?;
            let reply = m.answer(&pending);
            return self.commit(m.key(), Vec::new(), reply, |_| OpError::Conflict).await;
        }
        let now = self.clock.now();
        let again = Delivery {
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            replay: true,
            version: 1,
            lease_until: None,
            ..d
        };
        let mut writes = delivery_writes(p, &again, None);
        writes.push(due_write(p));
        self.commit(m.key(), writes, m.answer(&again), |_| OpError::Conflict).await
    }

    /// Queues the delivery of partner `p`'s event at outbox key `event` (a stream record's),
    /// once, if the partner's endpoint is on. Answers whether it queued one now.
    pub async fn queue_partner_event(&self, p: &PartnerId, event: &Key) -> Result<bool, OpError> {
        let Some(position) = event.sk.strip_prefix(keys::EVENT_PREFIX) else {
            return Err(OpError::Internal(format!("{} is not a partner event's key", event.sk)));
        };
        let read = self.store.get_many(&[endpoint_key(p), event.clone()]).await?;
        let (Some(endpoint), Some(item)) = (&read[0], &read[1]) else { return Ok(false) };
        if !endpoint_from(endpoint)?.enabled {
            return Ok(false);
        }
        let workspace = match item.get("workspace_id") {
            None | Some(Attr::Null) => None,
            Some(_) => Some(item.str("workspace_id")?.to_owned()),
        };
        let d = Delivery {
            position: position.to_owned(),
            event_id: item.str("id")?.to_owned(),
            event_type: item.str("type")?.to_owned(),
            workspace,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_attempt_at: None,
            last_status: None,
            last_error: None,
            next_attempt_at: Some(self.clock.now()),
            replay: false,
            version: 1,
            lease_until: None,
        };
        // The history's own condition: an event queued once is never queued again, even after
        // its delivery left the queue.
        let mut writes = delivery_writes(p, &d, None);
        writes[0] = Write::Put {
            item: delivery_item(&delivery_key(p, &d.position), "webhook_delivery", &d),
            condition: Condition::not_exists(Guard::DeliveryNew),
        };
        writes.push(due_write(p));
        match self.store.write(writes).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// One pass over partner `p`'s queue: sends what is due, oldest first, holding back the later
    /// events of a workspace whose earlier one waits. Clears the partner's due mark when its queue
    /// is empty.
    pub async fn deliver_webhooks(&self, p: &PartnerId, sender: &dyn WebhookSender) -> Result<DeliveryRun, OpError> {
        let mut run = DeliveryRun { partners: 1, ..Default::default() };
        let read = self.store.get_many(&[endpoint_key(p), due_key(p)]).await?;
        let marked = read[1].as_ref().map(|m| m.num("queued")).transpose()?;
        let endpoint = read[0].as_ref().map(endpoint_from).transpose()?;
        let pk = queue_pk(p);
        let queue = self.store.query_prefix(&pk, "", None, QUEUE_PAGE).await?;
        if queue.is_empty() {
            if let Some(queued) = marked {
                // Only if nothing was queued since the mark was read.
                let clear = Write::Delete {
                    key: due_key(p),
                    condition: Condition::equals(Guard::WebhooksDueCount, "queued", Attr::N(queued)),
                };
                match self.store.write(vec![clear]).await {
                    Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(run);
        }
        let Some(endpoint) = endpoint.filter(|e| e.enabled) else { return Ok(run) };
        let now = self.clock.now();
        let mut held: HashSet<Option<String>> = HashSet::new();
        for item in &queue {
            let d = delivery_from(item)?;
            let waits = d.next_attempt_at.is_some_and(|at| at > now)
                || d.lease_until.is_some_and(|until| until > now.unix_timestamp());
            if !d.replay && (held.contains(&d.workspace) || waits) {
                held.insert(d.workspace.clone());
                continue;
            }
            if waits {
                continue;
            }
            let step = self.attempt(p, &endpoint, d, sender).await?;
            if !step.delivered && step.blocked {
                held.insert(step.workspace);
            }
            run.add(step.run);
        }
        Ok(run)
    }

    /// One attempt: claim, send, record.
    async fn attempt(
        &self,
        p: &PartnerId,
        endpoint: &PartnerEndpoint,
        d: Delivery,
        sender: &dyn WebhookSender,
    ) -> Result<Attempted, OpError> {
        let now = self.clock.now();
        let workspace = d.workspace.clone();
        let mut run = DeliveryRun::default();
        let claimed =
            Delivery { version: d.version + 1, lease_until: Some(now.unix_timestamp() + LEASE_S), ..d.clone() };
        let claim = Write::Put {
            item: delivery_item(&queue_key(p, &d.position), "webhook_queued", &claimed),
            condition: Condition::equals(Guard::DeliveryQueued, "version", Attr::n(d.version)),
        };
        match self.store.write(vec![claim]).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                run.skipped += 1;
                return Ok(Attempted { run, delivered: false, blocked: !d.replay, workspace });
            }
            Err(e) => return Err(e.into()),
        }
        let event =
            self.store.get(&Key::new(keys::partner_pk(p), format!("{}{}", keys::EVENT_PREFIX, d.position))).await?;
        let Some(event) = event else {
            return Err(OpError::Internal(format!("the event of delivery {} is gone", d.event_id)));
        };
        let body = event_body(p, &event)?;
        let secrets = endpoint.secrets_in_force(now);
        let signature = stripe_gateway::signature::sign(body.as_bytes(), &secrets, now.unix_timestamp());
        let headers = [
            (SIGNATURE_HEADER, signature),
            (EVENT_ID_HEADER, d.event_id.clone()),
            ("Content-Type", "application/json".into()),
        ];
        run.sent += 1;
        let answer = sender.post(&endpoint.url, &headers, &body).await;
        let attempts = d.attempts.saturating_add(1);
        let ok = matches!(answer, Ok(200..=299));
        let (status, next) = if ok {
            run.delivered += 1;
            (DeliveryStatus::Delivered, None)
        } else {
            let delay = usize::try_from(attempts - 1).ok().and_then(|i| RETRY_DELAYS_S.get(i));
            match delay {
                Some(s) => {
                    run.retrying += 1;
                    (DeliveryStatus::Pending, Some(now + time::Duration::seconds(*s)))
                }
                None => {
                    run.failed += 1;
                    (DeliveryStatus::Failed, None)
                }
            }
        };
        let after = Delivery {
            status,
            attempts,
            last_attempt_at: Some(now),
            last_status: answer.as_ref().ok().copied(),
            last_error: match &answer {
                Ok(code) if !ok => Some(format!("answered {code}")),
                Ok(_) => None,
                Err(why) => Some(why.chars().take(200).collect()),
            },
            next_attempt_at: next,
            version: claimed.version + 1,
            lease_until: None,
            ..claimed
        };
        match self.store.write(delivery_writes(p, &after, Some(claimed.version))).await {
            Ok(()) => {}
            // Another pass took it over after the lease ran out: it records its own attempt.
            Err(StoreError::ConditionFailed { .. }) => run.skipped += 1,
            Err(e) => return Err(e.into()),
        }
        tracing::info!(partner = %p, event = %d.event_id, attempts, status = status.as_str(), "webhook delivery");
        Ok(Attempted { run, delivered: ok, blocked: !d.replay && status == DeliveryStatus::Pending, workspace })
    }

    /// A pass over every partner with deliveries queued, until `stop` says the time is up.
    pub async fn deliver_due_webhooks(
        &self,
        sender: &dyn WebhookSender,
        stop: impl Fn() -> bool,
    ) -> Result<DeliveryRun, OpError> {
        let mut run = DeliveryRun::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.query_prefix(DUE_PK, "", after.as_deref(), QUEUE_PAGE).await?;
            for item in &page {
                if stop() {
                    return Ok(run);
                }
                let sk = item.str(store::item::SK)?;
                let p = PartnerId::parse(sk).map_err(|_| OpError::Internal(format!("webhook due mark {sk}")))?;
                match self.deliver_webhooks(&p, sender).await {
                    Ok(step) => run.add(step),
                    // One partner's trouble (the table busy) is the next run's; the others go on.
                    Err(e) => tracing::warn!(partner = %p, error = %e, "webhook pass failed"),
                }
            }
            if page.len() < QUEUE_PAGE {
                return Ok(run);
            }
            after = page.last().map(|i| i.str(store::item::SK).map(str::to_owned)).transpose()?;
        }
    }
}

/// Marks partner `p` as having deliveries queued (counting each, so that clearing the mark can
/// tell whether another was queued meanwhile).
fn due_write(p: &PartnerId) -> Write {
    Write::Add {
        key: due_key(p),
        add: vec![("queued".into(), rust_decimal::Decimal::ONE)],
        set: vec![(store::item::ENTITY_TYPE.into(), Attr::s("webhooks_due"))],
        set_if_absent: Vec::new(),
    }
}

struct Attempted {
    run: DeliveryRun,
    delivered: bool,
    /// Whether the later events of its workspace must wait for it.
    blocked: bool,
    workspace: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_public_https() {
        let ok = |u: &str| check_endpoint_url(u, false).unwrap();
        assert_eq!(ok("https://hooks.agency.example/billing"), "https://hooks.agency.example/billing");
        assert_eq!(ok("https://hooks.agency.example:8443/b?x=1"), "https://hooks.agency.example:8443/b?x=1");
        for bad in [
            "http://hooks.agency.example/billing",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:192.168.0.1]/x",
            "https://metadata.google.internal/x",
            "https://user:pw@hooks.agency.example/x",
            "https://hooks.agency.example/x#frag",
            "hooks.agency.example/x",
            "ftp://hooks.agency.example/x",
            "https://intranet/x",
        ] {
            assert!(check_endpoint_url(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_endpoint_url("http://127.0.0.1:9000/hook", true).unwrap(), "http://127.0.0.1:9000/hook");
    }

    #[test]
    fn delivery_ids_name_their_position() {
        let position = "000000000000000000010000000007#evt_00ab";
        let id = delivery_id(position);
        assert_eq!(id, "dlv_000000000000000000010000000007_00ab");
        assert_eq!(delivery_position(&id).as_deref(), Some(position));
        for bad in
            ["dlv_1_ab", "evt_00ab", "dlv_000000000000000000010000000007_", "dlv_00000000000000000001000000000x_ab"]
        {
            assert_eq!(delivery_position(bad), None, "{bad}");
        }
    }

    #[test]
    fn retries_last_more_than_a_day() {
        let total: i64 = RETRY_DELAYS_S.iter().sum();
        assert!(total > 2 * 24 * 3600, "{total}");
    }
}
