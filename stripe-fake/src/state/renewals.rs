//! The fake's clock, and what happens when it passes the end of a subscription's period: as
//! Stripe bills it, period after period until the clock is caught up.
//!
//! - Cancelled at the period's end (`cancel_at_period_end`): the subscription ends then (status
//!   `canceled`, `ended_at` = the period's end), `customer.subscription.deleted`.
//! - Otherwise a new period starts, with an invoice (`billing_reason=subscription_cycle`: one line
//!   per item, its price x quantity for the new period, plus the subscription's pending invoice
//!   items), finalized and charged to the subscription's default payment method. Events, in
//!   order: `invoice.created`, `customer.subscription.updated` (the new period, `latest_invoice`),
//!   `invoice.finalized`, then `payment_intent.succeeded`, `invoice.paid`,
//!   `invoice.payment_succeeded`, or on a decline `payment_intent.payment_failed`,
//!   `invoice.payment_failed` and `customer.subscription.updated` (status `past_due`). A past-due
//!   subscription goes on renewing (Stripe's retries and dunning are not modelled: the fake never
//!   cancels or marks one `unpaid` by itself); paying its open invoice later (a control) makes it
//!   `active` again.
//!
//! Everything a renewal writes is dated at the end of the period it closes, as Stripe bills then.

use serde_json::{Value, json};
use time::{Date, Month, OffsetDateTime};

use super::State;
use super::invoices::{ChargeResult, InvoiceStatus, NewInvoice};
use super::subscriptions::{SubscriptionStatus, changed_fields};

/// Most periods one clock move renews a subscription by: a hundred years of months.
pub const MAX_RENEWED_PERIODS: u32 = 1200;

/// The start of the `n`th monthly period from `anchor` (unix seconds; `n` = 0 is the anchor):
/// the anchor's day of the month, or the month's last day when it is shorter, at the anchor's
/// time of day. Stripe's rule: a subscription anchored on January 31 renews on February 28
/// (29 in a leap year), then March 31, April 30...: each period is counted from the anchor, so a
/// short month does not move the day for good.
pub fn period_end(anchor: i64, n: u32) -> i64 {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(anchor) else { return anchor };
    let months = i64::from(u8::from(at.month())) - 1 + i64::from(n);
    let year = i64::from(at.year()) + months.div_euclid(12);
    let month = u8::try_from(months.rem_euclid(12) + 1).expect("1 to 12");
    let (Ok(year), Ok(month)) = (i32::try_from(year), Month::try_from(month)) else { return anchor };
    let day = at.day().min(time::util::days_in_month(month, year));
    let Ok(date) = Date::from_calendar_date(year, month, day) else { return anchor };
    at.replace_date(date).unix_timestamp()
}

impl State {
    /// Control: the clock moves to `to` (unix seconds), which may not be earlier than now, and the
    /// subscriptions whose period ended by then renew (see the module doc). The new time and the
    /// subscriptions renewed or ended.
    pub fn set_clock(&mut self, to: i64) -> Result<Value, String> {
        let now = self.now();
        if to < now {
            return Err(format!("the clock only moves forward: it is {now}, not {to}"));
        }
        Ok(self.advance_clock_to(to))
    }

    /// The clock moves to `to` if that is later than now (else it stays), then renews what fell
    /// due: as [`State::set_clock`], for a caller whose own clock may lag the fake's by a moment.
    pub fn advance_clock_to(&mut self, to: i64) -> Value {
        let now = self.now();
        if to > now {
            self.clock_offset_s = self.clock_offset_s.saturating_add(to - now);
        }
        let mut due: Vec<(u64, String)> = self
            .subscriptions
            .values()
            .filter(|s| s.status != SubscriptionStatus::Canceled && s.current_period().1 <= self.now())
            .map(|s| (s.seq, s.id.clone()))
            .collect();
        due.sort();
        let renewed: Vec<Value> = due.into_iter().map(|(_, id)| self.catch_up(&id)).collect();
        json!({ "now": self.now(), "offset_s": self.clock_offset_s, "subscriptions": renewed })
    }

