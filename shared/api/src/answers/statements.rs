//! Monthly statements as JSON and as CSV.
//!
//! CSV pages like JSON: each page is a whole CSV document (its header row first); the first
//! page opens with an `opening_balance` row and the last closes with a `closing_balance` row,
//! so the `points` column of all pages, added to the opening balance, gives the closing one.
//! The next page is named by a `Link: <?...&cursor=...>; rel="next"` header. Text a person or a
//! partner wrote (a reason, say) that starts like a spreadsheet formula is written with a
//! leading `'`, so that opening the file in a spreadsheet runs nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use billing::{PartnerStatement, Statement, WorkspaceMonth};
use domain::{Actor, Balance, KindTotal, LedgerEntry, MoneyTotal, MonthTotals, StatementLine, WalletId};

use super::{EntryBody, instant};

/// How a statement is asked for: `?format=json` (the default) or `?format=csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementFormat {
    Json,
    Csv,
}

impl StatementFormat {
    pub fn parse(text: Option<&str>) -> Option<Self> {
        match text {
            None | Some("json") => Some(Self::Json),
            Some("csv") => Some(Self::Csv),
            Some(_) => None,
        }
    }
}

/// Points as the API writes them: at least 2 places, no trailing zeros past them.
fn points(value: Decimal) -> String {
    let mut v = value.normalize();
    if v.scale() < 2 {
        v.rescale(2);
    }
    v.to_string()
}

#[derive(Serialize)]
struct KindBody {
    count: u64,
    points: String,
}

#[derive(Serialize)]
struct MoneyBody<'a> {
    currency: &'a str,
    count: u64,
    amount: String,
}

/// Major units with the currency's places (`10.00` dollars, `1000` yen, `1.500` dinars).
fn major(amount: Decimal, currency: &str) -> String {
    let mut v = amount.normalize();
    if let Ok(c) = domain::Currency::parse(currency)
        && v.scale() < c.exponent()
    {
        v.rescale(c.exponent());
    }
    v.to_string()
}

fn money_list(top_ups: &BTreeMap<String, MoneyTotal>) -> Vec<MoneyBody<'_>> {
    top_ups
        .iter()
        .map(|(currency, t)| MoneyBody { currency, count: t.count, amount: major(t.amount, currency) })
        .collect()
}

#[derive(Serialize)]
struct TotalsBody<'a> {
    entries: u64,
    credits: String,
    debits: String,
    by_kind: BTreeMap<&'a str, KindBody>,
    top_ups: Vec<MoneyBody<'a>>,
}

