//! The runner's time, for demos ("buy an add-on, move a month ahead, see it renewed"): its
//! `Billing` runs on an [`OffsetClock`] (the real time plus an offset that only grows), and it
//! does the work the deployed stack leaves to the functions without routes: the plan edits'
//! pass and the renewals (renew-addons), the fold (fold-usage), the charges of the refills
//! they ask for (charge-refills), and the sweep of Stripe's events the webhook missed
//! (reconcile-payments).
//!
//! - The ticker ([`tick`]) runs the passes every `LOCAL_RENEWAL_TICK_S` seconds.
//! - After every change the runner answers, it takes the refill requests pending ([`charge`]),
//!   as the table's stream has charge-refills do seconds after a deployed change.
//! - `POST /_local/clock` with `{"advance_days": N}` and/or `{"advance_hours": N}` moves the
//!   clock ahead and runs the passes at once; `GET /_local/clock` says what time it is.
//!
//! The control has no authentication: it is a local tool, on a runner that listens on
//! 127.0.0.1 only, and it is not a route of template.yaml, so it does not exist when deployed.
//! Each pass runs with the DynamoDB permissions template.yaml gives its function, as a handler
//! runs with its function's.

use std::sync::Arc;
use std::time::Duration;

use api::ApiError;
use billing::{
    FoldRun, OpError, PlanEditLimits, PlanEditRun, RefillRun, RenewalLimits, RenewalRun, SweepLimits, SweepRun,
    UnpaidRun,
};
use domain::{Clock, OffsetClock};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use store::Table;
use store::records::rfc3339;

use crate::policy;
use crate::router::HttpRequest;
use crate::server::App;

/// The control's path. Everything under `/_local` is the runner's: no template route may use it.
pub const CLOCK_PATH: &str = "/_local/clock";
/// The first path segment the runner keeps for its own controls.
pub const LOCAL_SEGMENT: &str = "_local";
/// The most the clock moves in one request: ten years, far beyond any demo.
pub const MAX_ADVANCE_DAYS: u32 = 3660;
pub const MAX_ADVANCE_HOURS: u32 = MAX_ADVANCE_DAYS * 24;

/// `POST /_local/clock`'s body: at least one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance_days: Option<u32>,
    advance_hours: Option<u32>,
}

/// How far `POST /_local/clock` asks to move: whole days and hours, each within its bound.
fn advance_of(req: HttpRequest) -> Result<time::Duration, ApiError> {
    let (parts, body) = req.into_parts();
    let advance: Advance = api::json_body(&lambda_http::Request::from_parts(parts, Body::from(body)))?;
    let (days, hours) = match (advance.advance_days, advance.advance_hours) {
        (None, None) => return Err(ApiError::invalid("advance_days", "give advance_days and/or advance_hours")),
        (days, hours) => (days.unwrap_or(0), hours.unwrap_or(0)),
    };
    if days > MAX_ADVANCE_DAYS {
        return Err(ApiError::invalid("advance_days", format!("at most {MAX_ADVANCE_DAYS} days at a time")));
    }
    if hours > MAX_ADVANCE_HOURS {
        return Err(ApiError::invalid("advance_hours", format!("at most {MAX_ADVANCE_HOURS} hours at a time")));
    }
    Ok(time::Duration::days(days.into()) + time::Duration::hours(hours.into()))
}

/// Answers `GET` and `POST /_local/clock` (see the module doc). A runner whose `Billing` is on
/// another clock (a test's) answers 404: there is nothing to move.
pub async fn control<T: Table>(app: &App<T>, req: HttpRequest) -> Response<Body> {
    let Some(clock) = app.billing.clock.as_offset() else {
        return ApiError::not_found("an adjustable clock").into_response();
    };
    let answer = match *req.method() {
        Method::GET => Ok(now(clock)),
        Method::POST => advance(app, clock, req).await,
        _ => Err(ApiError::route_not_found()),
    };
    api::finish(answer.map(|body| api::json_response(StatusCode::OK, &body)))
}

