//! SetupIntents: a card saved for later payments without paying now. A Checkout Session in
//! `setup` mode makes one, and it succeeds when the customer saves a card on the pay page.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Acct, Expand, R, Reply, State, metadata_json, owned, random_id};

/// Where a SetupIntent is: waiting for a card, or done with one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SetupStatus {
    RequiresPaymentMethod,
    Succeeded { payment_method: String },
}

#[derive(Debug, Clone)]
pub(super) struct SetupIntent {
    id: String,
    account: Acct,
    created: i64,
    customer: Option<String>,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    status: SetupStatus,
}

owned_by_account_field!(SetupIntent);

impl SetupIntent {
    pub(super) fn payment_method(&self) -> Option<&str> {
        match &self.status {
            SetupStatus::RequiresPaymentMethod => None,
            SetupStatus::Succeeded { payment_method } => Some(payment_method),
        }
    }
}

impl State {
    /// A SetupIntent waiting for a card, to be saved on `customer` for off-session payments
    /// (Checkout's `usage`): its id.
    pub(super) fn new_setup_intent(
        &mut self,
        account: &Acct,
        customer: Option<String>,
        description: Option<String>,
        metadata: BTreeMap<String, String>,
    ) -> String {
        let si = SetupIntent {
            id: random_id("seti_", 24),
            account: account.clone(),
            created: self.now(),
            customer,
            description,
            metadata,
            status: SetupStatus::RequiresPaymentMethod,
        };
        let id = si.id.clone();
        self.setup_intents.insert(id.clone(), si);
        id
    }

    /// `expand` may ask for `payment_method`.
    pub(super) fn setup_intent_json(&self, si: &SetupIntent, expand: &Expand) -> Value {
        let payment_method = match (si.payment_method(), expand.has("payment_method")) {
            (Some(pm), true) => self.payment_methods.get(pm).map_or(json!(pm), Self::payment_method_json),
            (pm, _) => json!(pm),
        };
        let status = match si.status {
            SetupStatus::RequiresPaymentMethod => "requires_payment_method",
            SetupStatus::Succeeded { .. } => "succeeded",
        };
        json!({
            "id": si.id,
            "object": "setup_intent",
            "application": null,
            "automatic_payment_methods": null,
            "cancellation_reason": null,
            "client_secret": format!("{}_secret_{}", si.id, si.id.trim_start_matches("seti_")),
            "created": si.created,
            "customer": si.customer,
            "description": si.description,
            "flow_directions": null,
            "last_setup_error": null,
            "latest_attempt": null,
            "livemode": false,
            "mandate": null,
            "metadata": metadata_json(&si.metadata),
            "next_action": null,
            "on_behalf_of": null,
            "payment_method": payment_method,
            "payment_method_options": {
                "card": { "mandate_options": null, "network": null, "request_three_d_secure": "automatic" },
            },
            "payment_method_types": ["card"],
            "single_use_mandate": null,
            "status": status,
            "usage": "off_session",
        })
    }

    /// `GET /v1/setup_intents/{id}` (`expand[]=payment_method`).
    pub fn retrieve_setup_intent(&self, acct: &Acct, id: &str, expand: &Expand) -> R<Reply> {
        let si = owned(&self.setup_intents, acct, "setup_intent", id, None)?;
        Ok(Reply::ok(self.setup_intent_json(si, expand)))
    }

    /// The customer saved `payment_method`: event `setup_intent.succeeded`.
    pub(super) fn succeed_setup_intent(&mut self, id: &str, payment_method: String) {
        let si = self.setup_intents.get_mut(id).expect("sessions name their SetupIntent");
        si.status = SetupStatus::Succeeded { payment_method };
        let si = si.clone();
        let body = self.setup_intent_json(&si, &Expand::none());
        self.emit("setup_intent.succeeded", &si.account, body, None);
    }
}