impl<'a> TotalsBody<'a> {
    fn of(totals: Option<&'a MonthTotals>) -> Self {
        let none = (0, Decimal::ZERO, Decimal::ZERO);
        let (entries, credits, debits) = totals.map_or(none, |t| (t.entries, t.credits, t.debits));
        let by_kind = totals
            .map(|t| {
                t.by_kind
                    .iter()
                    .map(|(k, KindTotal { count, points: p })| {
                        (k.as_str(), KindBody { count: *count, points: points(*p) })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            entries,
            credits: points(credits),
            debits: points(debits),
            by_kind,
            top_ups: totals.map(|t| money_list(&t.top_ups)).unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct LineMoney<'a> {
    amount: &'a str,
    currency: &'a str,
}

#[derive(Serialize)]
struct LineBody<'a> {
    entry: EntryBody<'a>,
    money: Option<LineMoney<'a>>,
    description: &'a str,
    stripe_ids: &'a [String],
}

fn wallet_field(wallet: &WalletId) -> (&'static str, &str) {
    match wallet {
        WalletId::Workspace(w) => ("workspace_id", w.as_str()),
        WalletId::Partner(p) => ("partner_id", p.as_str()),
    }
}

#[derive(Serialize)]
struct StatementBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partner_id: Option<&'a str>,
    month: String,
    #[serde(serialize_with = "instant")]
    from: OffsetDateTime,
    #[serde(serialize_with = "instant")]
    to: OffsetDateTime,
    closed: bool,
    opening_balance: Balance,
    closing_balance: Balance,
    totals: TotalsBody<'a>,
    entries: Vec<LineBody<'a>>,
    next_cursor: Option<&'a str>,
}

/// A wallet's statement, `format` as asked. `first_page`: asked without a cursor (the CSV's
/// opening row is on it); `limit` is repeated in the CSV's link to the next page.
pub fn statement(s: &Statement, format: StatementFormat, first_page: bool, limit: usize) -> Response<Body> {
    let lines: Vec<StatementLine> = s.entries.iter().map(StatementLine::of).collect();
    match format {
        StatementFormat::Json => {
            let (field, id) = wallet_field(&s.wallet);
            let body = StatementBody {
                workspace_id: (field == "workspace_id").then_some(id),
                partner_id: (field == "partner_id").then_some(id),
                month: s.month.to_string(),
                from: s.month.starts_at(),
                to: s.month.ends_at(),
                closed: s.closed,
                opening_balance: s.opening_balance,
                closing_balance: s.closing_balance,
                totals: TotalsBody::of(s.totals.as_ref()),
                entries: s
                    .entries
                    .iter()
                    .zip(&lines)
                    .map(|(e, l)| LineBody {
                        entry: EntryBody::new(e),
                        money: l.money.as_ref().map(|(amount, currency)| LineMoney { amount, currency }),
                        description: &l.description,
                        stripe_ids: &l.stripe_ids,
                    })
                    .collect(),
                next_cursor: s.next_cursor.as_deref(),
            };
            crate::ok(body)
        }
        StatementFormat::Csv => csv(statement_csv(s, &lines, first_page), s.next_cursor.as_deref(), limit),
    }
}

const STATEMENT_COLUMNS: &str =
    "date,seq,kind,points,balance_after,money,currency,description,actor,stripe_ids,idempotency_key\r\n";

fn statement_csv(s: &Statement, lines: &[StatementLine], first_page: bool) -> String {
    let mut out = String::from(STATEMENT_COLUMNS);
    if first_page {
        row(&mut out, &[&instant_text(s.month.starts_at()), "", "opening_balance", "", &s.opening_balance.to_string()]);
    }
    for (e, l) in s.entries.iter().zip(lines) {
        entry_row(&mut out, e, l);
    }
    if s.next_cursor.is_none() {
        let end = s.entries.last().map_or_else(|| instant_text(s.month.ends_at()), |e| instant_text(e.created_at));
        row(&mut out, &[&end, "", "closing_balance", "", &s.closing_balance.to_string()]);
    }
    out
}

fn entry_row(out: &mut String, e: &LedgerEntry, l: &StatementLine) {
    let (money, currency) = l.money.as_ref().map_or(("", ""), |(a, c)| (a.as_str(), c.as_str()));
    row(
        out,
        &[
            &instant_text(e.created_at),
            &e.id.seq.to_string(),
            e.kind.name(),
            &e.amount.to_string(),
            &e.balance_after.to_string(),
            money,
            currency,
            &text_cell(&l.description),
            &text_cell(&actor_text(&e.actor)),
            &l.stripe_ids.join(" "),
            &text_cell(&e.idempotency_key),
        ],
    );
}

fn actor_text(a: &Actor) -> String {
    match a {
        Actor::User(sub) => format!("user:{sub}"),
        Actor::System(name) => format!("system:{name}"),
        Actor::Stripe(event) => format!("stripe:{event}"),
    }
}

fn instant_text(at: OffsetDateTime) -> String {
    store::records::rfc3339(at)
}

/// Text someone wrote, made inert for a spreadsheet: one that starts like a formula gets a `'`.
fn text_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// One CSV row (RFC 4180): a field with a comma, a quote or a line break is quoted, its quotes
/// doubled.
fn row(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            let _ = write!(out, "\"{}\"", f.replace('"', "\"\""));
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
}

fn csv(text: String, next_cursor: Option<&str>, limit: usize) -> Response<Body> {
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, "attachment");
    if let Some(cursor) = next_cursor {
        // Cursors are base64url: nothing in them needs escaping in a URL.
        response = response.header(header::LINK, format!("<?format=csv&limit={limit}&cursor={cursor}>; rel=\"next\""));
    }
    response.body(Body::Text(text)).expect("a status and headers we wrote make a valid response")
}

#[derive(Serialize)]
struct WalletMonthBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
    opening_balance: Balance,
    closing_balance: Balance,
    totals: TotalsBody<'a>,
}

#[derive(Serialize)]
struct PartnerStatementBody<'a> {
    partner_id: &'a str,
    month: String,
    #[serde(serialize_with = "instant")]
    from: OffsetDateTime,
    #[serde(serialize_with = "instant")]
    to: OffsetDateTime,
    closed: bool,
    wallet: WalletMonthBody<'a>,
    top_ups: Vec<MoneyBody<'a>>,
    workspaces: Vec<WalletMonthBody<'a>>,
    next_cursor: Option<&'a str>,
}

