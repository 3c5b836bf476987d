//! The stored shape of every record, pinned: a table in production holds items written by every
//! earlier version, so a record must go on writing the same attributes and reading them back.
//! `stored_format.json` holds each sample as it is stored (an `N` attribute as `{"N": "12.50"}`,
//! `NULL` as `null`); a change of the mapping that changes a byte of it fails here, and needs a
//! way for the items already stored (see `upgrade.rs`) before the file may change.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::macros::{date, datetime};

use domain::stripe_ids::{
    AccountId, CheckoutId, CustomerId, PaymentIntentId, PaymentMethodId, PriceId, ReceiptId, SubscriptionId,
    SubscriptionItemId,
};
use domain::{
    AddonCode, AddonId, AddonStatus, AnchorDay, AutoTopup, CardDetails, CheckoutStatus, CreditRateTerms, LimitKind,
    Money, PartnerAddon, PartnerId, PartnerSettings, PartnerTopupOption, Plan, PlanId, Points, Rebilling, TopupAttempt,
    TopupFailure, TopupOption, TopupOptionId, TopupOptionList, Usage, UsageQuantity, WalletId, WalletMode,
    WholesaleFloors, Workspace, WorkspaceAddon, WorkspaceId, WorkspaceStatus,
};
use domain::{BilledAddon, PlanPayment, PlanSubscription};
use domain::{MeterCode, UnitRate};
use store::item::{Attr, Item};
use store::plan_billing::{
    StripePrice, UnpaidPlan, stripe_price, stripe_price_from, stripe_price_item, unpaid_plan_from, unpaid_plan_item,
};
use store::records::*;

/// An item as JSON: `S` a string, `N` `{"N": "..."}`, `NULL` null, `BOOL`, `L` and `M`.
fn as_json(attr: &Attr) -> Value {
    match attr {
        Attr::S(s) => json!(s),
        Attr::N(n) => json!({ "N": n.to_string() }),
        Attr::Bool(b) => json!(b),
        Attr::Null => Value::Null,
        Attr::L(l) => Value::Array(l.iter().map(as_json).collect()),
        Attr::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), as_json(v))).collect()),
    }
}

fn item_json(item: &Item) -> Value {
    as_json(&Attr::M(item.0.clone()))
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, domain::Currency::USD).unwrap()
}

fn points(s: &str) -> Points {
    Points::parse(s).unwrap()
}

