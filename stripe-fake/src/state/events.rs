//! Events: what each change emits, kept for the control endpoints and queued for delivery.

use serde_json::{Value, json};

use super::{API_VERSION, Acct, State, now_s, push_bounded, random_id};

/// How events leave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryMode {
    /// Keep new events until released (`/_fake/events/release`), in the order asked for.
    #[serde(default)]
    pub hold: bool,
    /// Send every event twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Send every event this late (in the background); 0 sends it before the call that caused
    /// it answers, so a test needs no waiting.
    #[serde(default)]
    pub delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub at_ms: i64,
    /// The receiver's status code; `None` if it could not be reached.
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub account: Acct,
    pub created: i64,
    /// The exact body sent (and signed).
    pub payload: String,
    pub held: bool,
    pub deliveries: Vec<Delivery>,
}

impl State {
    pub(super) fn emit(&mut self, type_: &str, account: &Acct, object: Value, previous: Option<Value>) -> String {
        let id = random_id("evt_", 24);
        let created = now_s();
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let mut event = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": type_,
        });
        if let Some(account) = account {
            event["account"] = json!(account);
        }
        push_bounded(
            &mut self.events,
            Event {
                id: id.clone(),
                type_: type_.to_owned(),
                account: account.clone(),
                created,
                payload: event.to_string(),
                held: false,
                deliveries: Vec::new(),
            },
        );
        self.outbox.push(id.clone());
        id
    }

    pub fn event_mut(&mut self, id: &str) -> Option<&mut Event> {
        self.events.iter_mut().find(|e| e.id == id)
    }
}
