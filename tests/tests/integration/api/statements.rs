//! Monthly statements: a month of top-ups, a purchase, a renewal, usage, a refund and
//! adjustments, read back page by page as JSON and as CSV, equal to the ledger to the last digit:
//! the entries are the ledger's of that month, the opening balance plus their amounts is the
//! closing balance, one month closes where the next opens, and every total is the sum of the
//! entries it counts. The partner's statement adds its workspaces up.

use std::collections::BTreeMap;

use lambda_http::{Body, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use store::Table;
use time::macros::datetime;

use super::checkout::{events_of, of_type, outcome, seller, session};
use super::{Api, P, Q, W, X, dispatch, partner_admin, req, workspace_admin, workspace_member};

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("{v} is a decimal string")).parse().unwrap()
}

/// W pays the 10.00 option (1,000 points): the charge, once credited.
async fn top_up<T: Table>(api: &Api<T>, option: &str) -> String {
    let id = session(api, P, W, option).await;
    api.stripe.pay(&id).await.unwrap();
    let completed: Vec<_> =
        events_of(api, W).into_iter().filter(|(t, p)| t == "checkout.session.completed" && p.contains(&id)).collect();
    assert_eq!(outcome(&api.deliver(&of_type(&completed, "checkout.session.completed")).await), "credited");
    api.stripe.session(&id).unwrap()["payment_intent"]["latest_charge"].as_str().unwrap().to_owned()
}

/// April and May of W: every kind of entry a workspace has, and a fold into P's wallet in May.
async fn two_months<T: Table>(api: &Api<T>) {
    api.tenants().await;
    let option = seller(api, P).await;
    api.price(P, "extra_bot", "Extra bot", "10", true).await;
    // April.
    api.fund(P, W, "50").await;
    top_up(api, &option).await;
    api.buy(P, W, "extra_bot", 1).await.ok(201);
    // May: the renewal, usage, a refund, adjustments (one that reads like a spreadsheet
    // formula), another top-up, and the fold of the month's wholesale charges.
    api.set_clock(datetime!(2026-05-01 06:00 UTC));
    api.billing.renew_due(|| false, billing::RenewalLimits::default()).await.unwrap();
    // 6 points a minute at P's 0.012 USD a point: 0.072 USD, above the 0.07 wholesale cost.
    api.rebill(P, W, "6").await.ok(200);
    api.credit_partner(P, "100").await;
    api.set_clock(datetime!(2026-05-03 09:00 UTC));
    for (i, minutes) in ["10", "0.5", "2.25"].into_iter().enumerate() {
        api.spend(W, minutes, &format!("call-{i}")).await.ok(200);
    }
    let charge = top_up(api, &option).await;
    api.stripe.refund(&charge, Some(400)).await.unwrap();
    let refunded: Vec<_> = events_of(api, W).into_iter().filter(|(t, _)| t == "charge.refunded").collect();
    assert_eq!(outcome(&api.deliver(&of_type(&refunded, "charge.refunded")).await), "clawed_back");
    let deduct = json!({ "amount": "-7.25", "reason": "=HYPERLINK(\"x\"), refunded by hand" });
    let deduct = req("POST /partner/workspaces/{id}/points").param("id", W).by(partner_admin(P)).json(deduct);
    api.call(deduct).await.ok(201);
    api.fold(P).await;
    api.set_clock(datetime!(2026-06-02 08:00 UTC));
}

/// Every page of a wallet statement through `route` (JSON, `limit` entries a page): the first
/// page, and all the entries.
async fn statement_pages<T: Table>(api: &Api<T>, route: super::Req, limit: usize) -> (Value, Vec<Value>) {
    let mut entries = Vec::new();
    let mut first = None;
    let mut cursor: Option<String> = None;
    loop {
        let mut r = route.clone().query("limit", limit.to_string());
        if let Some(c) = &cursor {
            r = r.query("cursor", c);
        }
        let page = api.call(r).await.ok(200);
        let got = page["entries"].as_array().unwrap();
        assert!(got.len() <= limit, "{page}");
        entries.extend(got.iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        let page_totals = (&page["opening_balance"], &page["closing_balance"], &page["totals"]);
        match &first {
            None => first = Some(page.clone()),
            Some(f) => {
                let first_totals = (&f["opening_balance"], &f["closing_balance"], &f["totals"]);
                assert_eq!(page_totals, first_totals, "every page says the same of the month");
            }
        }
        if cursor.is_none() {
            return (first.unwrap(), entries);
        }
    }
}

/// Counts and sums, by kind or by currency.
type Sums = BTreeMap<String, (u64, Decimal)>;

/// What the ledger's entries of `month` (`"2026-05"`) add up to, by kind; and their top-ups by
/// currency.
fn sums(ledger: &[Value], month: &str) -> (Sums, Sums) {
    let mut by_kind = Sums::new();
    let mut top_ups = Sums::new();
    for e in ledger.iter().filter(|e| e["created_at"].as_str().unwrap().starts_with(month)) {
        let k = by_kind.entry(e["kind"].as_str().unwrap().to_owned()).or_default();
        k.0 += 1;
        k.1 += dec(&e["amount"]);
        if e["kind"] == "top_up" {
            let t = top_ups.entry(e["detail"]["currency"].as_str().unwrap().to_uppercase()).or_default();
            t.0 += 1;
            t.1 += dec(&e["detail"]["amount"]);
        }
    }
    (by_kind, top_ups)
}

fn totals_of(statement: &Value) -> (Sums, Sums) {
    let by_kind = statement["totals"]["by_kind"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), (v["count"].as_u64().unwrap(), dec(&v["points"]))))
        .collect();
    let top_ups = statement["totals"]["top_ups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["currency"].as_str().unwrap().to_owned(), (t["count"].as_u64().unwrap(), dec(&t["amount"]))))
        .collect();
    (by_kind, top_ups)
}

