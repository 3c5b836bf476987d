//! Products and their prices: `POST /v1/products` (with an id of the caller's, as Stripe takes
//! it), `POST /v1/products/{id}`, `GET /v1/products/{id}`, `POST /v1/prices` (one-off, or
//! recurring by the month, week, day or year), `GET /v1/prices/{id}`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Acct, R, Reply, State, bool_param, check_known_params, error, invalid, metadata_json, missing, opt_string, owned,
    parse_amount, parse_currency, random_id, string_map,
};
use crate::form::Param;

/// Stripe's limit on a product id of the caller's.
const MAX_PRODUCT_ID_LEN: usize = 255;

#[derive(Debug, Clone)]
pub(super) struct Product {
    pub(super) id: String,
    account: Acct,
    created: i64,
    updated: i64,
    pub(super) name: String,
    description: Option<String>,
    active: bool,
    metadata: BTreeMap<String, String>,
}

owned_by_account_field!(Product);

/// A price: its amount per unit, and for a recurring one, its interval.
#[derive(Debug, Clone)]
pub(super) struct Price {
    pub(super) id: String,
    account: Acct,
    created: i64,
    pub(super) product: String,
    pub(super) unit_amount: i64,
    pub(super) currency: String,
    /// `month` (the product's plans), or `day`, `week`, `year`; `None`: a one-off price.
    pub(super) interval: Option<String>,
    nickname: Option<String>,
    metadata: BTreeMap<String, String>,
}

owned_by_account_field!(Price);

/// Products are named by the caller, so two accounts may hold the same id: they are kept by
/// account and id.
fn product_key(acct: &Acct, id: &str) -> String {
    format!("{}/{id}", acct.as_deref().unwrap_or(""))
}

impl State {
    fn product_json(p: &Product) -> Value {
        json!({
            "id": p.id,
            "object": "product",
            "active": p.active,
            "created": p.created,
            "default_price": null,
            "description": p.description,
            "images": [],
            "livemode": false,
            "marketing_features": [],
            "metadata": metadata_json(&p.metadata),
            "name": p.name,
            "package_dimensions": null,
            "shippable": null,
            "statement_descriptor": null,
            "tax_code": null,
            "type": "service",
            "unit_label": null,
            "updated": p.updated,
            "url": null,
        })
    }

    pub(super) fn price_json(p: &Price) -> Value {
        let recurring = p.interval.as_ref().map(|interval| {
            json!({
                "interval": interval,
                "interval_count": 1,
                "meter": null,
                "trial_period_days": null,
                "usage_type": "licensed",
            })
        });
        json!({
            "id": p.id,
            "object": "price",
            "active": true,
            "billing_scheme": "per_unit",
            "created": p.created,
            "currency": p.currency,
            "custom_unit_amount": null,
            "livemode": false,
            "lookup_key": null,
            "metadata": metadata_json(&p.metadata),
            "nickname": p.nickname,
            "product": p.product,
            "recurring": recurring,
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "type": if p.interval.is_some() { "recurring" } else { "one_time" },
            "unit_amount": p.unit_amount,
            "unit_amount_decimal": p.unit_amount.to_string(),
        })
    }

    pub(super) fn product(&self, acct: &Acct, id: &str) -> Option<&Product> {
        self.products.get(&product_key(acct, id))
    }

    pub(super) fn price(&self, acct: &Acct, id: &str, param: Option<&str>) -> R<&Price> {
        owned(&self.prices, acct, "price", id, param)
    }