async fn advance<T: Table>(app: &App<T>, clock: &OffsetClock, req: HttpRequest) -> Result<Value, ApiError> {
    let by = advance_of(req)?;
    clock.advance(by).map_err(|e| ApiError::invalid("advance_days", e))?;
    tracing::info!(offset_s = clock.offset().whole_seconds(), "the clock moved ahead by {by}");
    // Stripe's time first: renewals it bills reach the webhook before the passes look.
    crate::stripe::move_fake_clock(clock.now()).await;
    let edits = apply_plan_edits(app).await?;
    log_edits("plan edits pass", &edits);
    let run = renew(app).await?;
    log_run("renewal pass", &run);
    let unpaid = pause_unpaid(app).await?;
    let folded = fold(app).await?;
    let charged = charge(app).await?;
    let swept = sweep(app).await?;
    let mut body = now(clock);
    body["plan_edits"] = edits.summary();
    body["renewal"] = run.summary();
    body["unpaid_plans"] = serde_json::to_value(&unpaid).expect("counts serialize");
    body["fold"] = folded.summary();
    body["refills"] = charged.summary();
    body["sweep"] = swept.summary();
    Ok(body)
}

fn now(clock: &OffsetClock) -> Value {
    json!({ "now": rfc3339(clock.now()), "offset_s": clock.offset().whole_seconds() })
}

/// One pass over the pending plan edits, as renew-addons runs it before its renewals, with its
/// permissions.
pub async fn apply_plan_edits<T: Table>(app: &App<T>) -> Result<PlanEditRun, OpError> {
    let pass = app.billing.apply_plan_edits(|| false, PlanEditLimits::default());
    match app.router.renewal_policy() {
        Some(p) => policy::scope(p, pass).await,
        None => pass.await,
    }
}

/// One pass over the due renewals, as renew-addons runs it, with its permissions (when
/// template.yaml's policies are ones the runner can read). No deadline: a local table is small.
pub async fn renew<T: Table>(app: &App<T>) -> Result<RenewalRun, OpError> {
    let pass = app.billing.renew_due(|| false, RenewalLimits::default());
    match app.router.renewal_policy() {
        Some(p) => policy::scope(p, pass).await,
        None => pass.await,
    }
}

/// One pass over the plans billed in money still unpaid after their grace days (pausing their
/// workspaces), as renew-addons runs it after its renewals, with its permissions.
pub async fn pause_unpaid<T: Table>(app: &App<T>) -> Result<UnpaidRun, OpError> {
    let pass = app.billing.pause_unpaid_plans(|| false);
    match app.router.renewal_policy() {
        Some(p) => policy::scope(p, pass).await,
        None => pass.await,
    }
}

/// One fold of the partners' accrued wholesale charges, as fold-usage runs it, with its
/// permissions.
pub async fn fold<T: Table>(app: &App<T>) -> Result<FoldRun, OpError> {
    let pass = app.billing.fold_all(None);
    match app.router.fold_policy() {
        Some(p) => policy::scope(p, pass).await,
        None => pass.await,
    }
}

/// One pass over the pending refill requests, as charge-refills sweeps them, with its
/// permissions: the charges a renewal or a fold just asked for (a renewal's ends with the
/// workspace renewed, in grace or lapsed).
pub async fn charge<T: Table>(app: &App<T>) -> Result<RefillRun, OpError> {
    let pass = app.billing.charge_refills(|| false);
    let run = match app.router.charging_policy() {
        Some(p) => policy::scope(p, pass).await,
        None => pass.await,
    }?;
    if run.taken > 0 || run.errors > 0 {
        run.log("charging pass");
    }
    Ok(run)
}

/// One reconciliation sweep of the fake's events, as reconcile-payments runs it, with its
/// permissions. The fake delivers its webhooks itself, so the sweep finds what a held or
/// dropped delivery (its `/_fake/events` controls) left.
pub async fn sweep<T: Table>(app: &App<T>) -> Result<SweepRun, OpError> {
    // The fake lists an event the moment it makes it: a second's lag, not Stripe's minute.
    let limits = SweepLimits { lag: time::Duration::seconds(1), ..SweepLimits::default() };
    let pass = app.billing.sweep(|| false, limits);
    match app.router.sweep_policy() {
        Some(p) => policy::scope(p, pass).await,
        None => pass.await,
    }
}