    /// Renews one subscription, period after period, until its period ends after now; what it
    /// did.
    fn catch_up(&mut self, id: &str) -> Value {
        let mut invoices = Vec::new();
        for _ in 0..MAX_RENEWED_PERIODS {
            let s = &self.subscriptions[id];
            let end = s.current_period().1;
            if s.status == SubscriptionStatus::Canceled || end > self.now() {
                break;
            }
            self.as_of = Some(end);
            if s.cancel_at_period_end {
                self.end_subscription(id, end);
                self.emit_subscription(id, "customer.subscription.deleted", None);
                self.as_of = None;
                break;
            }
            invoices.push(self.renew_once(id));
            self.as_of = None;
        }
        self.as_of = None;
        let s = &self.subscriptions[id];
        json!({ "id": id, "status": s.status.as_str(), "invoices": invoices })
    }

    /// One renewal: the next period, its invoice, the charge. The invoice's id.
    fn renew_once(&mut self, id: &str) -> String {
        let before = self.subscription_json(&self.subscriptions[id]);
        let s = self.subscriptions.get_mut(id).expect("the caller found it");
        let closed = s.current_period();
        s.period_index += 1;
        let s = self.subscriptions[id].clone();
        let period = s.current_period();
        let lines = self.subscription_lines(&s, period);
        let invoice = self.new_invoice(NewInvoice {
            account: s.account.clone(),
            customer: Some(s.customer.clone()),
            currency: s.currency.clone(),
            lines,
            billing_reason: "subscription_cycle",
            subscription: Some(s.id.clone()),
            auto_advance: true,
            metadata: Default::default(),
            description: None,
            period: closed,
        });
        self.attach_pending_items(&invoice, &s.customer, Some(&s.id));
        self.subscriptions.get_mut(id).expect("found above").latest_invoice = Some(invoice.clone());
        let after = self.subscription_json(&self.subscriptions[id]);
        let previous = changed_fields(&before, &after);
        self.emit("customer.subscription.updated", &s.account, after, Some(Value::Object(previous)));
        self.finalize_invoice(&invoice);
        let paid = matches!(self.charge_invoice(&invoice, false), Ok(ChargeResult::Paid));
        self.set_paid_status(id, paid);
        invoice
    }

    /// After a charge of its invoice: a paid past-due subscription is active again, a declined
    /// active one is past due; either change sends `customer.subscription.updated`.
    fn set_paid_status(&mut self, id: &str, paid: bool) {
        let s = self.subscriptions.get_mut(id).expect("the caller found it");
        let status = match (s.status, paid) {
            (SubscriptionStatus::PastDue, true) => SubscriptionStatus::Active,
            (SubscriptionStatus::Active, false) => SubscriptionStatus::PastDue,
            _ => return,
        };
        let previous = s.status;
        s.status = status;
        self.emit_subscription(id, "customer.subscription.updated", Some(json!({ "status": previous.as_str() })));
    }

