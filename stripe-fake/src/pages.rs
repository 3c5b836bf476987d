//! The pages a person sees: the pay page of a Checkout Session (`/pay/{id}`: pay, or save a
//! card, with one of three test cards), Connect's consent page (`/oauth/authorize`), and the
//! receipts Stripe hands customers: an invoice's hosted page (`/i/{id}`) and PDF
//! (`/i/{id}/pdf`), a charge's receipt (`/receipts/payment/{id}`). Small HTML, no scripts.
//! Like Stripe's, the receipts' pages need no key: their URLs are what grants access.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use domain::{Currency, Money};

use crate::form::Param;
use crate::state::{PageAmount, PagePurpose, TestCard};
use crate::{Fake, text_response};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// For query strings we build: everything but unreserved characters escaped.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;background:#f6f9fc;color:#1a1f36}}\
         main{{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 2px 8px #0002}}\
         .test{{color:#a04100;font-size:.8rem;font-weight:600;letter-spacing:.05em}}\
         .amount{{font-size:2rem;font-weight:600;margin:.5rem 0 1.5rem}}\
         label{{display:block;font-weight:600;margin-bottom:.3rem}}\
         select{{width:100%;padding:.5rem;font-size:1rem;margin-bottom:1.5rem}}\
         button{{width:100%;padding:.8rem;font-size:1rem;border:0;border-radius:6px;background:#635bff;color:#fff;cursor:pointer}}\
         a{{color:#635bff}}</style></head>\n<body><main>\
         <p class=\"test\">TEST MODE &middot; FAKE STRIPE</p>\n{body}\n</main></body></html>\n",
        title = escape(title),
    );
    text_response(status, "text/html; charset=utf-8", html)
}

/// The test cards to choose from; Visa 4242 first, chosen.
fn card_select() -> String {
    let options: String = TestCard::ALL
        .iter()
        .map(|c| {
            let selected = if *c == TestCard::Visa { " selected" } else { "" };
            format!("<option value=\"{}\"{selected}>{}</option>", c.code(), escape(&c.label()))
        })
        .collect();
    format!("<label for=\"card\">Test card</label><select name=\"card\" id=\"card\">{options}</select>")
}

pub fn pay_page(fake: &Fake, id: &str) -> Response<Full<Bytes>> {
    let Some(s) = fake.state().session_for_page(id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<h1>No such checkout session</h1>");
    };
    if !s.open {
        let body = format!("<h1>This checkout session is {}</h1><p>{}</p>", s.status, escape(s.label()));
        return page(StatusCode::OK, "Checkout", &body);
    }
    let cancel = s
        .cancel_url
        .as_ref()
        .map(|u| format!("<p><a id=\"cancel\" href=\"{}\">Cancel and go back</a></p>", escape(u)))
        .unwrap_or_default();
    let (title, what, button) = match &s.purpose {
        PagePurpose::Pay { amount, .. } => (
            format!("Pay {amount}"),
            format!("<p class=\"amount\" id=\"amount\">{}</p>", escape(&amount.to_string())),
            "Pay now",
        ),
        PagePurpose::SaveCard => (
            "Save a card".to_owned(),
            "<p id=\"setup\">Nothing is charged now: the card is saved for later payments.</p>".to_owned(),
            "Save card",
        ),
    };
    let body = format!(
        "<h1 id=\"label\">{label}</h1>\n{what}\n\
         <form method=\"post\" action=\"/pay/{id}\">{select}<button type=\"submit\" id=\"pay\">{button}</button></form>\n{cancel}",
        label = escape(s.label()),
        id = escape(&s.id),
        select = card_select(),
    );
    page(StatusCode::OK, &title, &body)
}

/// "Pay now" or "Save card": the session is paid or its card saved (see `State::pay`) with the
/// test card chosen (the form's `card`; Visa 4242 without one), its events leave, and the
/// browser goes to the success URL (`{CHECKOUT_SESSION_ID}` filled in, as Stripe does).
pub async fn pay(fake: &Fake, id: &str, form: &[u8]) -> Response<Full<Bytes>> {
    let form = std::str::from_utf8(form).ok().and_then(|b| Param::parse(b).ok()).unwrap_or_else(Param::empty);
    let card = match form.str_at(&["card"]) {
        None => None,
        Some(code) => match TestCard::parse(code) {
            Some(c) => Some(c.card()),
            None => {
                let body = format!("<h1>No such test card</h1><p>{}</p>", escape(code));
                return page(StatusCode::BAD_REQUEST, "Checkout", &body);
            }
        },
    };
    let paid = fake.state().pay(id, card);
    crate::webhooks::dispatch(fake).await;
    if let Err(message) = paid {
        let status = if message.starts_with("no session") { StatusCode::NOT_FOUND } else { StatusCode::CONFLICT };
        let heading = match fake.state().session_for_page(id).map(|s| s.purpose) {
            Some(PagePurpose::SaveCard) => "Card not saved",
            _ => "Payment not possible",
        };
        return page(status, "Checkout", &format!("<h1>{heading}</h1><p>{}</p>", escape(&message)));
    }
    let Some(s) = fake.state().session_for_page(id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<h1>No such checkout session</h1>");
    };
    let (title, done) = match s.purpose {
        PagePurpose::Pay { .. } => ("Paid", "Payment complete"),
        PagePurpose::SaveCard => ("Card saved", "Card saved"),
    };
    match s.success_url {
        Some(url) => {
            let mut response =
                page(StatusCode::SEE_OTHER, title, &format!("<p>{title}. <a href=\"{0}\">{0}</a></p>", escape(&url)));
            if let Ok(location) = hyper::header::HeaderValue::from_str(&url) {
                response.headers_mut().insert(hyper::header::LOCATION, location);
            }
            response
        }
        None => page(StatusCode::OK, title, &format!("<h1 id=\"paid\">{done}</h1>")),
    }
}

/// Connect's consent page: `GET /oauth/authorize?response_type=code&client_id=..&scope=read_write
/// &redirect_uri=..&state=..`.
pub fn authorize_page(_fake: &Fake, query: &str) -> Response<Full<Bytes>> {
    let q = Param::parse(query).unwrap_or_else(|_| Param::empty());
    let field = |name: &str| {
        q.str_at(&[name])
            .map(|v| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape(v)))
            .unwrap_or_default()
    };
    let body = format!(
        "<h1>Connect your Stripe account</h1>\n<p>The platform asks to take payments on your account.</p>\n\
         <form method=\"post\" action=\"/oauth/authorize\">{}{}\
         <button type=\"submit\" id=\"connect\">Connect</button></form>",
        field("redirect_uri"),
        field("state"),
    );
    page(StatusCode::OK, "Connect with Stripe", &body)
}

/// "Connect": a new test-mode account and a code for it; back to `redirect_uri` with
/// `code`, `scope` and `state`, as Stripe redirects.
pub fn authorize(fake: &Fake, body: &[u8]) -> Response<Full<Bytes>> {
    let form = std::str::from_utf8(body).ok().and_then(|b| Param::parse(b).ok()).unwrap_or_else(Param::empty);
    let (code, account) = fake.state().issue_oauth_code(None, false);
    let Some(redirect) = form.str_at(&["redirect_uri"]).filter(|u| !u.is_empty()) else {
        let html = format!(
            "<h1>Connected</h1><p>Account <code id=\"account\">{}</code></p><p>Code <code id=\"code\">{}</code></p>",
            escape(&account),
            escape(&code)
        );
        return page(StatusCode::OK, "Connected", &html);
    };
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect}{separator}code={}&scope=read_write", url_encode(&code));
    if let Some(state) = form.str_at(&["state"]) {
        location.push_str(&format!("&state={}", url_encode(state)));
    }
    let mut response = page(StatusCode::SEE_OTHER, "Connected", &format!("<a href=\"{0}\">{0}</a>", escape(&location)));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(hyper::header::LOCATION, v);
    }
    response
}

/// `minor` units of `currency` as a page writes them (`10.00 USD`).
fn amount(minor: i64, currency: &str) -> String {
    let money = Currency::parse(currency).ok().and_then(|c| Money::from_minor(minor, c).ok());
    PageAmount { money, currency: currency.to_owned(), minor }.to_string()
}

/// The hosted invoice page (`hosted_invoice_url`): its number, lines, what was paid, a link to
/// its PDF.
pub fn invoice_page(fake: &Fake, id: &str) -> Response<Full<Bytes>> {
    let Some(i) = fake.state().invoice_for_page(id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<h1>No such invoice</h1>");
    };
    let lines: String = i
        .lines
        .iter()
        .map(|(name, quantity, minor)| {
            format!("<li>{} &times; {quantity}: {}</li>", escape(name), escape(&amount(*minor, &i.currency)))
        })
        .collect();
    let body = format!(
        "<h1 id=\"invoice\">Invoice {number}</h1>\n<p id=\"status\">{status}</p>\n<ul id=\"lines\">{lines}</ul>\n\
         <p class=\"amount\" id=\"amount\">{paid}</p>\n<p><a id=\"pdf\" href=\"/i/{id}/pdf\">Download invoice (PDF)</a></p>",
        number = escape(&i.number),
        status = match i.status {
            "paid" => "Paid",
            "void" => "Void",
            _ => "Open",
        },
        paid = escape(&amount(i.amount, &i.currency)),
        id = escape(id),
    );
    page(StatusCode::OK, &format!("Invoice {}", i.number), &body)
}

/// The invoice's PDF (`invoice_pdf`): one page saying what the hosted page says.
pub fn invoice_pdf(fake: &Fake, id: &str) -> Response<Full<Bytes>> {
    let Some(i) = fake.state().invoice_for_page(id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<h1>No such invoice</h1>");
    };
    let mut lines = vec![format!("Invoice {}", i.number), format!("Status: {}", i.status)];
    lines.extend(i.lines.iter().map(|(name, q, minor)| format!("{name} x {q}: {}", amount(*minor, &i.currency))));
    lines.push(format!("Amount paid: {}", amount(i.amount, &i.currency)));
    text_response(StatusCode::OK, "application/pdf", pdf(&lines))
}

/// A charge's receipt page (`receipt_url`).
pub fn receipt_page(fake: &Fake, id: &str) -> Response<Full<Bytes>> {
    let Some(c) = fake.state().charge_for_page(id) else {
        return page(StatusCode::NOT_FOUND, "Not found", "<h1>No such receipt</h1>");
    };
    let date = time::OffsetDateTime::from_unix_timestamp(c.created).map(|t| t.date().to_string()).unwrap_or_default();
    let refunded = if c.amount_refunded > 0 {
        format!("<p id=\"refunded\">Refunded {}</p>", escape(&amount(c.amount_refunded, &c.currency)))
    } else {
        String::new()
    };
    let body = format!(
        "<h1 id=\"receipt\">Receipt</h1>\n<p class=\"amount\" id=\"amount\">{paid}</p>\n<p id=\"date\">Paid {date}</p>\n{refunded}",
        paid = escape(&amount(c.amount, &c.currency)),
    );
    page(StatusCode::OK, "Receipt", &body)
}

/// A one-page PDF of `lines` in Helvetica: enough for a browser or a PDF reader to open.
fn pdf(lines: &[String]) -> String {
    // PDF strings escape `\`, `(` and `)`; Helvetica's standard encoding is taken as ASCII.
    let text = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                '\\' | '(' | ')' => format!("\\{c}"),
                c if c.is_ascii() && !c.is_ascii_control() => c.to_string(),
                _ => "?".to_owned(),
            })
            .collect()
    };
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 18 TL\n");
    for line in lines {
        content.push_str(&format!("({}) '\n", text(line)));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_encodes() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(url_encode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
    }

    #[test]
    fn a_pdf_s_cross_references_point_at_its_objects() {
        let doc = pdf(&["Invoice (1) \\ paid".to_owned(), "10.00 USD, caf\u{e9}".to_owned()]);
        assert!(doc.starts_with("%PDF-1.4\n") && doc.ends_with("%%EOF\n"));
        assert!(doc.contains("(Invoice \\(1\\) \\\\ paid) '") && doc.contains("(10.00 USD, caf?) '"), "{doc}");
        let xref: usize = doc.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(doc[xref..].starts_with("xref\n0 6\n"));
        for (i, entry) in doc[xref..].lines().skip(3).take(5).enumerate() {
            let offset: usize = entry[..10].parse().unwrap();
            assert!(doc[offset..].starts_with(&format!("{} 0 obj", i + 1)), "object {}", i + 1);
        }
    }
}