/// One sample of each record (two where a record has two shapes), each checked to read back as
/// itself.
fn samples() -> Vec<(&'static str, Item)> {
    let p = PartnerId::parse("p-1").unwrap();
    let w = WorkspaceId::parse("ws-1").unwrap();
    let at = datetime!(2026-05-15 10:30 UTC);
    let account = AccountId::parse("acct_1A").unwrap();
    let mut out: Vec<(&'static str, Item)> = Vec::new();
    let mut check = |name: &'static str, item: Item, reads_back: bool| {
        assert!(reads_back, "{name} does not read back as itself");
        out.push((name, item));
    };

    let settings = PartnerSettings {
        credit_billing: true,
        success_url: Some("https://x.example/ok".into()),
        cancel_url: None,
        grace_days: 3,
        default_rebilling: Rebilling {
            enabled: true,
            rates: BTreeMap::from([(MeterCode::parse("voice_minutes").unwrap(), UnitRate::parse("0.15").unwrap())]),
        },
        unit_name: "credits".into(),
        brand: domain::Brand {
            name: Some("Acme Bots".into()),
            logo_url: None,
            primary_color: Some("#1d4ed8".into()),
            accent_color: None,
            embed_origins: vec!["https://app.acme.example".into()],
        },
    };
    let profile = PartnerProfile {
        id: p.clone(),
        name: "Acme Agency".into(),
        settings,
        status: PartnerStatus::Suspended { reason: "Unpaid".into(), at },
        floors: Some(WholesaleFloors::parse_setting("usd=0.12,eur=0.1050").unwrap()),
        version: 7,
        created_at: at,
    };
    let item = partner_item(&profile);
    check("partner", item.clone(), partner_profile_from(&item).unwrap() == profile);
    let active = PartnerProfile { status: PartnerStatus::Active, floors: None, ..profile.clone() };
    let item = partner_item(&active);
    check("partner_active", item.clone(), partner_profile_from(&item).unwrap() == active);
    let item = partner_ref_item(&profile);
    let r = partner_ref_from(&item).unwrap();
    check("partner_ref", item, (r.id, r.name.as_str(), r.status.as_str()) == (p.clone(), "Acme Agency", "suspended"));

    let addon = PartnerAddon {
        code: AddonCode::ExtraBot,
        label: "Extra bot".into(),
        points: points("12.50"),
        price: None,
        enabled: true,
    };
    let item = partner_addon_item(&p, &addon);
    check("partner_addon", item.clone(), partner_addon_from(&item).unwrap() == addon);
    let in_money = PartnerAddon { price: Some(usd(1000)), ..addon.clone() };
    let item = partner_addon_item(&p, &in_money);
    check("partner_addon_in_money", item.clone(), partner_addon_from(&item).unwrap() == in_money);

    let plan = Plan::default_for(PlanId::Growth);
    let item = plan_item(&p, &plan);
    check("plan", item.clone(), plan_from(&item).unwrap() == plan);

    let edit = PlanEdit {
        partner: p.clone(),
        plan: PlanId::Growth,
        edit_id: "edit_00000000000000ff".into(),
        after: Some(w.clone()),
        edited_at: at,
    };
    let item = plan_edit_item(&edit);
    check("plan_edit", item.clone(), plan_edit_from(&item).unwrap() == edit);

    let request = RefillRequest {
        wallet: WalletId::Workspace(w.clone()),
        renewal_shortfall: Some(points("12.50")),
        request_id: "refill_00000000000000ff".into(),
        requested_at: at,
    };
    let item = refill_request_item(&request);
    check("refill_request", item.clone(), refill_request_from(&item).unwrap() == request);
    let request = RefillRequest { wallet: WalletId::Partner(p.clone()), renewal_shortfall: None, ..request };
    let item = refill_request_item(&request);
    check("refill_request_partner", item.clone(), refill_request_from(&item).unwrap() == request);

    let topups = TopupOptionList {
        version: 3,
        options: vec![
            PartnerTopupOption {
                id: TopupOptionId::parse("to_0000000000000001").unwrap(),
                option: TopupOption::parse("Dinar pack", "kwd", 5120, "20.5").unwrap(),
            },
            PartnerTopupOption {
                id: TopupOptionId::parse("to_0000000000000002").unwrap(),
                option: TopupOption::parse("Yen pack", "jpy", 1000, "12").unwrap(),
            },
        ],
    };
    let item = topup_options_item(&p, &topups, at);
    check("topup_options", item.clone(), topup_options_from(&item).unwrap() == topups);

    let rate = CreditRateTerms::parse("usd", "0.0333", Some("100"), None).unwrap();
    let item = credit_rate_item(&p, &rate, at);
    check("credit_rate", item.clone(), credit_rate_from(&item).unwrap() == rate);

    let held = WorkspaceAddon {
        id: AddonId::parse("ad_0000000000000001").unwrap(),
        code: AddonCode::Extra10kBotUsers,
        quantity: 2,
        unit_points: points("60"),
        status: AddonStatus::Cancelling,
        period_end: date!(2026 - 05 - 31),
        created_at: at,
        billed: None,
    };
    let ws = Workspace {
        id: w.clone(),
        partner: p.clone(),
        name: "Acme".into(),
        plan: PlanId::Starter,
        anchor: AnchorDay::new(1).unwrap(),
        usage: Usage { bots: 2, members: 1, bot_users: 5 },
        status: WorkspaceStatus::Paused { exceeded: vec![LimitKind::Bots], unpaid: false },
        addons: vec![held.clone()],
        renews_on: date!(2026 - 06 - 01),
        rebilling: Rebilling::default(),
        subscription: None,
        version: 3,
        created_at: at,
    };
    let item = workspace_item(&ws);
    check("workspace", item.clone(), workspace_from(&item).unwrap() == ws);
    // A workspace whose plan is billed in money, unpaid past its grace days, with an add-on on
    // the plan's bill.
    let billed = WorkspaceAddon {
        code: AddonCode::ExtraMember,
        quantity: 1,
        unit_points: points("0"),
        status: AddonStatus::Active,
        billed: Some(BilledAddon { item: SubscriptionItemId::parse("si_member1").unwrap(), unit_price: usd(1000) }),
        ..held.clone()
    };
    let subscribed = Workspace {
        status: WorkspaceStatus::Paused { exceeded: vec![], unpaid: true },
        addons: vec![billed],
        subscription: Some(PlanSubscription {
            id: SubscriptionId::parse("sub_1").unwrap(),
            plan_item: SubscriptionItemId::parse("si_plan1").unwrap(),
            plan_price: usd(4900),
            anchor: AnchorDay::new(1).unwrap(),
            cycle_start: date!(2026 - 05 - 01),
            cycle_end: date!(2026 - 05 - 31),
            payment: PlanPayment::Unpaid { since: date!(2026 - 06 - 01) },
            cancel_at_cycle_end: false,
            next_plan: Some(PlanId::Starter),
        }),
        ..ws.clone()
    };
    let item = workspace_item(&subscribed);
    check("workspace_subscribed", item.clone(), workspace_from(&item).unwrap() == subscribed);
    let item = workspace_ref_item(&p, &ws);
    let r = workspace_ref_from(&item).unwrap();
    check("workspace_ref", item, (r.id, r.name.as_str(), r.created_at) == (w.clone(), "Acme", at));
    let ended = WorkspaceAddon { status: AddonStatus::Removed, ..held };
    let item = workspace_addon_item(&w, &ended);
    check("workspace_addon", item.clone(), workspace_addon_from(&item).unwrap() == ended);

    let connection =
        StripeConnection { account: account.clone(), livemode: false, connected_at: at, deauthorized_at: Some(at) };
    let item = stripe_connection_item(&p, &connection);
    check("stripe_connection", item.clone(), stripe_connection_from(&item).unwrap() == connection);
    let item = stripe_account_item(&account, &p);
    check("stripe_account", item.clone(), stripe_account_partner(&item).unwrap() == p);

    let customer = StripeCustomer {
        account: account.clone(),
        customer: CustomerId::parse("cus_1").unwrap(),
        payment_method: Some(PaymentMethodId::parse("pm_1").unwrap()),
        payment_method_created: Some(1_778_840_000),
        card: None,
        expiry_noticed: false,
        version: 2,
    };
    let item = stripe_customer_item(&w, &customer);
    check("stripe_customer", item.clone(), stripe_customer_from(&item).unwrap() == customer);
    let with_card = StripeCustomer {
        card: Some(CardDetails::new("visa", "4242", 12, 2029).unwrap()),
        expiry_noticed: true,
        ..customer.clone()
    };
    let item = stripe_customer_item(&w, &with_card);
    check("stripe_customer_with_card", item.clone(), stripe_customer_from(&item).unwrap() == with_card);
    let item = empty_customer_slot_item(&w);
    check(
        "customer_slot",
        item.clone(),
        customer_slot_from(&item).unwrap() == CustomerSlot { customer: None, version: 1 },
    );

    let checkout = CheckoutRecord {
        id: CheckoutId::parse("cs_test_1").unwrap(),
        wallet: WalletId::Workspace(w.clone()),
        partner: p.clone(),
        account: Some(account.clone()),
        points: points("500"),
        amount: usd(1000),
        topup_option_id: Some(TopupOptionId::parse("to_0000000000000001").unwrap()),
        status: CheckoutStatus::Pending,
        payment_intent: None,
        created_at: at,
        updated_at: at,
    };
    let item = checkout_item(&checkout);
    check("checkout", item.clone(), checkout_from(&item).unwrap() == checkout);
    let wallet_checkout = CheckoutRecord {
        wallet: WalletId::Partner(p.clone()),
        account: None,
        topup_option_id: None,
        status: CheckoutStatus::Credited,
        payment_intent: Some(PaymentIntentId::parse("pi_1").unwrap()),
        ..checkout
    };
    let item = checkout_item(&wallet_checkout);
    check("checkout_partner", item.clone(), checkout_from(&item).unwrap() == wallet_checkout);

    let payment = PaymentRecord {
        payment_intent: PaymentIntentId::parse("pi_1").unwrap(),
        checkout: Some(CheckoutId::parse("cs_test_1").unwrap()),
        wallet: WalletId::Workspace(w.clone()),
        partner: p.clone(),
        account: Some(account.clone()),
        points: points("500"),
        amount: usd(1000),
        refunded_minor: 200,
        disputed_minor: 300,
        disputes: vec!["dp_1".into()],
        disputes_won: Vec::new(),
        won_minor: 0,
        clawed_back: points("250"),
        version: 3,
    };
    let item = payment_item(&payment);
    check("payment", item.clone(), payment_from(&item).unwrap() == payment);
    let won = PaymentRecord {
        disputes: vec!["dp_1".into(), "dp_2".into()],
        disputed_minor: 500,
        disputes_won: vec!["dp_2".into()],
        won_minor: 200,
        version: 4,
        ..payment
    };
    let item = payment_item(&won);
    check("payment_dispute_won", item.clone(), payment_from(&item).unwrap() == won);
    let receipt = ReceiptRecord {
        id: ReceiptId::parse("in_1").unwrap(),
        wallet: WalletId::Workspace(w.clone()),
        partner: p.clone(),
        account: Some(account.clone()),
        payment_intent: PaymentIntentId::parse("pi_1").unwrap(),
    };
    let item = receipt_item(&receipt);
    check("receipt", item.clone(), receipt_from(&item).unwrap() == receipt);
    let wallet_receipt = ReceiptRecord {
        id: ReceiptId::parse("ch_1").unwrap(),
        wallet: WalletId::Partner(p.clone()),
        account: None,
        ..receipt
    };
    let item = receipt_item(&wallet_receipt);
    check("receipt_partner", item.clone(), receipt_from(&item).unwrap() == wallet_receipt);

    let auto = AutoTopup {
        enabled: true,
        option: Some(TopupOptionId::parse("to_0000000000000001").unwrap()),
        points: None,
        consecutive_failures: 1,
        last_failure: Some(TopupFailure { code: "card_declined".into(), at }),
        next_attempt_after: Some(at),
        disabled_reason: None,
        attempts: 4,
        in_flight: Some(TopupAttempt {
            number: 4,
            option: TopupOptionId::parse("to_0000000000000001").unwrap(),
            quantity: 2,
            points: points("1000"),
            amount: usd(2000),
            started_at: at,
            payment_intent: Some("pi_2".into()),
            description: Some("Auto top-up: Dinar pack (20.5 credits)".into()),
        }),
        threshold: Some(points("50")),
        monthly_cap: Some(usd(5000)),
        spent: Some(("2026-05".into(), usd(2000))),
        version: 9,
    };
    let item = auto_topup_item(&w, &auto);
    check("auto_topup", item.clone(), auto_topup_from(&item).unwrap() == auto);
    let by_points = AutoTopup {
        points: Some(points("120")),
        in_flight: auto.in_flight.clone().map(|a| TopupAttempt {
            option: domain::rate_option(),
            quantity: 1,
            points: points("120"),
            amount: usd(144),
            description: Some("Auto top-up: 120 credits".into()),
            ..a
        }),
        ..auto.turned_on_points(points("120"))
    };
    let item = auto_topup_item(&w, &by_points);
    check("auto_topup_points", item.clone(), auto_topup_from(&item).unwrap() == by_points);
    let off = AutoTopup::default();
    let item = auto_topup_item(&w, &off);
    check("auto_topup_off", item.clone(), auto_topup_from(&item).unwrap() == off);
    let item = partner_refill_item(&p, &auto, Some(&usd(10000)));
    check("partner_refill", item.clone(), partner_refill_from(&item).unwrap() == (auto.clone(), Some(usd(10000))));

    let platform_customer = PlatformCustomer {
        customer: CustomerId::parse("cus_2").unwrap(),
        payment_method: None,
        payment_method_created: None,
        card: None,
        expiry_noticed: false,
        version: 1,
    };
    let item = platform_customer_item(&p, &platform_customer);
    check("platform_customer", item.clone(), platform_customer_from(&item).unwrap() == platform_customer);
    let with_card = PlatformCustomer {
        payment_method: Some(PaymentMethodId::parse("pm_2").unwrap()),
        payment_method_created: Some(1_778_840_000),
        card: Some(CardDetails::new("mastercard", "4444", 1, 2027).unwrap()),
        ..platform_customer.clone()
    };
    let item = platform_customer_item(&p, &with_card);
    check("platform_customer_with_card", item.clone(), platform_customer_from(&item).unwrap() == with_card);

    let pm = PaymentMethodId::parse("pm_1").unwrap();
    let method = PaymentMethodRecord {
        account: Some(account.clone()),
        customer: CustomerId::parse("cus_1").unwrap(),
        workspace_id: Some(w.clone()),
        partner_id: None,
        card: Some(CardDetails::new("visa", "4242", 12, 2029).unwrap()),
        card_at: Some(1_778_840_000),
        expires_at: None,
        version: 2,
    };
    let item = payment_method_item(&pm, &method);
    check("payment_method", item.clone(), payment_method_from(&item).unwrap() == method);
    let position = SweepPosition { position: 1_778_840_000, version: 3 };
    let item = sweep_position_item(Some(&account), &position);
    check("sweep_position", item.clone(), sweep_position_from(&item).unwrap() == position);
    let item = sweep_position_item(None, &position);
    check("sweep_position_platform", item.clone(), sweep_position_from(&item).unwrap() == position);
    let item = sweep_cursor_item(Some(&p));
    check("sweep_cursor", item.clone(), sweep_cursor_from(&item).unwrap() == Some(p.clone()));
    let item = sweep_cursor_item(None);
    check("sweep_cursor_start", item.clone(), sweep_cursor_from(&item).unwrap().is_none());
    let unclaimed = PaymentMethodRecord { workspace_id: None, expires_at: Some(1_779_444_800), version: 1, ..method };
    let item = payment_method_item(&pm, &unclaimed);
    check("payment_method_unclaimed", item.clone(), payment_method_from(&item).unwrap() == unclaimed);

    let accrual = Accrual {
        partner: p.clone(),
        workspace: w.clone(),
        source: "usage:voice_minutes".into(),
        reference: "usage#ws-1#evt-1".into(),
        amount: points("0.035"),
        quantity: Some(UsageQuantity::parse("0.5").unwrap()),
        created_at: at,
        counted: false,
    };
    let item = accrual_item(&accrual);
    check("accrual", item.clone(), accrual_from(&item).unwrap() == accrual);
    let counted = Accrual { counted: true, ..accrual.clone() };
    let item = accrual_item(&counted);
    check("accrual_counted", item.clone(), accrual_from(&item).unwrap() == counted);
    let renewal =
        Accrual { source: "renewal".into(), reference: "renewal#ws-1#2026-06-01".into(), quantity: None, ..accrual };
    let item = accrual_item(&renewal);
    check("accrual_renewal", item.clone(), accrual_from(&item).unwrap() == renewal);

    let billing = PartnerBilling { mode: WalletMode::Prepaid, version: 2 };
    let item = partner_billing_item(&p, &billing, at);
    check("partner_billing", item.clone(), partner_billing_from(Some(&item)).unwrap() == billing);

    let price = StripePrice {
        account: account.clone(),
        product: "addon_extra_member".into(),
        amount: usd(1000),
        price_id: PriceId::parse("price_1").unwrap(),
    };
    let item = stripe_price_item(&stripe_price(&p, "addon_extra_member"), &price);
    check("stripe_price", item.clone(), stripe_price_from(&item).unwrap() == price);
    let unpaid = UnpaidPlan { workspace: w.clone(), pauses_on: date!(2026 - 06 - 08) };
    let item = unpaid_plan_item(&unpaid);
    check("unpaid_plan", item.clone(), unpaid_plan_from(&item).unwrap() == unpaid);
    out
}

#[test]
fn every_record_is_stored_as_it_always_was() {
    let stored: Value = serde_json::from_str(include_str!("stored_format.json")).expect("stored_format.json is JSON");
    let samples = samples();
    let now: serde_json::Map<String, Value> =
        samples.iter().map(|(name, item)| ((*name).to_owned(), item_json(item))).collect();
    if std::env::var_os("PRINT_STORED_FORMAT").is_some() {
        println!("{}", serde_json::to_string_pretty(&now).unwrap());
    }
    for (name, item) in &samples {
        assert_eq!(Some(&item_json(item)), stored.get(*name), "{name} is no longer stored as it was");
    }
    assert_eq!(stored.as_object().map(|o| o.len()), Some(samples.len()), "a sample in the file is gone");
}