fn workspace_month(w: &WorkspaceMonth) -> WalletMonthBody<'_> {
    WalletMonthBody {
        workspace_id: Some(w.workspace.as_str()),
        opening_balance: w.totals.opening_balance,
        closing_balance: w.totals.closing_balance,
        totals: TotalsBody::of(Some(&w.totals)),
    }
}

/// A partner's statement; `next_cursor` pages its workspaces.
pub fn partner_statement(
    s: &PartnerStatement,
    next_cursor: Option<&str>,
    first_page: bool,
    format: StatementFormat,
    limit: usize,
) -> Response<Body> {
    match format {
        StatementFormat::Json => crate::ok(PartnerStatementBody {
            partner_id: s.partner.as_str(),
            month: s.month.to_string(),
            from: s.month.starts_at(),
            to: s.month.ends_at(),
            closed: s.closed,
            wallet: WalletMonthBody {
                workspace_id: None,
                opening_balance: s.wallet.opening_balance,
                closing_balance: s.wallet.closing_balance,
                totals: TotalsBody::of(s.wallet.totals.as_ref()),
            },
            top_ups: money_list(&s.top_ups),
            workspaces: s.workspaces.iter().map(workspace_month).collect(),
            next_cursor,
        }),
        StatementFormat::Csv => {
            let mut out = String::from("wallet,opening_balance,closing_balance,entries,credits,debits");
            for kind in domain::EntryKind::NAMES {
                let _ = write!(out, ",{kind}");
            }
            out.push_str(",top_ups\r\n");
            if first_page {
                let id = format!("partner:{}", s.partner);
                month_row(&mut out, &id, s.wallet.opening_balance, s.wallet.closing_balance, s.wallet.totals.as_ref());
            }
            for w in &s.workspaces {
                let id = format!("workspace:{}", w.workspace);
                month_row(&mut out, &id, w.totals.opening_balance, w.totals.closing_balance, Some(&w.totals));
            }
            csv(out, next_cursor, limit)
        }
    }
}

fn month_row(out: &mut String, wallet: &str, opening: Balance, closing: Balance, totals: Option<&MonthTotals>) {
    let t = TotalsBody::of(totals);
    let mut fields = vec![
        wallet.to_owned(),
        opening.to_string(),
        closing.to_string(),
        t.entries.to_string(),
        t.credits.clone(),
        t.debits.clone(),
    ];
    for kind in domain::EntryKind::NAMES {
        fields.push(t.by_kind.get(kind).map_or_else(|| points(Decimal::ZERO), |k| k.points.clone()));
    }
    fields.push(t.top_ups.iter().map(|m| format!("{} {}", m.amount, m.currency)).collect::<Vec<_>>().join("; "));
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    row(out, &refs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_inert() {
        let mut out = String::new();
        row(&mut out, &["a", "b,c", "say \"hi\"", "two\nlines"]);
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text_cell("@sum"), "'@sum");
        assert_eq!(text_cell("goodwill"), "goodwill");
    }

    #[test]
    fn money_prints_with_its_currency_places() {
        assert_eq!(major(Decimal::new(10, 0), "USD"), "10.00");
        assert_eq!(major(Decimal::new(1000, 0), "JPY"), "1000");
        assert_eq!(major(Decimal::new(15, 1), "KWD"), "1.500");
    }

    #[test]
    fn points_print_like_the_api() {
        assert_eq!(points(Decimal::new(5, 0)), "5.00");
        assert_eq!(points(Decimal::new(-30500, 3)), "-30.50");
        assert_eq!(points(Decimal::new(12345, 4)), "1.2345");
    }
}
