//! `POST /partner/workspaces/{id}/points`: a partner adds or deducts points, with a reason.

use serde_json::{Value, json};
use store::Table;

use super::{Api, P, W, admin_sub, partner_admin, req};

fn adjust(body: Value) -> super::Req {
    req("POST /partner/workspaces/{id}/points").param("id", W).by(partner_admin(P)).json(body)
}

async fn adjustments_credit_and_debit<T: Table>(api: Api<T>) {
    api.tenants().await;
    let bonus = api.call(adjust(json!({ "amount": "100", "reason": "  welcome bonus " }))).await.ok(201);
    assert_eq!(
        bonus,
        json!({
            "entry": {
                "id": "ws:ws-acme-1:1",
                "seq": 1,
                "amount": "100.00",
                "balance_after": "100.00",
                "kind": "adjustment",
                "detail": { "reason": "welcome bonus" },
                "actor": { "type": "user", "id": admin_sub(P) },
                "created_at": "2026-04-15T10:00:00Z",
            },
            "balance": "100.00",
        })
    );
    let deduction = api.call(adjust(json!({ "amount": "-25.50", "reason": "refund of a duplicate top-up" }))).await;
    let deduction = deduction.ok(201);
    assert_eq!((&deduction["balance"], &deduction["entry"]["amount"]), (&json!("74.50"), &json!("-25.50")));
    // To the cent, down to exactly zero.
    let to_zero = api.call(adjust(json!({ "amount": "-74.5", "reason": "closing" }))).await.ok(201);
    assert_eq!(to_zero["balance"], "0.00");
    assert_eq!(api.balance(P, W).await, "0.00");
    let ledger = api.ledger(P, W).await;
    let amounts: Vec<_> = ledger.iter().map(|e| e["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["-74.50", "-25.50", "100.00"]);
    assert_eq!(ledger[1], deduction["entry"], "the ledger shows the entry the response named");
    assert_eq!(api.verify(W).await, 3);
}

async fn a_deduction_beyond_the_balance_needs_allow_negative<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "10").await;
    let before = api.state().await;
    let r = api.call(adjust(json!({ "amount": "-10.01", "reason": "chargeback" })).key("deduct")).await;
    r.err(402, "insufficient_points", None);
    let r = api.call(adjust(json!({ "amount": "-10.01", "reason": "chargeback", "allow_negative": false }))).await;
    r.err(402, "insufficient_points", None);
    assert_eq!(api.state().await, before, "a refused deduction writes nothing");
    assert!(!api.key_recorded("partner:p-acme", "deduct").await);

    let allowed = json!({ "amount": "-10.01", "reason": "chargeback", "allow_negative": true });
    let r = api.call(adjust(allowed)).await.ok(201);
    assert_eq!((&r["balance"], &r["entry"]["amount"]), (&json!("-0.01"), &json!("-10.01")));
    assert_eq!(api.balance(P, W).await, "-0.01");
    // A further deduction without the flag is refused while the balance is negative; a credit is fine.
    api.call(adjust(json!({ "amount": "-1", "reason": "more" }))).await.err(402, "insufficient_points", None);
    let r = api.call(adjust(json!({ "amount": "0.01", "reason": "square" }))).await.ok(201);
    assert_eq!(r["balance"], "0.00");
    assert_eq!(api.verify(W).await, 3);
}

async fn adjustment_errors_write_nothing<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.fund(P, W, "10").await;
    let before = api.state().await;
    let long_reason = "x".repeat(501);
    let cases = [
        (json!({ "amount": "1.005", "reason": "r" }), "amount"),
        (json!({ "amount": "-1.005", "reason": "r" }), "amount"),
        (json!({ "amount": 5, "reason": "r" }), "amount"),
        (json!({ "amount": "5 points", "reason": "r" }), "amount"),
        (json!({ "amount": "0", "reason": "r" }), "amount"),
        (json!({ "amount": "0.00", "reason": "r" }), "amount"),
        (json!({ "amount": "1000000000000.01", "reason": "r" }), "amount"),
        (json!({ "amount": "5", "reason": "" }), "reason"),
        (json!({ "amount": "5", "reason": "   " }), "reason"),
        (json!({ "amount": "5", "reason": long_reason }), "reason"),
        (json!({ "amount": "5", "reason": 5 }), "reason"),
        (json!({ "amount": "5", "reason": "r", "allow_negative": "yes" }), "allow_negative"),
        (json!({ "amount": "5", "reason": "r", "currency": "usd" }), "currency"),
    ];
    for (body, param) in cases {
        let r = api.call(adjust(body.clone()).key("k-bad")).await;
        assert_eq!((r.status, r.body["error"]["param"].as_str()), (400, Some(param)), "{body}: {}", r.body);
    }
    // A reason is required: leaving it out is refused like an empty one.
    let r = api.call(adjust(json!({ "amount": "5" })).key("k-bad")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request");
    api.call(adjust(json!({ "amount": "5", "reason": "r" })).no_key()).await.invalid("Idempotency-Key");
    let bad_json = req("POST /partner/workspaces/{id}/points").param("id", W).by(partner_admin(P));
    api.call(bad_json.raw("amount=5&reason=r").key("k-bad")).await.invalid("body");
    assert_eq!(api.state().await, before);
    assert!(!api.key_recorded("partner:p-acme", "k-bad").await);
    assert_eq!(api.balance(P, W).await, "10.00");
}

api_suite!(
    adjustments_credit_and_debit,
    a_deduction_beyond_the_balance_needs_allow_negative,
    adjustment_errors_write_nothing,
);
