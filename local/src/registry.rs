//! The function crates of template.yaml, by the `CodeUri` it gives them: the HTTP ones, which
//! the runner serves, and those that run on a schedule or the table's stream and have no routes
//! (the runner's own ticker does their work in their place, with their permissions:
//! `crate::clock`). A new HTTP
//! function is one line here (and its crate in Cargo.toml); start-up refuses a template route
//! whose function is missing from this list.

use std::future::Future;
use std::pin::Pin;

use billing::Billing;
use lambda_http::{Body, Request, Response};
use store::Table;

/// A function's handler, as its crate exports it (`handle(&billing, request)`).
pub type Handler<T> = for<'a> fn(&'a Billing<T>, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// One function crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionEntry {
    /// The crate's folder, as template.yaml's `CodeUri` names it.
    pub code_uri: &'static str,
    /// The package (and binary) name, as `BuildProperties.Binary` names it.
    pub package: &'static str,
    /// The routes the crate's handler answers (its `ROUTES`); none for a scheduled function.
    pub routes: &'static [&'static str],
}

/// The scheduled renewal function (EventBridge Scheduler, no routes).
pub const RENEW_ADDONS: &str = "functions/renew-addons";
/// The scheduled fold of partners' wholesale charges (EventBridge Scheduler, no routes).
pub const FOLD_USAGE: &str = "functions/fold-usage";
/// The off-session charges of the refills debits and renewals ask for (the table's stream and a
/// schedule, no routes).
pub const CHARGE_REFILLS: &str = "functions/charge-refills";
/// The reconciliation sweep of Stripe's events (EventBridge Scheduler, no routes).
pub const RECONCILE_PAYMENTS: &str = "functions/reconcile-payments";
/// Partner webhooks (the table's stream and a schedule, no routes). The runner has no stream:
/// it does not send them (see docs/local.md).
pub const DELIVER_WEBHOOKS: &str = "functions/deliver-webhooks";

pub const FUNCTIONS: &[FunctionEntry] = &[
    FunctionEntry { code_uri: "functions/adjust-points", package: "adjust-points", routes: adjust_points::ROUTES },
    FunctionEntry { code_uri: CHARGE_REFILLS, package: "charge-refills", routes: &[] },
    FunctionEntry { code_uri: DELIVER_WEBHOOKS, package: "deliver-webhooks", routes: &[] },
    FunctionEntry { code_uri: FOLD_USAGE, package: "fold-usage", routes: &[] },
    FunctionEntry {
        code_uri: "functions/create-checkout",
        package: "create-checkout",
        routes: create_checkout::ROUTES,
    },
    FunctionEntry { code_uri: "functions/partner-api", package: "partner-api", routes: partner_api::ROUTES },
    FunctionEntry { code_uri: "functions/platform-api", package: "platform-api", routes: platform_api::ROUTES },
    FunctionEntry { code_uri: "functions/purchase-addon", package: "purchase-addon", routes: purchase_addon::ROUTES },
    FunctionEntry { code_uri: RECONCILE_PAYMENTS, package: "reconcile-payments", routes: &[] },
    FunctionEntry { code_uri: RENEW_ADDONS, package: "renew-addons", routes: &[] },
    FunctionEntry { code_uri: "functions/stripe-webhook", package: "stripe-webhook", routes: stripe_webhook::ROUTES },
    FunctionEntry { code_uri: "functions/workspace-api", package: "workspace-api", routes: workspace_api::ROUTES },
];

/// Boxes a crate's `handle` into a [`Handler`].
macro_rules! handler {
    ($krate:ident) => {{
        fn handle<T: Table>(
            billing: &Billing<T>,
            req: Request,
        ) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + '_>> {
            Box::pin($krate::handle(billing, req))
        }
        handle::<T> as Handler<T>
    }};
}

/// The handler of the crate at `code_uri` (`functions/purchase-addon`), if the runner knows it.
pub fn handler<T: Table>(code_uri: &str) -> Option<Handler<T>> {
    Some(match normalize(code_uri) {
        "functions/adjust-points" => handler!(adjust_points),
        "functions/create-checkout" => handler!(create_checkout),
        "functions/partner-api" => handler!(partner_api),
        "functions/platform-api" => handler!(platform_api),
        "functions/purchase-addon" => handler!(purchase_addon),
        "functions/stripe-webhook" => handler!(stripe_webhook),
        "functions/workspace-api" => handler!(workspace_api),
        _ => return None,
    })
}

pub fn entry(code_uri: &str) -> Option<&'static FunctionEntry> {
    FUNCTIONS.iter().find(|f| f.code_uri == normalize(code_uri))
}

/// `./functions/x/` and `functions/x` are the same folder.
pub fn normalize(code_uri: &str) -> &str {
    code_uri.trim_start_matches("./").trim_end_matches('/')
}