/// The whole ledger of W, oldest first.
async fn whole_ledger<T: Table>(api: &Api<T>) -> Vec<Value> {
    let mut ledger = api.ledger(P, W).await;
    ledger.reverse();
    ledger
}

async fn a_month_of_every_kind_sums_to_the_ledger<T: Table>(api: Api<T>) {
    two_months(&api).await;
    let ledger = whole_ledger(&api).await;
    let statement = |month: &'static str| req("GET /workspace/statements/{month}").param("month", month);
    let mut closing_before = json!("0.00");
    for month in ["2026-03", "2026-04", "2026-05", "2026-06"] {
        let (first, entries) = statement_pages(&api, statement(month).by(workspace_member(P, W)), 2).await;
        // The month's entries are the ledger's, in order, each with what it says.
        let of_month: Vec<&Value> =
            ledger.iter().filter(|e| e["created_at"].as_str().unwrap().starts_with(month)).collect();
        let listed: Vec<&Value> = entries.iter().map(|l| &l["entry"]).collect();
        assert_eq!(listed, of_month, "{month}");
        // Opening where the last month closed; the amounts take it to the closing balance.
        assert_eq!(first["opening_balance"], closing_before, "{month}");
        let moved: Decimal = listed.iter().map(|e| dec(&e["amount"])).sum();
        assert_eq!(dec(&first["opening_balance"]) + moved, dec(&first["closing_balance"]), "{month}");
        if let Some(last) = listed.last() {
            assert_eq!(last["balance_after"], first["closing_balance"], "{month}");
        }
        assert_eq!(totals_of(&first), sums(&ledger, month), "{month}: totals are the entries' sums");
        let credits: Decimal = listed.iter().map(|e| dec(&e["amount"])).filter(|a| a.is_sign_positive()).sum();
        assert_eq!(dec(&first["totals"]["credits"]), credits, "{month}");
        assert_eq!(first["totals"]["entries"], json!(listed.len()), "{month}");
        assert_eq!(first["closed"], json!(month != "2026-06"), "{month}");
        closing_before = first["closing_balance"].clone();
    }
    // May had every kind a workspace has.
    let (may, entries) = statement_pages(&api, statement("2026-05").by(workspace_admin(P, W)), 500).await;
    let kinds: Vec<&str> = may["totals"]["by_kind"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(kinds, ["adjustment", "claw_back", "renewal", "top_up", "usage"], "{may}");
    let top_up = entries.iter().find(|l| l["entry"]["kind"] == "top_up").unwrap();
    assert_eq!(top_up["money"], json!({ "amount": "10.00", "currency": "USD" }), "{top_up}");
    assert!(top_up["stripe_ids"][0].as_str().unwrap().starts_with("cs_"), "{top_up}");
    assert_eq!(top_up["stripe_ids"][1], top_up["entry"]["detail"]["receipt"], "and its receipt: {top_up}");
    // The partner reads the same statement of its workspace; another partner finds none.
    let theirs = req("GET /partner/workspaces/{id}/statements/{month}").param("id", W).param("month", "2026-05");
    let (partner_view, _) = statement_pages(&api, theirs.clone().by(partner_admin(P)), 500).await;
    assert_eq!(partner_view, may);
    api.call(theirs.by(partner_admin(Q))).await.err(404, "not_found", None);
    // A month not begun, a month misspelt, a format unknown.
    api.call(statement("2026-07").by(workspace_member(P, W))).await.invalid("month");
    api.call(statement("2026-5").by(workspace_member(P, W))).await.invalid("month");
    api.call(statement("2026-05").query("format", "xml").by(workspace_member(P, W))).await.invalid("format");
    assert_eq!(api.verify(W).await, 10);
}

/// A CSV page: its body and the cursor its `Link` header names.
fn csv_page(r: Response<Body>) -> (String, Option<String>) {
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let next = r.headers().get("link").map(|l| {
        let l = l.to_str().unwrap();
        let cursor = l.split("cursor=").nth(1).unwrap();
        cursor[..cursor.find('>').unwrap()].to_owned()
    });
    let Body::Text(text) = r.body() else { panic!("a CSV is text") };
    (text.clone(), next)
}

/// Splits one CSV row (RFC 4180, as the statement writes it) into its fields.
fn fields(row: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

async fn the_csv_statement_adds_up_across_its_pages<T: Table>(api: Api<T>) {
    two_months(&api).await;
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut r = req("GET /workspace/statements/{month}").param("month", "2026-05").query("format", "csv");
        r = r.query("limit", "3");
        if let Some(c) = &cursor {
            r = r.query("cursor", c);
        }
        let (text, next) = csv_page(dispatch(&api.billing, r.by(workspace_admin(P, W)).build()).await);
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        assert!(lines.next().unwrap().starts_with("date,seq,kind,points,balance_after,"), "{text}");
        rows.extend(lines.map(fields));
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    let (opening, closing) = (rows.first().unwrap(), rows.last().unwrap());
    assert_eq!((opening[2].as_str(), closing[2].as_str()), ("opening_balance", "closing_balance"));
    let moved: Decimal = rows[1..rows.len() - 1].iter().map(|r| r[3].parse::<Decimal>().unwrap()).sum();
    let (opening, closing): (Decimal, Decimal) = (opening[4].parse().unwrap(), closing[4].parse().unwrap());
    assert_eq!(opening + moved, closing);
    let may: Vec<Value> = whole_ledger(&api)
        .await
        .into_iter()
        .filter(|e| e["created_at"].as_str().unwrap().starts_with("2026-05"))
        .collect();
    assert_eq!(rows.len(), may.len() + 2);
    for (row, entry) in rows[1..].iter().zip(&may) {
        assert_eq!(
            (row[1].as_str(), row[3].as_str()),
            (entry["seq"].to_string().as_str(), entry["amount"].as_str().unwrap())
        );
    }
    // A partner's text that starts like a formula is inert in a spreadsheet.
    let adjusted = rows.iter().find(|r| r[2] == "adjustment").unwrap();
    assert_eq!(adjusted[7], "'=HYPERLINK(\"x\"), refunded by hand", "{adjusted:?}");
}

async fn the_partner_statement_adds_its_workspaces<T: Table>(api: Api<T>) {
    two_months(&api).await;
    // X2, a second workspace of P, changes in May too; Q's X is not P's.
    api.workspace(P, "ws-acme-2", "starter").await;
    api.set_clock(datetime!(2026-05-20 12:00 UTC));
    api.fund(P, "ws-acme-2", "12.5").await;
    api.fund(Q, X, "99").await;
    api.set_clock(datetime!(2026-06-02 08:00 UTC));

    let mut workspaces = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first = None;
    loop {
        let mut r = req("GET /partner/statements/{month}").param("month", "2026-05").query("limit", "1");
        if let Some(c) = &cursor {
            r = r.query("cursor", c);
        }
        let page = api.call(r.by(partner_admin(P))).await.ok(200);
        workspaces.extend(page["workspaces"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        first.get_or_insert(page);
        if cursor.is_none() {
            break;
        }
    }
    let first = first.unwrap();
    let ids: Vec<&str> = workspaces.iter().map(|w| w["workspace_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [W, "ws-acme-2"], "{workspaces:?}");
    // Each workspace's line is its own statement's totals.
    for w in &workspaces {
        let own =
            req("GET /partner/workspaces/{id}/statements/{month}").param("id", w["workspace_id"].as_str().unwrap());
        let own = api.call(own.param("month", "2026-05").by(partner_admin(P))).await.ok(200);
        assert_eq!(
            (&w["opening_balance"], &w["closing_balance"], &w["totals"]),
            (&own["opening_balance"], &own["closing_balance"], &own["totals"])
        );
    }
    // Top-ups by currency: W's one May top-up (April's is April's).
    assert_eq!(first["top_ups"], json!([{ "currency": "USD", "count": 1, "amount": "10.00" }]), "{first}");
    // Its own wallet: the platform's credit and the fold of the month's wholesale charges.
    let wallet = req("GET /partner/wallet/statements/{month}").param("month", "2026-05").by(partner_admin(P));
    let (own, entries) = statement_pages(&api, wallet, 500).await;
    assert_eq!(
        (&first["wallet"]["totals"], &first["wallet"]["closing_balance"]),
        (&own["totals"], &own["closing_balance"])
    );
    let kinds: Vec<&Value> = entries.iter().map(|l| &l["entry"]["kind"]).collect();
    assert_eq!(kinds, [&json!("adjustment"), &json!("wholesale_charges")], "{entries:?}");
    let folded = dec(&own["totals"]["by_kind"]["wholesale_charges"]["points"]);
    assert!(folded < Decimal::ZERO, "{own}");
    assert_eq!(api.verify_partner(P).await, 2);
}

api_suite!(
    a_month_of_every_kind_sums_to_the_ledger,
    the_csv_statement_adds_up_across_its_pages,
    the_partner_statement_adds_its_workspaces,
);
