//! A partner's webhook endpoint, its deliveries, and its balance alerts.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use billing::{BalanceAlerts, Delivery, EndpointChanged, PartnerEndpoint, Reply};

use super::{instant, optional_instant, reply};

#[derive(Serialize)]
struct SecretBody {
    /// The secret's first characters, to tell which one signs.
    hint: String,
    #[serde(serialize_with = "instant")]
    created_at: OffsetDateTime,
    #[serde(serialize_with = "optional_instant")]
    expires_at: Option<OffsetDateTime>,
}

#[derive(Serialize)]
pub struct EndpointBody<'a> {
    url: &'a str,
    enabled: bool,
    secrets: Vec<SecretBody>,
}

impl<'a> From<&'a PartnerEndpoint> for EndpointBody<'a> {
    fn from(e: &'a PartnerEndpoint) -> Self {
        Self {
            url: &e.url,
            enabled: e.enabled,
            secrets: e
                .secrets
                .iter()
                .map(|s| SecretBody { hint: s.hint(), created_at: s.created_at, expires_at: s.expires_at })
                .collect(),
        }
    }
}

/// `GET /partner/webhook`: `{"endpoint": {...} | null}`.
pub fn endpoint(e: Option<&PartnerEndpoint>) -> serde_json::Value {
    json!({ "endpoint": e.map(EndpointBody::from) })
}

/// A change of the endpoint: the endpoint, and the secret it minted (only in this answer).
/// 201 when it registered the endpoint.
pub fn endpoint_changed(c: &EndpointChanged) -> Reply {
    let status = if c.endpoint.version == 1 { 201 } else { 200 };
    reply(status, &json!({ "endpoint": EndpointBody::from(&c.endpoint), "secret": c.new_secret }))
}

#[derive(Serialize)]
pub struct DeliveryBody<'a> {
    id: String,
    event_id: &'a str,
    event_type: &'a str,
    workspace_id: Option<&'a str>,
    status: &'static str,
    attempts: u32,
    #[serde(serialize_with = "optional_instant")]
    last_attempt_at: Option<OffsetDateTime>,
    last_status: Option<u16>,
    last_error: Option<&'a str>,
    #[serde(serialize_with = "optional_instant")]
    next_attempt_at: Option<OffsetDateTime>,
    replay: bool,
}

impl<'a> From<&'a Delivery> for DeliveryBody<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            id: d.id(),
            event_id: &d.event_id,
            event_type: &d.event_type,
            workspace_id: d.workspace.as_deref(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_attempt_at: d.last_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error.as_deref(),
            next_attempt_at: d.next_attempt_at,
            replay: d.replay,
        }
    }
}

/// `POST /partner/webhook/deliveries/{id}/replay`: 202, the delivery as queued.
pub fn delivery_replayed(d: &Delivery) -> Reply {
    reply(202, &json!({ "delivery": DeliveryBody::from(d) }))
}

/// `GET|PUT /partner/balance-alerts`: the thresholds, in order.
pub fn balance_alerts(a: &BalanceAlerts) -> serde_json::Value {
    json!({ "workspace": a.workspace, "wallet": a.wallet })
}

pub fn balance_alerts_set(a: &BalanceAlerts) -> Reply {
    reply(200, &balance_alerts(a))
}