    /// `POST /v1/products`: `name` required; `id` the caller's (letters, digits, `_`, `-`) or
    /// Stripe's `prod_...`. An id the account already has is refused `resource_already_exists`.
    pub fn create_product(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(p, &["active", "description", "expand", "id", "metadata", "name"])?;
        let name = p
            .str_at(&["name"])
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(Some("parameter_missing"), "Missing required param: name.", Some("name")))?;
        let id = match p.str_at(&["id"]) {
            None => random_id("prod_", 14),
            Some(id) => {
                let well_formed = !id.is_empty()
                    && id.len() <= MAX_PRODUCT_ID_LEN
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !well_formed {
                    return Err(invalid(None, &format!("Invalid product id: {id}"), Some("id")));
                }
                id.to_owned()
            }
        };
        if self.product(acct, &id).is_some() {
            return Err(error(
                400,
                "invalid_request_error",
                Some("resource_already_exists"),
                "Product already exists.",
                Some("id"),
            ));
        }
        let now = self.now();
        let product = Product {
            id: id.clone(),
            account: acct.clone(),
            created: now,
            updated: now,
            name: name.to_owned(),
            description: opt_string(p, &["description"]),
            active: p.get("active").is_none() || bool_param(p, "active")?,
            metadata: string_map(p, "metadata")?,
        };
        let body = Self::product_json(&product);
        self.products.insert(product_key(acct, &id), product);
        self.emit("product.created", acct, body.clone(), None);
        Ok(Reply::ok(body))
    }

    /// `POST /v1/products/{id}`: `name`, `description`, `active`, `metadata` (merged, as Stripe
    /// merges metadata). Event `product.updated` when something changed.
    pub fn update_product(&mut self, acct: &Acct, id: &str, p: &Param) -> R<Reply> {
        check_known_params(p, &["active", "description", "expand", "metadata", "name"])?;
        let name = p.str_at(&["name"]).map(str::to_owned);
        if name.as_deref() == Some("") {
            return Err(invalid(None, "You passed an empty string for 'name'.", Some("name")));
        }
        let active = p.get("active").map(|_| bool_param(p, "active")).transpose()?;
        let metadata = string_map(p, "metadata")?;
        let now = self.now();
        let product = self.products.get_mut(&product_key(acct, id)).ok_or_else(|| missing("product", id, None))?;
        let mut previous = serde_json::Map::new();
        if let Some(name) = name.filter(|n| *n != product.name) {
            previous.insert("name".into(), json!(std::mem::replace(&mut product.name, name)));
        }
        if let Some(description) = opt_string(p, &["description"]).filter(|d| product.description.as_ref() != Some(d)) {
            previous.insert("description".into(), json!(product.description.replace(description)));
        }
        if let Some(active) = active.filter(|a| *a != product.active) {
            previous.insert("active".into(), json!(product.active));
            product.active = active;
        }
        let before = product.metadata.clone();
        for (k, v) in metadata {
            if v.is_empty() {
                product.metadata.remove(&k);
            } else {
                product.metadata.insert(k, v);
            }
        }
        if product.metadata != before {
            previous.insert("metadata".into(), metadata_json(&before));
        }
        if !previous.is_empty() {
            previous.insert("updated".into(), json!(product.updated));
            product.updated = now;
        }
        let body = Self::product_json(product);
        if !previous.is_empty() {
            self.emit("product.updated", acct, body.clone(), Some(Value::Object(previous)));
        }
        Ok(Reply::ok(body))
    }

    pub fn retrieve_product(&self, acct: &Acct, id: &str) -> R<Reply> {
        let product = self.product(acct, id).ok_or_else(|| missing("product", id, None))?;
        Ok(Reply::ok(Self::product_json(product)))
    }

    /// `POST /v1/prices`: `product` (one of the account's), `unit_amount`, `currency`,
    /// `recurring[interval]` (and `recurring[interval_count]`, 1 only), `nickname`, `metadata`.
    pub fn create_price(&mut self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(
            p,
            &["active", "currency", "expand", "metadata", "nickname", "product", "recurring", "unit_amount"],
        )?;
        let product = p
            .str_at(&["product"])
            .ok_or_else(|| invalid(Some("parameter_missing"), "Missing required param: product.", Some("product")))?;
        let product =
            self.product(acct, product).ok_or_else(|| missing("product", product, Some("product")))?.id.clone();
        let currency = parse_currency(p, &["currency"], "currency")?;
        let unit_amount = parse_amount(p, &["unit_amount"], "unit_amount")?;
        let interval = match p.get("recurring") {
            None => None,
            Some(recurring) => {
                if let Some(other) = recurring.names().into_iter().find(|n| !["interval", "interval_count"].contains(n))
                {
                    let param = format!("recurring[{other}]");
                    return Err(invalid(
                        Some("parameter_unknown"),
                        &format!("Received unknown parameter: {param}"),
                        Some(&param),
                    ));
                }
                let interval = recurring.str_at(&["interval"]).ok_or_else(|| {
                    invalid(
                        Some("parameter_missing"),
                        "Missing required param: recurring[interval].",
                        Some("recurring[interval]"),
                    )
                })?;
                if !["day", "week", "month", "year"].contains(&interval) {
                    return Err(invalid(
                        None,
                        &format!(
                            "Invalid recurring[interval]: must be one of day, week, month, or year, not {interval}"
                        ),
                        Some("recurring[interval]"),
                    ));
                }
                if recurring.str_at(&["interval_count"]).is_some_and(|c| c != "1") {
                    return Err(invalid(
                        None,
                        "The fake only takes interval_count=1.",
                        Some("recurring[interval_count]"),
                    ));
                }
                Some(interval.to_owned())
            }
        };
        let price = Price {
            id: random_id("price_", 24),
            account: acct.clone(),
            created: self.now(),
            product,
            unit_amount,
            currency: currency.code().to_owned(),
            interval,
            nickname: opt_string(p, &["nickname"]),
            metadata: string_map(p, "metadata")?,
        };
        let body = Self::price_json(&price);
        self.prices.insert(price.id.clone(), price);
        self.emit("price.created", acct, body.clone(), None);
        Ok(Reply::ok(body))
    }

    pub fn retrieve_price(&self, acct: &Acct, id: &str) -> R<Reply> {
        Ok(Reply::ok(Self::price_json(self.price(acct, id, None)?)))
    }
}
