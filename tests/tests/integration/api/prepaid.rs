//! A partner signed up by the platform is prepaid: its wallet pays down, and at or below zero
//! its workspaces' usage and add-on purchases are refused. The gate reads the wallet less the
//! wholesale charges not folded into it yet, so a partner at zero takes nothing more between
//! two folds; the sums that carry those charges stay equal to the accruals, fold after fold.

use domain::PartnerId;
use serde_json::json;
use store::{Table, keys, records};

use super::{Api, Q, X, platform, req};

/// The sum of partner `p`'s accrued-charge items, read as the gate reads them.
async fn accrued<T: Table>(api: &Api<T>, p: &str) -> String {
    let items = api.billing.store.get_many(&keys::accrued_all(&PartnerId::parse(p).unwrap())).await.unwrap();
    records::accrued_from(items.iter().map(Option::as_ref)).unwrap().to_string()
}

/// What the accruals waiting for the fold add up to.
async fn unfolded<T: Table>(api: &Api<T>, p: &str) -> String {
    let all = api.billing.unfolded(&PartnerId::parse(p).unwrap()).await.unwrap();
    let sum: rust_decimal::Decimal = all.iter().map(|a| a.amount.as_decimal()).sum();
    domain::Points::from_decimal(sum).unwrap().to_string()
}

async fn a_new_partner_is_prepaid<T: Table>(api: Api<T>) {
    let body = json!({ "id": "new-agency", "name": "New Agency" });
    let created = api.call(req("POST /platform/partners").by(platform()).json(body)).await.ok(201);
    assert_eq!(created["terms"]["billing_mode"], "prepaid", "{created}");
    let body = json!({ "id": "postpaid-agency", "name": "Billed Later", "terms": { "billing_mode": "postpaid" } });
    let chosen = api.call(req("POST /platform/partners").by(platform()).json(body)).await.ok(201);
    assert_eq!(chosen["terms"]["billing_mode"], "postpaid");
}

async fn a_prepaid_partner_at_zero_takes_no_more_before_the_fold<T: Table>(api: Api<T>) {
    api.tenants().await;
    api.set_billing(Q, "prepaid").await;
    api.credit_partner(Q, "0.10").await;
    api.fund(Q, X, "100").await;
    // A minute costs the partner 0.07: 0.03 is left, unfolded.
    api.spend(X, "1", "call-1").await.ok(200);
    assert_eq!(accrued(&api, Q).await, "0.07");
    let wallet = api.partner_wallet(Q).await;
    assert_eq!((&wallet["balance"], &wallet["unfolded"]), (&json!("0.10"), &json!("0.07")), "the partner sees both");
    api.access(X).await.ok(200);
    // A second minute leaves -0.04 owed: refused now, not after the next fold.
    api.spend(X, "1", "call-2").await.ok(200);
    api.access(X).await.err(403, "partner_wallet_depleted", None);
    let before = api.state().await;
    api.buy(Q, X, "extra_bot", 1).await.err(403, "partner_wallet_depleted", None);
    assert_eq!(api.state().await, before, "a refused purchase writes nothing");
    // The fold moves the charges into the wallet and off the sums: the same standing.
    api.fold(Q).await;
    assert_eq!(accrued(&api, Q).await, "0.00");
    let wallet = api.partner_wallet(Q).await;
    assert_eq!((&wallet["balance"], &wallet["unfolded"]), (&json!("-0.04"), &json!("0.00")));
    api.access(X).await.err(403, "partner_wallet_depleted", None);
    // Paid: open again. An add-on's cost counts before its fold too: an extra bot bought on 15
    // April costs the partner 2.50 (5.00 a month, half of April left), all the wallet holds.
    api.credit_partner(Q, "2.54").await;
    api.access(X).await.ok(200);
    api.buy(Q, X, "extra_bot", 1).await.ok(201);
    assert_eq!((accrued(&api, Q).await, unfolded(&api, Q).await), ("2.50".into(), "2.50".into()));
    api.access(X).await.err(403, "partner_wallet_depleted", None);
    assert_eq!(api.verify_partner(Q).await, 3);
}

async fn the_sums_follow_the_accruals_through_concurrent_folds<T: Table>(api: Api<T>) {
    api.tenants().await;
    for i in 0..6 {
        api.workspace(Q, &format!("ws-q-{i}"), "starter").await;
    }
    let spend = |i: usize| {
        let api = &api;
        async move { api.spend(&format!("ws-q-{}", i % 6), &format!("{}.5", i % 4), &format!("evt-{i}")).await.ok(200) }
    };
    let fold = || {
        let api = &api;
        async move { api.billing.fold_partner(&PartnerId::parse(Q).unwrap()).await.unwrap() }
    };
    for round in 0..3 {
        let spends = billing::join_all((0..12).map(|i| spend(round * 12 + i)));
        let (_, _) = tokio::join!(spends, fold());
        assert_eq!(accrued(&api, Q).await, unfolded(&api, Q).await, "round {round}");
    }
    fold().await;
    assert_eq!((accrued(&api, Q).await, unfolded(&api, Q).await), ("0.00".into(), "0.00".into()));
    // 36 events of 0.5, 1.5, 2.5 and 3.5 minutes (9 each): 72 minutes at 0.07.
    assert_eq!(api.partner_wallet(Q).await["balance"], "-5.04");
    // An accrual from before the sums existed (not `counted`) is folded without taking anything
    // off them.
    let old = records::Accrual {
        partner: PartnerId::parse(Q).unwrap(),
        workspace: domain::WorkspaceId::parse(X).unwrap(),
        source: "usage:voice_minutes".into(),
        reference: format!("usage#{X}#from-before"),
        amount: domain::Points::parse("0.07").unwrap(),
        quantity: Some(domain::UsageQuantity::parse("1").unwrap()),
        created_at: super::T0,
        counted: false,
    };
    let put = store::Write::Put { item: records::accrual_item(&old), condition: store::Condition::Always };
    api.billing.store.table().transact(vec![put]).await.unwrap();
    fold().await;
    assert_eq!((accrued(&api, Q).await, unfolded(&api, Q).await), ("0.00".into(), "0.00".into()));
    assert_eq!(api.partner_wallet(Q).await["balance"], "-5.11");
}

api_suite!(
    a_new_partner_is_prepaid,
    a_prepaid_partner_at_zero_takes_no_more_before_the_fold,
    the_sums_follow_the_accruals_through_concurrent_folds,
);
