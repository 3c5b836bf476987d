//! Customers: the payer a Checkout Session saves a card on.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Acct, R, Reply, State, check_known_params, list, metadata_json, of_account, opt_string, owned, random_id,
    string_map,
};
use crate::form::Param;

#[derive(Debug, Clone)]
pub(super) struct Customer {
    /// Creation order, for lists (`created` is in whole seconds).
    seq: u64,
    id: String,
    account: Acct,
    created: i64,
    description: Option<String>,
    email: Option<String>,
    name: Option<String>,
    metadata: BTreeMap<String, String>,
}

owned_by_account_field!(Customer);

impl State {
    fn customer_json(c: &Customer) -> Value {
        json!({
            "id": c.id,
            "object": "customer",
            "balance": 0,
            "created": c.created,
            "currency": null,
            "default_source": null,
            "delinquent": false,
            "description": c.description,
            "email": c.email,
            "invoice_prefix": c.id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
            "livemode": false,
            "metadata": metadata_json(&c.metadata),
            "name": c.name,
            "phone": null,
            "preferred_locales": [],
            "shipping": null,
            "tax_exempt": "none",
        })
    }

    pub fn create_customer(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(p, &["description", "email", "expand", "metadata", "name", "phone"])?;
        let c = Customer {
            seq: self.next_seq(),
            id: random_id("cus_", 14),
            account: acct.clone(),
            created: self.now(),
            description: opt_string(p, &["description"]),
            email: opt_string(p, &["email"]),
            name: opt_string(p, &["name"]),
            metadata: string_map(p, "metadata")?,
        };
        let body = Self::customer_json(&c);
        self.customers.insert(c.id.clone(), c);
        Ok(Reply::ok(body))
    }

    /// The `customer` parameter, if given: one of the calling account's customers.
    pub(super) fn customer_param(&self, acct: &Acct, p: &Param) -> R<Option<String>> {
        p.str_at(&["customer"]).map(|c| Ok(self.customer(acct, c, Some("customer"))?.id.clone())).transpose()
    }

    pub(super) fn customer(&self, acct: &Acct, id: &str, param: Option<&str>) -> R<&Customer> {
        owned(&self.customers, acct, "customer", id, param)
    }

    pub fn retrieve_customer(&self, acct: &Acct, id: &str) -> R<Reply> {
        Ok(Reply::ok(Self::customer_json(self.customer(acct, id, None)?)))
    }

    pub fn customers_of_account(&self, account: &Acct) -> Value {
        let customers = of_account(&self.customers, account, |c| c.seq);
        list("/v1/customers", customers.into_iter().map(Self::customer_json).collect())
    }
}
