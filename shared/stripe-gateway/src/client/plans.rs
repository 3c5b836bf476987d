//! Plans billed in money over async-stripe's typed requests (async-stripe-product: products and
//! prices; async-stripe-billing: subscriptions, invoices, invoice items): the six calls of
//! [`super::super::subscription`], sent as the rest of the client sends its calls (the connected
//! account, the caller's idempotency key, our retries), answers read into the small views below.
//!
//! Periods: from API version 2025-03-31 Stripe holds `current_period_start|end` on each
//! subscription item, not on the subscription; they are read from the items (all share them),
//! falling back to the subscription's own fields, which older versions wrote.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use stripe_billing::invoice::{
    CreateInvoice, CreateInvoicePendingInvoiceItemsBehavior, ListInvoice, PayInvoice, VoidInvoiceInvoice,
};
use stripe_billing::invoice_item::CreateInvoiceItem;
use stripe_billing::subscription::{
    RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_client_core::StripeRequest;
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::{CreateProduct, UpdateProduct};
use stripe_shared::{CheckoutSessionMode, InvoiceCollectionMethod};

use super::{StripeGateway, classify, returned, timestamp, to_currency, to_metadata};
use crate::gateway::{Account, CreatedCheckoutSession, GatewayError, Metadata};
use crate::ids::{CustomerId, IdempotencyKey, InvoiceId, PaymentMethodId, PriceId, SubscriptionId, SubscriptionItemId};
use crate::subscription::{
    Invoice, InvoiceCharge, InvoiceOutcome, InvoicePage, InvoiceStatus, ItemChange, NewSubscriptionCheckout, PriceSpec,
    Subscription, SubscriptionChange, SubscriptionItem, SubscriptionStatus,
};
use domain::{Currency, Money};

/// Stripe's limit on an idempotency key.
const MAX_KEY_LEN: usize = 255;

/// The key of one step of a call made of several requests: `<key>/<step>`; a key too long to take
/// the suffix is replaced by its SHA-256 (hex), so the derived key is as stable as the caller's.
pub(super) fn step_key(key: &IdempotencyKey, step: &str) -> Result<IdempotencyKey, GatewayError> {
    let derived = if key.as_str().len() + 1 + step.len() <= MAX_KEY_LEN {
        format!("{key}/{step}")
    } else {
        let digest = Sha256::digest(key.as_str().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}/{step}")
    };
    IdempotencyKey::parse(&derived).map_err(|e| GatewayError::Fatal(format!("derived idempotency key: {e}")))
}

/// The id of what a create answered.
#[derive(miniserde::Deserialize)]
struct IdView {
    id: String,
}

/// The fields of a Subscription this gateway reads (`customer`, `default_payment_method`,
/// `latest_invoice` and each item's price's `product` not expanded: ids).
#[derive(miniserde::Deserialize)]
struct SubscriptionView {
    id: String,
    customer: String,
    status: String,
    billing_cycle_anchor: i64,
    cancel_at_period_end: bool,
    ended_at: Option<i64>,
    default_payment_method: Option<String>,
    latest_invoice: Option<String>,
    metadata: Option<HashMap<String, String>>,
    items: ItemListView,
    /// Before API version 2025-03-31 only.
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
}

#[derive(miniserde::Deserialize)]
struct ItemListView {
    data: Vec<ItemView>,
}

#[derive(miniserde::Deserialize)]
struct ItemView {
    id: String,
    price: PriceView,
    quantity: Option<u64>,
    metadata: Option<HashMap<String, String>>,
    /// From API version 2025-03-31.
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
}

#[derive(miniserde::Deserialize)]
struct PriceView {
    id: String,
    product: String,
    unit_amount: Option<i64>,
    currency: String,
}

/// The fields of an Invoice this gateway reads.
#[derive(miniserde::Deserialize)]
struct InvoiceView {
    id: String,
    number: Option<String>,
    status: Option<String>,
    billing_reason: Option<String>,
    /// From API version 2025-03-31: `parent.subscription_details.subscription`.
    parent: Option<InvoiceParentView>,
    /// Before it.
    subscription: Option<String>,
    currency: String,
    total: i64,
    amount_paid: i64,
    amount_due: i64,
    created: i64,
    period_start: i64,
    period_end: i64,
    hosted_invoice_url: Option<String>,
    metadata: Option<HashMap<String, String>>,
}

#[derive(miniserde::Deserialize)]
struct InvoiceParentView {
    subscription_details: Option<InvoiceSubscriptionView>,
}

#[derive(miniserde::Deserialize)]
struct InvoiceSubscriptionView {
    subscription: Option<String>,
}

#[derive(miniserde::Deserialize)]
struct InvoiceListView {
    data: Vec<InvoiceView>,
    has_more: bool,
}

/// The status of an invoice just paid.
#[derive(miniserde::Deserialize)]
struct PaidView {
    status: Option<String>,
}

fn money(what: &str, amount_minor: i64, currency: Currency) -> Result<Money, GatewayError> {
    returned(what, Money::from_minor(amount_minor, currency))
}

fn subscription_from_stripe(s: SubscriptionView) -> Result<Subscription, GatewayError> {
    let id = returned("subscription id", SubscriptionId::parse(&s.id))?;
    let status = SubscriptionStatus::parse(&s.status)
        .ok_or_else(|| GatewayError::Fatal(format!("subscription {id} has an unknown status {:?}", s.status)))?;
    // Every item shares the period; the first item's, else the subscription's (older versions).
    let first = s.items.data.first();
    let start = first.and_then(|i| i.current_period_start).or(s.current_period_start);
    let end = first.and_then(|i| i.current_period_end).or(s.current_period_end);
    let (Some(start), Some(end)) = (start, end) else {
        return Err(GatewayError::Fatal(format!("subscription {id} has no current period")));
    };
    let items = s.items.data.into_iter().map(item_from_stripe).collect::<Result<_, _>>()?;
    Ok(Subscription {
        customer: returned("customer id", CustomerId::parse(&s.customer))?,
        status,
        current_period_start: timestamp("current_period_start", start)?,
        current_period_end: timestamp("current_period_end", end)?,
        billing_cycle_anchor: timestamp("billing_cycle_anchor", s.billing_cycle_anchor)?,
        cancel_at_period_end: s.cancel_at_period_end,
        ended_at: s.ended_at.map(|t| timestamp("ended_at", t)).transpose()?,
        default_payment_method: returned(
            "default_payment_method",
            s.default_payment_method.as_deref().map(PaymentMethodId::parse).transpose(),
        )?,
        latest_invoice: returned("latest_invoice", s.latest_invoice.as_deref().map(InvoiceId::parse).transpose())?,
        items,
        metadata: Metadata::from_stripe(s.metadata.unwrap_or_default()),
        id,
    })
}

fn item_from_stripe(i: ItemView) -> Result<SubscriptionItem, GatewayError> {
    let currency = returned("currency", Currency::parse(&i.price.currency))?;
    let unit_amount =
        i.price.unit_amount.ok_or_else(|| GatewayError::Fatal(format!("price {} has no unit_amount", i.price.id)))?;
    let quantity = i.quantity.unwrap_or(1);
    Ok(SubscriptionItem {
        id: returned("subscription item id", SubscriptionItemId::parse(&i.id))?,
        price: returned("price id", PriceId::parse(&i.price.id))?,
        product: i.price.product,
        unit_amount: money("unit_amount", unit_amount, currency)?,
        quantity: returned("quantity", u32::try_from(quantity))?,
        metadata: Metadata::from_stripe(i.metadata.unwrap_or_default()),
    })
}

fn invoice_from_stripe(i: InvoiceView) -> Result<Invoice, GatewayError> {
    let id = returned("invoice id", InvoiceId::parse(&i.id))?;
    let status = i
        .status
        .as_deref()
        .and_then(InvoiceStatus::parse)
        .ok_or_else(|| GatewayError::Fatal(format!("invoice {id} has an unknown status {:?}", i.status)))?;
    let currency = returned("currency", Currency::parse(&i.currency))?;
    let subscription = i.parent.and_then(|p| p.subscription_details).and_then(|d| d.subscription).or(i.subscription);
    Ok(Invoice {
        number: i.number,
        status,
        billing_reason: i.billing_reason,
        subscription: returned("subscription", subscription.as_deref().map(SubscriptionId::parse).transpose())?,
        total: money("total", i.total, currency)?,
        amount_paid: money("amount_paid", i.amount_paid, currency)?,
        amount_due: money("amount_due", i.amount_due, currency)?,
        created: timestamp("created", i.created)?,
        period_start: timestamp("period_start", i.period_start)?,
        period_end: timestamp("period_end", i.period_end)?,
        hosted_invoice_url: i.hosted_invoice_url,
        metadata: Metadata::from_stripe(i.metadata.unwrap_or_default()),
        id,
    })
}

/// One `items[n]` of a subscription update.
fn item_param(change: &ItemChange) -> UpdateSubscriptionItems {
    let mut item = UpdateSubscriptionItems::new();
    match change {
        ItemChange::Add { price, quantity, metadata } => {
            item.price = Some(price.as_str().to_owned());
            item.quantity = Some(u64::from(*quantity));
            item.metadata = Some(to_metadata(metadata));
        }
        ItemChange::Set { item: id, price, quantity } => {
            item.id = Some(id.as_str().to_owned());
            item.price = price.as_ref().map(|p| p.as_str().to_owned());
            item.quantity = Some(u64::from(*quantity));
        }
        ItemChange::Remove { item: id } => {
            item.id = Some(id.as_str().to_owned());
            item.deleted = Some(true);
        }
    }
    item
}

impl StripeGateway {
    /// Sends `request` (a create or an update) under `key`, retried with it; its answer as `V`.
    async fn write<R, V>(
        &self,
        operation: &'static str,
        account: Account<'_>,
        key: &IdempotencyKey,
        request: &R,
    ) -> Result<V, GatewayError>
    where
        R: StripeRequest + Sync,
        V: miniserde::Deserialize + Send + 'static,
    {
        let strategy = &Self::strategy(key)?;
        self.with_retries(operation, || async move {
            on!(request.build().customize::<V>(), account)
                .request_strategy(strategy.clone())
                .send(&self.client)
                .await
                .map_err(classify)
        })
        .await
    }

    /// Sends `request` (a read, or a write idempotent by itself) without a key.
    async fn read<R, V>(&self, operation: &'static str, account: Account<'_>, request: &R) -> Result<V, GatewayError>
    where
        R: StripeRequest + Sync,
        V: miniserde::Deserialize + Send + 'static,
    {
        self.with_retries(operation, || async move {
            on!(request.build().customize::<V>(), account).send(&self.client).await.map_err(classify)
        })
        .await
    }

    /// The product exists with our id and the spec's name, then the price is created on it.
    ///
    /// The product is renamed first (`POST /v1/products/{id}`: setting a name is idempotent by
    /// itself, so no key) and created (`<key>/product`) only when Stripe says it is missing; a
    /// create that meets `resource_already_exists` (another call created it meanwhile) renames.
    /// The price is created under `<key>/price`, so a retry of the whole call returns the same
    /// price.
    pub(super) async fn plans_create_price(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        spec: &PriceSpec,
    ) -> Result<PriceId, GatewayError> {
        let rename = UpdateProduct::new(spec.product.as_str()).name(spec.product_name.clone());
        match self.read::<_, IdView>("products.update", account, &rename).await {
            Ok(_) => {}
            Err(GatewayError::InvalidRequest { code: Some(code), .. }) if code == "resource_missing" => {
                let create = CreateProduct::new(spec.product_name.clone()).id(spec.product.clone());
                match self.write::<_, IdView>("products.create", account, &step_key(key, "product")?, &create).await {
                    Ok(_) => {}
                    Err(GatewayError::InvalidRequest { code: Some(code), .. }) if code == "resource_already_exists" => {
                        self.read::<_, IdView>("products.update", account, &rename).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        let price = CreatePrice::new(to_currency(spec.unit_amount.currency()))
            .product(spec.product.clone())
            .unit_amount(spec.unit_amount.amount_minor())
            .recurring(CreatePriceRecurring::new(CreatePriceRecurringInterval::Month))
            .metadata(to_metadata(&spec.metadata));
        let created: IdView = self.write("prices.create", account, &step_key(key, "price")?, &price).await?;
        returned("price id", PriceId::parse(&created.id))
    }

    pub(super) async fn plans_create_subscription_checkout(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewSubscriptionCheckout,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        let mut line_item = CreateCheckoutSessionLineItems::new();
        line_item.price = Some(session.price.as_str().to_owned());
        line_item.quantity = Some(1);
        let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(to_metadata(&session.metadata));
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(session.customer.as_str())
            .line_items(vec![line_item])
            .subscription_data(subscription_data)
            .metadata(to_metadata(&session.metadata))
            .client_reference_id(session.client_reference_id.clone())
            .success_url(session.success_url.clone())
            .cancel_url(session.cancel_url.clone());
        self.create_session(account, key, &request).await
    }

    pub(super) async fn plans_retrieve_subscription(
        &self,
        account: Account<'_>,
        id: &SubscriptionId,
    ) -> Result<Subscription, GatewayError> {
        let request = RetrieveSubscription::new(id.as_str());
        subscription_from_stripe(self.read("subscriptions.retrieve", account, &request).await?)
    }

    pub(super) async fn plans_update_subscription(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        id: &SubscriptionId,
        change: &SubscriptionChange,
    ) -> Result<Subscription, GatewayError> {
        let mut request =
            UpdateSubscription::new(id.as_str()).proration_behavior(UpdateSubscriptionProrationBehavior::None);
        if !change.items.is_empty() {
            request = request.items(change.items.iter().map(item_param).collect::<Vec<_>>());
        }
        if let Some(cancel) = change.cancel_at_period_end {
            request = request.cancel_at_period_end(cancel);
        }
        subscription_from_stripe(self.write("subscriptions.update", account, key, &request).await?)
    }

    /// The invoice (`<key>/invoice`), its item (`<key>/item`), the payment (`<key>/pay`); on a
    /// decline, the void (`<key>/void`), so the open invoice is never collected later.
    pub(super) async fn plans_charge_invoice(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        charge: &InvoiceCharge,
    ) -> Result<InvoiceOutcome, GatewayError> {
        let currency = to_currency(charge.amount.currency());
        let create = CreateInvoice::new()
            .customer(charge.customer.as_str())
            .subscription(charge.subscription.as_str())
            .currency(currency.clone())
            .collection_method(InvoiceCollectionMethod::ChargeAutomatically)
            .auto_advance(false)
            .pending_invoice_items_behavior(CreateInvoicePendingInvoiceItemsBehavior::Exclude)
            .metadata(to_metadata(&charge.metadata));
        let invoice: IdView = self.write("invoices.create", account, &step_key(key, "invoice")?, &create).await?;
        let invoice = returned("invoice id", InvoiceId::parse(&invoice.id))?;
        let item = CreateInvoiceItem::new()
            .customer(charge.customer.as_str())
            .invoice(invoice.as_str())
            .amount(charge.amount.amount_minor())
            .currency(currency)
            .description(charge.description.clone())
            .metadata(to_metadata(&charge.metadata));
        let _: IdView = self.write("invoiceitems.create", account, &step_key(key, "item")?, &item).await?;
        let pay = PayInvoice::new(invoice.as_str());
        let code = match self.write::<_, PaidView>("invoices.pay", account, &step_key(key, "pay")?, &pay).await {
            Ok(paid) if paid.status.as_deref() == Some("paid") => return Ok(InvoiceOutcome::Paid { invoice }),
            Ok(paid) => {
                return Err(GatewayError::Fatal(format!("invoice {invoice} is {:?} after it was paid", paid.status)));
            }
            Err(GatewayError::Declined { code }) => code,
            Err(GatewayError::AuthenticationRequired) => "authentication_required".to_owned(),
            Err(e) => return Err(e),
        };
        let void = VoidInvoiceInvoice::new(invoice.as_str());
        let _: IdView = self.write("invoices.void", account, &step_key(key, "void")?, &void).await?;
        Ok(InvoiceOutcome::Declined { invoice, code })
    }

    pub(super) async fn plans_list_invoices(
        &self,
        account: Account<'_>,
        customer: &CustomerId,
        limit: u8,
        starting_after: Option<&InvoiceId>,
    ) -> Result<InvoicePage, GatewayError> {
        let mut request = ListInvoice::new().customer(customer.as_str()).limit(i64::from(limit.clamp(1, 100)));
        if let Some(after) = starting_after {
            request = request.starting_after(after.as_str());
        }
        let page: InvoiceListView = self.read("invoices.list", account, &request).await?;
        let invoices = page.data.into_iter().map(invoice_from_stripe).collect::<Result<_, _>>()?;
        Ok(InvoicePage { invoices, has_more: page.has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_keys_are_derived_and_stay_within_stripe_s_limit() {
        let key = IdempotencyKey::parse("charge:ws-1:42").unwrap();
        assert_eq!(step_key(&key, "pay").unwrap().as_str(), "charge:ws-1:42/pay");
        let long = IdempotencyKey::parse(&"k".repeat(MAX_KEY_LEN)).unwrap();
        let derived = step_key(&long, "invoice").unwrap();
        assert_eq!(derived.as_str().len(), 64 + "/invoice".len());
        assert_eq!(derived, step_key(&long, "invoice").unwrap(), "the same key derives the same key");
        assert_ne!(derived, step_key(&IdempotencyKey::parse(&"j".repeat(MAX_KEY_LEN)).unwrap(), "invoice").unwrap());
    }

    #[test]
    fn periods_are_read_from_the_items_or_the_older_top_level_fields() {
        let basil = r#"{"id":"sub_1","customer":"cus_1","status":"past_due","billing_cycle_anchor":1700000000,
            "cancel_at_period_end":false,"ended_at":null,"default_payment_method":"pm_1","latest_invoice":"in_1",
            "metadata":{"workspace_id":"ws-1"},
            "items":{"object":"list","data":[{"id":"si_1","quantity":2,"metadata":{},
              "current_period_start":1700000000,"current_period_end":1702592000,
              "price":{"id":"price_1","product":"plan_starter","unit_amount":1500,"currency":"usd"}}]}}"#;
        let s = subscription_from_stripe(miniserde::json::from_str(basil).unwrap()).unwrap();
        assert_eq!(s.status, SubscriptionStatus::PastDue);
        assert_eq!(s.current_period_end.unix_timestamp(), 1_702_592_000);
        assert_eq!(s.items[0].unit_amount, Money::from_minor(1500, Currency::USD).unwrap());
        assert_eq!((s.items[0].quantity, s.items[0].product.as_str()), (2, "plan_starter"));
        let older = basil.replace(r#""current_period_start":1700000000,"current_period_end":1702592000,"#, "").replace(
            r#""billing_cycle_anchor":1700000000,"#,
            r#""billing_cycle_anchor":1700000000,"current_period_start":1,"current_period_end":2,"#,
        );
        let s = subscription_from_stripe(miniserde::json::from_str(&older).unwrap()).unwrap();
        assert_eq!((s.current_period_start.unix_timestamp(), s.current_period_end.unix_timestamp()), (1, 2));
        let none = basil.replace(r#""current_period_start":1700000000,"current_period_end":1702592000,"#, "");
        assert!(matches!(
            subscription_from_stripe(miniserde::json::from_str(&none).unwrap()),
            Err(GatewayError::Fatal(_))
        ));
    }
}
