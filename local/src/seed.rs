//! The demo data a newcomer's curl walk-through starts from: partner `demo-partner` (default
//! catalog and plans, its Stripe account `acct_demo` connected on the fake, credit billing on,
//! three top-up options in USD and a credit rate) and its workspaces `demo-ws-1` (starter, 100
//! points) and `demo-ws-2` (growth, 25 points), both billed by calendar month (anchor day 1).
//!
//! Seeding runs at every start and must not fail or add points twice when the store persists
//! (DynamoDB): every write has a fixed idempotency key, an existing partner or workspace is
//! left as it is, and points go only to a wallet that has never changed.

use api::answers;
use billing::{Billing, Mutation, NewWorkspace, OpError, PartnerTerms, PointsAdjustment, TopupOptionDraft};
use domain::{
    Actor, AnchorDay, CreditRate, CreditRateTerms, Currency, Money, PartnerId, PartnerSettings, PlanId, Points,
    PointsDelta, TopupOption, WalletId, WalletMode, WholesaleFloors, WorkspaceId,
};
use store::{IdempotencyKey, Table};
use stripe_fake::Fake;
use stripe_gateway::ids::OAuthCode;

use crate::stripe::DEMO_ACCOUNT;

pub const DEMO_PARTNER: &str = "demo-partner";
/// (id, name, plan, points).
pub const DEMO_WORKSPACES: [(&str, &str, PlanId, u32); 2] = [
    ("demo-ws-1", "Demo workspace one", PlanId::Starter, 100),
    ("demo-ws-2", "Demo workspace two", PlanId::Growth, 25),
];
/// The demo partner's top-up options: (label, USD cents, points).
pub const DEMO_TOPUP_OPTIONS: [(&str, i64, &str); 3] =
    [("Starter pack", 1000, "1000"), ("Value pack", 2500, "2750"), ("Pro pack", 5000, "6000")];
/// The demo partner's credit rate: USD per point.
pub const DEMO_PRICE_PER_POINT: &str = "0.012";
/// The demo partner's own wholesale floor (its terms with the platform): below its cheapest
/// point, the 50.00 USD for 6,000 points bonus tier (0.0083 a point), which the deployment's
/// default of 0.01 would refuse.
pub const DEMO_WHOLESALE_FLOORS: &str = "usd=0.008";
/// Idempotency scope of the seed's writes (no API caller can use it: theirs are tenant-scoped).
const SEED_SCOPE: &str = "local-seed";
/// Who the seed's ledger entries name.
const SEED_ACTOR: &str = "local-seed";

#[derive(Debug, thiserror::Error)]
#[error("seeding {what} failed: {source}")]
pub struct SeedError {
    what: String,
    source: OpError,
}

fn key(name: &str, request: &str) -> IdempotencyKey {
    IdempotencyKey::new(SEED_SCOPE, name, request.as_bytes()).expect("seed keys are short printable ASCII")
}

/// Creates the demo partner and workspaces unless they exist. `base_url` is where the runner
/// listens (`http://localhost:3000`), for the partner's Checkout return URLs; `stripe` is the
/// fake the partner's account is connected on.
/// The name the demo partner's billing page shows.
pub const DEMO_BRAND_NAME: &str = "Northwind Bots";