    /// Control: an open invoice of a subscription's is paid now, as Stripe's retry collects it
    /// after the customer fixed the card: the subscription's sticky outcome is cleared, the charge
    /// succeeds (`invoice.paid`), and a past-due subscription with nothing else open is active
    /// again (`customer.subscription.updated`). The invoice.
    pub fn pay_open_invoice(&mut self, id: &str) -> Result<Value, String> {
        let invoice = self.invoices.get(id).ok_or_else(|| format!("no invoice {id}"))?;
        if invoice.status != InvoiceStatus::Open {
            return Err(format!("invoice {id} is {}, not open", invoice.status.as_str()));
        }
        let subscription = invoice.subscription.clone();
        if let Some(s) = subscription.as_ref().and_then(|s| self.subscriptions.get_mut(s)) {
            s.payment_outcome = None;
        }
        self.charge_invoice(id, true)
            .map_err(|r| r.body["error"]["message"].as_str().unwrap_or("refused").to_owned())?;
        if let Some(sub) = subscription {
            let others_open = self
                .invoices
                .values()
                .any(|i| i.subscription.as_ref() == Some(&sub) && i.status == InvoiceStatus::Open);
            if !others_open {
                self.set_paid_status(&sub, true);
            }
        }
        Ok(self.invoice_json(&self.invoices[id]))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::form::Param;
    use crate::state::{Acct, Card, NextPaymentIntent};

    const ACCT: &str = "acct_1Renewals";
    /// 2025-01-31T10:00:00Z.
    const JAN_31_2025: i64 = 1_738_317_600;

    /// The next January 31 at 10:00 UTC: a clock set to it moves forward, and February is short.
    fn jan_31() -> i64 {
        let year = OffsetDateTime::now_utc().year() + 1;
        Date::from_calendar_date(year, Month::January, 31)
            .unwrap()
            .with_hms(10, 0, 0)
            .unwrap()
            .assume_utc()
            .unix_timestamp()
    }

    fn utc(unix: i64) -> String {
        OffsetDateTime::from_unix_timestamp(unix).unwrap().to_string()
    }

    #[test]
    fn periods_count_from_the_anchor_and_clamp_to_short_months() {
        let ends: Vec<String> = (0..=4).map(|n| utc(period_end(JAN_31_2025, n))).collect();
        assert_eq!(
            ends,
            [
                "2025-01-31 10:00:00.0 +00:00:00",
                "2025-02-28 10:00:00.0 +00:00:00",
                "2025-03-31 10:00:00.0 +00:00:00",
                "2025-04-30 10:00:00.0 +00:00:00",
                "2025-05-31 10:00:00.0 +00:00:00",
            ]
        );
        // A leap year's February; December into January.
        let jan_31_2024 = JAN_31_2025 - 366 * 86_400;
        assert_eq!(utc(period_end(jan_31_2024, 1)), "2024-02-29 10:00:00.0 +00:00:00");
        assert_eq!(utc(period_end(JAN_31_2025, 11)), "2025-12-31 10:00:00.0 +00:00:00");
        assert_eq!(utc(period_end(JAN_31_2025, 13)), "2026-02-28 10:00:00.0 +00:00:00");
        // Mid-month anchors keep their day.
        let mar_15 = JAN_31_2025 + 43 * 86_400;
        assert_eq!(utc(period_end(mar_15, 1)), "2025-04-15 10:00:00.0 +00:00:00");
    }

    fn call(r: Result<crate::state::Reply, crate::state::Reply>) -> Value {
        match r {
            Ok(reply) => reply.body,
            Err(reply) => panic!("refused: {}", reply.body),
        }
    }

    fn form(s: &str) -> Param {
        Param::parse(s).unwrap()
    }

    fn types_since(state: &State, from: usize) -> Vec<String> {
        state.events[from..].iter().map(|e| e.type_.clone()).collect()
    }

    /// A state whose clock is at `at`, with a customer subscribed (through Checkout) to a price of
    /// 1,500 cents a month, quantity 2: the state and the subscription's id.
    fn subscribed(at: i64) -> (State, String) {
        let mut state = State::new("http://fake".into(), &[ACCT.to_owned()]);
        state.set_clock(at).unwrap();
        let acct: Acct = Some(ACCT.into());
        let customer = call(state.create_customer(&acct, &form("description=ws")))["id"].as_str().unwrap().to_owned();
        call(state.create_product(&acct, &form("id=plan_starter&name=Starter")));
        let price = call(state.create_price(
            &acct,
            &form("product=plan_starter&unit_amount=1500&currency=usd&recurring[interval]=month"),
        ))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let session = call(state.create_session(
            &acct,
            &form(&format!(
                "mode=subscription&customer={customer}&line_items[0][price]={price}&line_items[0][quantity]=2\
                 &subscription_data[metadata][workspace_id]=ws-1&success_url=https://x/ok&cancel_url=https://x/no"
            )),
        ));
        let completed = state.pay(session["id"].as_str().unwrap(), Some(Card::default())).unwrap();
        let sub = completed["subscription"].as_str().unwrap().to_owned();
        (state, sub)
    }

    #[test]
    fn checkout_starts_a_subscription_with_its_first_invoice_paid() {
        let before_events = 0;
        let (state, sub) = subscribed(jan_31());
        let s = &state.subscriptions[&sub];
        assert_eq!((s.status, s.billing_cycle_anchor), (SubscriptionStatus::Active, jan_31()));
        let json = state.subscription_json(s);
        assert_eq!(json["items"]["data"][0]["current_period_start"], jan_31());
        assert_eq!(json["items"]["data"][0]["current_period_end"], period_end(jan_31(), 1));
        assert_eq!(json["metadata"]["workspace_id"], "ws-1");
        let invoice = &state.invoices[s.latest_invoice.as_ref().unwrap()];
        let invoice = state.invoice_json(invoice);
        assert_eq!(
            (&invoice["status"], &invoice["billing_reason"], &invoice["amount_paid"]),
            (&json!("paid"), &json!("subscription_create"), &json!(3000))
        );
        assert_eq!(invoice["parent"]["subscription_details"]["subscription"], sub.as_str());
        let types = types_since(&state, before_events);
        let wanted = [
            "product.created",
            "price.created",
            "payment_method.attached",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "checkout.session.completed",
        ];
        assert_eq!(types, wanted);
    }

    #[test]
    fn the_clock_renews_period_after_period_and_charges_pending_items() {
        let (mut state, sub) = subscribed(jan_31());
        let acct: Acct = Some(ACCT.into());
        let customer = state.subscriptions[&sub].customer.clone();
        call(state.create_invoice_item(
            &acct,
            &form(&format!("customer={customer}&subscription={sub}&amount=700&currency=usd&description=extra")),
        ));
        let from = state.events.len();
        // Past two period ends (Feb 28 and Mar 31), not the third (Apr 30).
        let moved = state.set_clock(period_end(jan_31(), 2) + 60).unwrap();
        assert_eq!(moved["subscriptions"][0]["invoices"].as_array().unwrap().len(), 2);
        let s = &state.subscriptions[&sub];
        assert_eq!((s.period_index, s.status), (2, SubscriptionStatus::Active));
        let invoices: Vec<Value> = moved["subscriptions"][0]["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| state.invoice_json(&state.invoices[id.as_str().unwrap()]))
            .collect();
        // The first renewal carries the pending item; each is dated at the end it bills from.
        assert_eq!(invoices[0]["total"], 3000 + 700);
        assert_eq!(invoices[1]["total"], 3000);
        assert_eq!(invoices[0]["created"], period_end(jan_31(), 1));
        assert_eq!(invoices[1]["lines"]["data"][0]["period"]["end"], period_end(jan_31(), 3));
        for i in &invoices {
            assert_eq!((&i["status"], &i["billing_reason"]), (&json!("paid"), &json!("subscription_cycle")));
        }
        let one_renewal = [
            "invoice.created",
            "customer.subscription.updated",
            "invoice.finalized",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
        ];
        assert_eq!(types_since(&state, from), [one_renewal, one_renewal].concat());
        let updated: Value = serde_json::from_str(&state.events[from + 1].payload).unwrap();
        assert_eq!(
            updated["data"]["previous_attributes"]["items"]["data"][0]["current_period_end"],
            period_end(jan_31(), 1)
        );
        assert!(state.set_clock(period_end(jan_31(), 2)).is_err(), "the clock never goes back");
    }

    #[test]
    fn cancelled_at_period_end_ends_then_without_an_invoice() {
        let (mut state, sub) = subscribed(jan_31());
        let acct: Acct = Some(ACCT.into());
        let updated =
            call(state.update_subscription(&acct, &sub, &form("cancel_at_period_end=true&proration_behavior=none")));
        assert_eq!(
            (&updated["cancel_at_period_end"], &updated["cancel_at"]),
            (&json!(true), &json!(period_end(jan_31(), 1)))
        );
        let invoices_before = state.invoices.len();
        let from = state.events.len();
        state.set_clock(period_end(jan_31(), 3)).unwrap();
        let s = &state.subscriptions[&sub];
        assert_eq!((s.status, s.ended_at), (SubscriptionStatus::Canceled, Some(period_end(jan_31(), 1))));
        assert_eq!(state.invoices.len(), invoices_before);
        assert_eq!(types_since(&state, from), ["customer.subscription.deleted"]);
    }

    #[test]
    fn a_declined_renewal_is_past_due_until_the_invoice_is_paid_later() {
        let (mut state, sub) = subscribed(jan_31());
        state
            .set_subscription_payment_outcome(&sub, Some(NextPaymentIntent::Decline("insufficient_funds".into())))
            .unwrap();
        let from = state.events.len();
        state.set_clock(period_end(jan_31(), 1)).unwrap();
        assert_eq!(state.subscriptions[&sub].status, SubscriptionStatus::PastDue);
        assert_eq!(
            types_since(&state, from),
            [
                "invoice.created",
                "customer.subscription.updated",
                "invoice.finalized",
                "payment_intent.payment_failed",
                "invoice.payment_failed",
                "customer.subscription.updated",
            ]
        );
        let open = state.subscriptions[&sub].latest_invoice.clone().unwrap();
        let invoice = state.invoice_json(&state.invoices[&open]);
        assert_eq!(
            (&invoice["status"], &invoice["attempt_count"], &invoice["amount_remaining"]),
            (&json!("open"), &json!(1), &json!(3000))
        );
        let from = state.events.len();
        let paid = state.pay_open_invoice(&open).unwrap();
        assert_eq!(paid["status"], "paid");
        assert_eq!(state.subscriptions[&sub].status, SubscriptionStatus::Active);
        assert_eq!(state.subscriptions[&sub].payment_outcome, None, "the card was fixed");
        assert_eq!(
            types_since(&state, from),
            ["payment_intent.succeeded", "invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]
        );
        let last: Value = serde_json::from_str(&state.events.last().unwrap().payload).unwrap();
        assert_eq!(last["data"]["previous_attributes"], json!({ "status": "past_due" }));
        assert!(state.pay_open_invoice(&open).is_err(), "a paid invoice is not paid twice");
    }

    #[test]
    fn a_card_that_expired_by_the_renewal_is_declined_by_the_fake_s_clock() {
        let (mut state, sub) = subscribed(jan_31());
        let pm = state.subscriptions[&sub].default_payment_method.clone().unwrap();
        let (year, _) = state.this_month();
        // Good through January, the anchor's month; the renewal charges it on February 28.
        state.update_card_expiry(&pm, 1, year).unwrap();
        state.set_clock(period_end(jan_31(), 1)).unwrap();
        assert_eq!(state.subscriptions[&sub].status, SubscriptionStatus::PastDue);
        let failed: Value = serde_json::from_str(
            &state.events.iter().rev().find(|e| e.type_ == "payment_intent.payment_failed").unwrap().payload,
        )
        .unwrap();
        assert_eq!(failed["data"]["object"]["last_payment_error"]["code"], "expired_card");
    }

    #[test]
    fn item_changes_are_checked_and_reported_with_their_old_values() {
        let (mut state, sub) = subscribed(jan_31());
        let acct: Acct = Some(ACCT.into());
        call(state.create_product(&acct, &form("id=addon_seat&name=Seat")));
        let seat =
            call(state.create_price(
                &acct,
                &form("product=addon_seat&unit_amount=500&currency=usd&recurring[interval]=month"),
            ))["id"]
                .as_str()
                .unwrap()
                .to_owned();
        let item = state.subscriptions[&sub].items[0].id.clone();
        let from = state.events.len();
        let updated = call(state.update_subscription(
            &acct,
            &sub,
            &form(&format!("items[0][id]={item}&items[0][quantity]=3&items[1][price]={seat}&items[1][quantity]=4&proration_behavior=none")),
        ));
        let items = updated["items"]["data"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            (&items[0]["quantity"], &items[1]["quantity"], &items[1]["price"]["id"]),
            (&json!(3), &json!(4), &json!(seat))
        );
        assert_eq!(types_since(&state, from), ["customer.subscription.updated"]);
        let event: Value = serde_json::from_str(&state.events.last().unwrap().payload).unwrap();
        assert_eq!(event["data"]["previous_attributes"]["items"]["data"][0]["quantity"], 2);
        // The renewal bills the new items: 3 x 1,500 + 4 x 500.
        state.set_clock(period_end(jan_31(), 1)).unwrap();
        let latest = state.subscriptions[&sub].latest_invoice.clone().unwrap();
        assert_eq!(state.invoices[&latest].total(), 6500);
        // Refusals: the same price twice, no items left, a price of another currency, prorations billed now.
        let seat_item = state.subscriptions[&sub].items[1].id.clone();
        let refused =
            |state: &mut State, q: String| state.update_subscription(&acct, &sub, &form(&q)).unwrap_err().status;
        assert_eq!(refused(&mut state, format!("items[0][price]={seat}")), 400);
        assert_eq!(
            refused(
                &mut state,
                format!("items[0][id]={item}&items[0][deleted]=true&items[1][id]={seat_item}&items[1][deleted]=true")
            ),
            400
        );
        assert_eq!(refused(&mut state, "proration_behavior=always_invoice".into()), 400);
        call(state.create_product(&acct, &form("id=plan_eur&name=EUR")));
        let eur = call(
            state.create_price(&acct, &form("product=plan_eur&unit_amount=900&currency=eur&recurring[interval]=month")),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(refused(&mut state, format!("items[0][price]={eur}")), 400);
        // Deleting one item leaves the other; cancelling now ends it.
        let updated = call(state.update_subscription(
            &acct,
            &sub,
            &form(&format!("items[0][id]={seat_item}&items[0][deleted]=true")),
        ));
        assert_eq!(updated["items"]["data"].as_array().unwrap().len(), 1);
        let cancelled = call(state.cancel_subscription(&acct, &sub, &form("")));
        assert_eq!((&cancelled["status"], &cancelled["ended_at"]), (&json!("canceled"), &json!(state.now())));
        assert_eq!(state.update_subscription(&acct, &sub, &form("cancel_at_period_end=true")).unwrap_err().status, 400);
        assert_eq!(state.events.last().unwrap().type_, "customer.subscription.deleted");
    }

    #[test]
    fn products_take_our_ids_once_per_account_and_prices_need_one() {
        let mut state = State::new("http://fake".into(), &[ACCT.to_owned(), "acct_2".to_owned()]);
        let acct: Acct = Some(ACCT.into());
        let other: Acct = Some("acct_2".into());
        call(state.create_product(&acct, &form("id=plan_starter&name=Starter")));
        let again = state.create_product(&acct, &form("id=plan_starter&name=Starter")).unwrap_err();
        assert_eq!((again.status, &again.body["error"]["code"]), (400, &json!("resource_already_exists")));
        call(state.create_product(&other, &form("id=plan_starter&name=Theirs")));
        let renamed = call(state.update_product(&acct, "plan_starter", &form("name=Starter+plan")));
        assert_eq!(renamed["name"], "Starter plan");
        assert_eq!(call(state.retrieve_product(&other, "plan_starter"))["name"], "Theirs");
        let missing = state.update_product(&acct, "plan_gone", &form("name=x")).unwrap_err();
        assert_eq!((missing.status, &missing.body["error"]["code"]), (404, &json!("resource_missing")));
        let no_product = state.create_price(&acct, &form("product=plan_gone&unit_amount=1&currency=usd")).unwrap_err();
        assert_eq!(no_product.body["error"]["code"], "resource_missing");
        let price = call(state.create_price(
            &acct,
            &form("product=plan_starter&unit_amount=1500&currency=usd&recurring[interval]=month&metadata[k]=v"),
        ));
        assert_eq!(
            (&price["recurring"]["interval"], &price["type"], &price["metadata"]["k"]),
            (&json!("month"), &json!("recurring"), &json!("v"))
        );
        assert_eq!(state.retrieve_price(&other, price["id"].as_str().unwrap()).unwrap_err().status, 404);
    }
}