/// Runs a plan edits' pass, a renewal pass, a fold, a charging pass and a sweep every `every`,
/// for as long as the runner runs, and logs the passes that did something. A failed pass is
/// logged; what it left is there for the next.
pub async fn tick<T: Table>(app: Arc<App<T>>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    // A pass that overran its period is followed by a full period, not by a burst.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match apply_plan_edits(&app).await {
            Ok(run) if run == (PlanEditRun { finished: true, ..PlanEditRun::default() }) => {}
            Ok(run) => log_edits("plan edits tick", &run),
            Err(e) => tracing::warn!(error = %e, "plan edits tick failed; the next tick goes on"),
        }
        match renew(&app).await {
            Ok(run) if run == (RenewalRun { finished: true, ..RenewalRun::default() }) => {}
            Ok(run) => log_run("renewal tick", &run),
            Err(e) => tracing::warn!(error = %e, "renewal tick failed; the next tick tries again"),
        }
        match pause_unpaid(&app).await {
            Ok(run) if run == UnpaidRun::default() => {}
            Ok(UnpaidRun { paused, cleared, failed }) => tracing::info!(paused, cleared, failed, "unpaid plans tick"),
            Err(e) => tracing::warn!(error = %e, "unpaid plans tick failed; the next tick goes on"),
        }
        match fold(&app).await {
            Ok(run) if run.batches == 0 => {}
            Ok(run) => tracing::info!(batches = run.batches, charges = run.charges, "fold tick"),
            Err(e) => tracing::warn!(error = %e, "fold tick failed; the next tick folds what it left"),
        }
        if let Err(e) = charge(&app).await {
            tracing::warn!(error = %e, "charging tick failed; the next tick takes what it left");
        }
        match sweep(&app).await {
            Ok(run) if run.fixed == 0 && run.refused == 0 && run.failed == 0 => {}
            Ok(run) => tracing::warn!(summary = %run.summary(), "sweep tick found what the webhook missed"),
            Err(e) => tracing::warn!(error = %e, "sweep tick failed; the next tick goes on from where it was"),
        }
    }
}

fn log_edits(what: &str, run: &PlanEditRun) {
    let PlanEditRun { edits, paused, resumed, failed, finished } = *run;
    tracing::info!(edits, paused, resumed, failed, finished, "{what}");
}

fn log_run(what: &str, run: &RenewalRun) {
    let RenewalRun { renewed, lapsed, in_grace, awaiting_topup, skipped, failed, finished } = *run;
    tracing::info!(renewed, lapsed, in_grace, awaiting_topup, skipped, failed, finished, "{what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> HttpRequest {
        lambda_http::http::Request::builder().method(Method::POST).uri(CLOCK_PATH).body(body.into()).unwrap()
    }

    #[test]
    fn the_advance_is_whole_days_and_hours_within_bounds() {
        let ok = |body: &str| advance_of(post(body)).unwrap();
        assert_eq!(ok(r#"{"advance_days": 31}"#), time::Duration::days(31));
        assert_eq!(ok(r#"{"advance_hours": 5}"#), time::Duration::hours(5));
        assert_eq!(ok(r#"{"advance_days": 1, "advance_hours": 2}"#), time::Duration::hours(26));
        assert_eq!(ok(r#"{"advance_days": 0}"#), time::Duration::ZERO, "a pass without moving");
        assert_eq!(ok(r#"{"advance_days": 3660}"#), time::Duration::days(3660));
        let refused = |body: &str| {
            let e = advance_of(post(body)).unwrap_err();
            assert_eq!((e.status(), e.kind()), (StatusCode::BAD_REQUEST, "invalid_request"), "{body}");
            e.param().unwrap_or_default().to_owned()
        };
        assert_eq!(refused(r#"{"advance_days": -1}"#), "advance_days");
        assert_eq!(refused(r#"{"advance_days": 1.5}"#), "advance_days");
        assert_eq!(refused(r#"{"advance_days": "31"}"#), "advance_days");
        assert_eq!(refused(r#"{"advance_days": 3661}"#), "advance_days");
        assert_eq!(refused(r#"{"advance_hours": 87841}"#), "advance_hours");
        assert_eq!(refused(r#"{"advance_weeks": 1}"#), "advance_weeks");
        assert_eq!(refused("{}"), "advance_days");
        assert_eq!(refused(""), "body");
        assert_eq!(refused("31"), "body");
    }
}