pub async fn seed<T: Table>(billing: &Billing<T>, base_url: &str, stripe: &Fake) -> Result<(), SeedError> {
    let p = PartnerId::parse(DEMO_PARTNER).expect("a valid id");
    let settings = PartnerSettings {
        credit_billing: true,
        // Checkout comes back to the billing page, which shows the points arriving.
        success_url: Some(format!("{base_url}/billing/?partner={DEMO_PARTNER}&checkout={{CHECKOUT_SESSION_ID}}")),
        cancel_url: Some(format!("{base_url}/billing/?partner={DEMO_PARTNER}&checkout=cancelled")),
        grace_days: 3,
        default_rebilling: Default::default(),
        unit_name: domain::DEFAULT_UNIT_NAME.to_owned(),
        // The billing page shows the partner's brand, never the platform's; the runner itself
        // may frame it (its sign-in page's embedding demo).
        brand: domain::Brand {
            name: Some(DEMO_BRAND_NAME.into()),
            logo_url: None,
            primary_color: Some("#0f5b8c".into()),
            accent_color: Some("#8a3b12".into()),
            embed_origins: vec![base_url.to_owned()],
        },
    };
    let fail = |what: &str| {
        let what = what.to_owned();
        move |source| SeedError { what, source }
    };
    // Credit billing goes on once the account is connected (as a partner does it).
    let created = PartnerSettings { credit_billing: false, ..settings.clone() };
    // The key binds only the partner id: a restart on another port keeps the first settings.
    match billing
        .create_partner(&p, &created, Mutation::new(&key("partner", DEMO_PARTNER), &answers::partner_created))
        .await
    {
        Ok(_) | Err(OpError::AlreadyExists(_)) => {}
        Err(e) => return Err(fail(DEMO_PARTNER)(e)),
    }
    let terms = PartnerTerms {
        floors: Some(WholesaleFloors::parse_setting(DEMO_WHOLESALE_FLOORS).expect("valid demo floors")),
        billing_mode: WalletMode::Postpaid,
    };
    billing
        .put_partner_terms(&p, &terms, Mutation::new(&key("terms", DEMO_PARTNER), &answers::partner_changed))
        .await
        .map_err(fail("the partner's terms"))?;
    if billing.stripe_connection(&p).await.map_err(fail("the Stripe connection"))?.is_none() {
        let (code, _) = stripe.issue_oauth_code(Some(DEMO_ACCOUNT), false);
        let code = OAuthCode::parse(&code).expect("the fake issues Stripe-shaped codes");
        billing
            .connect_stripe(&p, &code, Mutation::new(&key("connect", DEMO_ACCOUNT), &answers::stripe_connected))
            .await
            .map_err(fail("the Stripe connection"))?;
    }
    billing
        .put_partner_settings(&p, &settings, Mutation::new(&key("settings", DEMO_PARTNER), &answers::settings_set))
        .await
        .map_err(fail("the settings"))?;
    let options = DEMO_TOPUP_OPTIONS
        .iter()
        .map(|(label, cents, points)| {
            let amount = Money::from_minor(*cents, Currency::USD).expect("whole cents");
            let option =
                TopupOption::new(label, amount, Points::parse(points).expect("points")).expect("a valid demo option");
            TopupOptionDraft { id: None, option }
        })
        .collect();
    billing
        .put_topup_options(&p, options, Mutation::new(&key("topups", DEMO_PARTNER), &answers::topup_options_set))
        .await
        .map_err(fail("the top-up options"))?;
    let rate = CreditRateTerms::unbounded(CreditRate::parse("USD", DEMO_PRICE_PER_POINT).expect("a valid rate"));
    billing
        .put_credit_rate(&p, &rate, Mutation::new(&key("rate", DEMO_PARTNER), &answers::credit_rate_set))
        .await
        .map_err(fail("the credit rate"))?;
    for (id, name, plan, points) in DEMO_WORKSPACES {
        let w = WorkspaceId::parse(id).expect("a valid id");
        // Cycles on calendar months, so a purchase shows a proration anyone can check by hand.
        let anchor = Some(AnchorDay::new(1).expect("1 is a day of every month"));
        let new = NewWorkspace { id: w.clone(), name: name.to_owned(), plan, anchor };
        match billing
            .create_workspace(&p, new, Mutation::new(&key(&format!("workspace:{id}"), id), &answers::workspace_created))
            .await
        {
            Ok(_) | Err(OpError::AlreadyExists(_)) => {}
            Err(e) => return Err(fail(id)(e)),
        }
        let wallet = billing.store.wallet(&WalletId::Workspace(w.clone())).await.map_err(|e| fail(id)(e.into()))?;
        if wallet.version > 0 {
            continue;
        }
        let adjustment = PointsAdjustment {
            amount: PointsDelta::parse(&points.to_string()).expect("a small whole number of points"),
            reason: "Demo points".into(),
            allow_negative: false,
            actor: Actor::System(SEED_ACTOR.into()),
        };
        let key = key(&format!("points:{id}"), id);
        billing
            .adjust_points(&p, &w, adjustment, Mutation::new(&key, &answers::points_adjusted))
            .await
            .map_err(fail(id))?;
    }
    Ok(())
}
