//! Renewal on a schedule: EventBridge Scheduler invokes this function every 15 minutes, and it
//! first settles the workspaces of the plans edited since the last run (`Billing::apply_plan_edits`,
//! so a renewal evaluates a paused or resumed workspace as its plan now says), then renews every
//! workspace whose renewal is due (`Billing::renew_due`, shard by shard), until
//! its own deadline is near. A workspace stays due until it is renewed or lapses, so what one
//! run leaves, the next one finds; each renewal is one idempotent transaction, so two runs
//! that overlap (a slow run and the next tick, or a retry) renew and charge once. Last, it
//! warns the partners of the renewals of the next days the balance will not cover
//! (`Billing::warn_renewals_ahead`, `renewal.at_risk`, once per renewal), and pauses the
//! workspaces whose plan, billed in money, is still unpaid after their partner's grace days
//! (`Billing::pause_unpaid_plans`).
//!
//! Each run prints its renewals' outcomes as one metric line (Embedded Metric Format, see
//! `runtime::metrics`): `RenewalsDone`, `RenewalsLapsed`, `RenewalsInGrace`,
//! `RenewalsAwaitingTopup`, `RenewalsFailed`.

use std::time::{Duration, Instant};

use billing::{Billing, OpError, PlanEditLimits, PlanEditRun, RenewalLimits, RenewalRun, UnpaidRun, WarningRun};
use runtime::ConfigError;
use runtime::metrics::MetricLine;
use store::Table;
use store::table::MAX_QUERY_LIMIT;

/// How long before the invocation's deadline a run stops starting work. `renew_due` asks
/// before each page and each batch, and a batch already started (up to `concurrency`
/// workspaces, each a read and one transaction, with the store's retries) must finish before
/// Lambda stops the process. Being stopped would lose nothing (the renewals in flight commit
/// or not, and stay due if not), but it counts as an error and sets off the alarm.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(20);

/// Optional: index items read per query (1 to `MAX_QUERY_LIMIT`; default 100).
pub const PAGE_SIZE_VAR: &str = "RENEWAL_PAGE_SIZE";
/// Optional: workspaces renewed at once (1 to [`MAX_CONCURRENCY`]; default 16).
pub const CONCURRENCY_VAR: &str = "RENEWAL_CONCURRENCY";
/// Renewals in flight at once, at most: each holds a few DynamoDB calls open, and one run must not throttle the table for the API.
pub const MAX_CONCURRENCY: usize = 64;

/// The value of the metrics' `Function` dimension.
pub const FUNCTION: &str = "renew-addons";

#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The run stopped: the due index could not be read.
    #[error("the renewal run stopped")]
    Run(#[from] OpError),
    /// The run went through, but some renewals failed (each is logged with its workspace).
    /// They stay due: the retry or the next run renews them.
    #[error("{} renewal(s) failed and stay due ({})", .0.failed, .0.summary())]
    Failed(RenewalRun),
    /// The renewals went through, but the plan edits' pass before them stopped. The edits stay
    /// pending: the next run goes on with them.
    #[error("the plan edits' pass stopped")]
    PlanEdits(#[source] OpError),
}

impl RenewError {
    /// Whether a run soon after may succeed: failed renewals stay due and an unavailable or
    /// busy store clears by itself; a broken item needs a person.
    pub fn retryable(&self) -> bool {
        match self {
            RenewError::Failed(_) => true,
            RenewError::Run(e) | RenewError::PlanEdits(e) => matches!(
                e,
                OpError::Conflict | OpError::Unavailable(_) | OpError::StripeUnavailable(_) | OpError::RetryLater(_)
            ),
        }
    }
}

/// What Lambda records for a failed invocation: its `errorType` says whether to wait for the
/// next run or to look now; its `errorMessage` carries the whole chain of causes.
impl From<RenewError> for lambda_runtime::Diagnostic {
    fn from(e: RenewError) -> Self {
        let error_type = if e.retryable() { "RenewalRetryable" } else { "RenewalNotRetryable" };
        lambda_runtime::Diagnostic { error_type: error_type.to_owned(), error_message: billing::error_chain(&e) }
    }
}

/// Settles the plan edits' workspaces, then renews what is due, until `SAFETY_MARGIN` before
/// `deadline`; logs one line with every count of each, and fails when any renewal failed or the
/// plan edits' pass stopped, so that the function's `Errors` metric (and its alarm) sees it and
/// Lambda's retry runs again at once (both are idempotent).
pub async fn handle<T: Table>(
    billing: &Billing<T>,
    deadline: Instant,
    limits: RenewalLimits,
) -> Result<RenewalRun, RenewError> {
    let stop = || out_of_time(Instant::now(), deadline);
    // A failed pass leaves its edits pending and must not hold up the renewals.
    let edits = billing.apply_plan_edits(stop, PlanEditLimits::default()).await;
    match &edits {
        Ok(PlanEditRun { edits, paused, resumed, failed, finished }) => {
            tracing::info!(edits, paused, resumed, failed, finished, "plan edits pass");
        }
        Err(e) => {
            tracing::error!(error = billing::error_chain(e), "the plan edits' pass stopped; the next run goes on")
        }
    }
    let run = billing.renew_due(stop, limits).await?;
    let RenewalRun { renewed, lapsed, in_grace, awaiting_topup, skipped, failed, finished } = run;
    tracing::info!(renewed, lapsed, in_grace, awaiting_topup, skipped, failed, finished, "renewal run");
    metrics(&run).emit();
    if !finished {
        tracing::warn!("the deadline came before every due renewal was read; the next run goes on");
    }
    // Then the renewals of the next days the balance will not cover: after the renewals, so a
    // short run spends its time on what is due.
    match billing.warn_renewals_ahead(stop).await {
        Ok(WarningRun { looked_at, warned, finished }) => {
            tracing::info!(looked_at, warned, finished, "renewal warnings pass");
        }
        Err(e) => tracing::error!(error = billing::error_chain(&e), "the renewal warnings' pass stopped"),
    }
    // And the plans billed in money still unpaid when their grace days are over: paused.
    match billing.pause_unpaid_plans(stop).await {
        Ok(UnpaidRun { paused, cleared, failed }) => tracing::info!(paused, cleared, failed, "unpaid plans pass"),
        Err(e) => tracing::error!(error = billing::error_chain(&e), "the unpaid plans' pass stopped"),
    }
    if failed > 0 {
        return Err(RenewError::Failed(run));
    }
    edits.map_err(RenewError::PlanEdits)?;
    Ok(run)
}

/// A run's outcomes as one metric line. `skipped` is left out: a workspace found due that another
/// run renewed first is no business fact.
pub fn metrics(run: &RenewalRun) -> MetricLine {
    MetricLine::new(FUNCTION)
        .count("RenewalsDone", run.renewed)
        .count("RenewalsLapsed", run.lapsed)
        .count("RenewalsInGrace", run.in_grace)
        .count("RenewalsAwaitingTopup", run.awaiting_topup)
        .count("RenewalsFailed", run.failed)
}

/// Whether a run at `now` must stop starting work for `deadline`.
pub fn out_of_time(now: Instant, deadline: Instant) -> bool {
    deadline.saturating_duration_since(now) <= SAFETY_MARGIN
}

/// The limits of a run, from `PAGE_SIZE_VAR` and `CONCURRENCY_VAR` as `var` reads them (unset
/// or empty: the defaults). A value out of range stops the function at init, naming it.
pub fn limits_from_env(var: impl Fn(&str) -> Option<String>) -> Result<RenewalLimits, ConfigError> {
    let defaults = RenewalLimits::default();
    let read = |name: &'static str, default: usize, max: usize| -> Result<usize, ConfigError> {
        match var(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(v) => v.trim().parse().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| ConfigError::Invalid {
                name,
                why: format!("{v:?} is not a whole number from 1 to {max}"),
            }),
        }
    };
    Ok(RenewalLimits {
        page_size: read(PAGE_SIZE_VAR, defaults.page_size, MAX_QUERY_LIMIT)?,
        concurrency: read(CONCURRENCY_VAR, defaults.concurrency, MAX_CONCURRENCY)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use billing::{AddonOrder, Mutation, NewWorkspace, PointsAdjustment};
    use domain::{
        Actor, AddonCode, AnchorDay, FixedClock, PartnerId, PartnerSettings, Plan, PlanId, PointsDelta, Usage,
        WalletId, WorkspaceId,
    };
    use store::memory::MemoryTable;
    use store::{IdempotencyKey, IndexQuery, Item, Key, Query, Store, TableError, Write};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_run_stops_starting_work_a_margin_before_its_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(900);
        assert!(!out_of_time(now, deadline));
        assert!(!out_of_time(deadline - SAFETY_MARGIN - Duration::from_millis(1), deadline));
        assert!(out_of_time(deadline - SAFETY_MARGIN, deadline));
        assert!(out_of_time(deadline, deadline));
        assert!(out_of_time(deadline + Duration::from_secs(1), deadline), "past the deadline");
    }

    #[test]
    fn a_run_s_outcomes_are_its_metrics() {
        let run =
            RenewalRun { renewed: 5, lapsed: 2, in_grace: 1, awaiting_topup: 3, skipped: 9, failed: 4, finished: true };
        let line: serde_json::Value = serde_json::from_str(&metrics(&run).to_json(0)).unwrap();
        let declared: Vec<&str> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            declared,
            ["RenewalsDone", "RenewalsLapsed", "RenewalsInGrace", "RenewalsAwaitingTopup", "RenewalsFailed"]
        );
        let values: Vec<u64> = declared.iter().map(|name| line[name].as_u64().unwrap()).collect();
        assert_eq!(values, [5, 2, 1, 3, 4]);
        assert_eq!(line["Function"], FUNCTION);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["Function"]]));
    }

    #[test]
    fn limits_come_from_the_environment_or_default() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            limits_from_env(move |name| map.get(name).cloned())
        };
        let defaults = RenewalLimits::default();
        let got = env(&[]).unwrap();
        assert_eq!((got.page_size, got.concurrency), (defaults.page_size, defaults.concurrency));
        let got = env(&[(PAGE_SIZE_VAR, " 250 "), (CONCURRENCY_VAR, "")]).unwrap();
        assert_eq!((got.page_size, got.concurrency), (250, defaults.concurrency));
        for (name, bad) in
            [(PAGE_SIZE_VAR, "0"), (PAGE_SIZE_VAR, "1001"), (CONCURRENCY_VAR, "65"), (CONCURRENCY_VAR, "x")]
        {
            match env(&[(name, bad)]) {
                Err(ConfigError::Invalid { name: got, why }) => assert_eq!(got, name, "{why}"),
                other => panic!("{name}={bad} gave {other:?}"),
            }
        }
    }

    /// The memory table, whose writes can be made to fail as DynamoDB's do when throttled.
    #[derive(Default)]
    struct Flaky {
        inner: MemoryTable,
        fail_writes: AtomicBool,
    }

    impl Table for Flaky {
        async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
            self.inner.get(key).await
        }

        async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
            self.inner.get_many(keys).await
        }

        async fn query(&self, query: Query<'_>) -> Result<Vec<Item>, TableError> {
            self.inner.query(query).await
        }

        async fn query_index(&self, query: IndexQuery<'_>) -> Result<Vec<Item>, TableError> {
            self.inner.query_index(query).await
        }

        async fn transact(&self, writes: Vec<Write>) -> Result<(), TableError> {
            if self.fail_writes.load(Ordering::Relaxed) {
                return Err(TableError::transient("ProvisionedThroughputExceededException (test)"));
            }
            self.inner.transact(writes).await
        }
    }

    const W: &str = "ws-1";

    fn key(name: &str) -> IdempotencyKey {
        IdempotencyKey::new("test", name, name.as_bytes()).unwrap()
    }

    /// A partner and its workspace `W` (billed by calendar month) with 100 points, which buys
    /// one extra bot (10 points a month) on 15 April: 5.00 for the half month left.
    async fn workspace_with_an_addon() -> (Billing<Flaky>, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(datetime!(2026-04-15 10:00 UTC)));
        let billing = Billing::new(Store::new(Flaky::default()), clock.clone());
        let p = PartnerId::parse("partner-1").unwrap();
        let settings = PartnerSettings {
            credit_billing: true,
            success_url: None,
            cancel_url: None,
            grace_days: 3,
            ..Default::default()
        };
        billing
            .create_partner(&p, &settings, Mutation::new(&key("partner"), &api::answers::partner_created))
            .await
            .unwrap();
        let w = WorkspaceId::parse(W).unwrap();
        let new = NewWorkspace {
            id: w.clone(),
            name: "One".into(),
            plan: PlanId::Starter,
            anchor: Some(AnchorDay::new(1).unwrap()),
        };
        billing
            .create_workspace(&p, new, Mutation::new(&key("workspace"), &api::answers::workspace_created))
            .await
            .unwrap();
        let points = PointsAdjustment {
            amount: PointsDelta::parse("100").unwrap(),
            reason: "test points".into(),
            allow_negative: false,
            actor: Actor::System("test".into()),
        };
        billing
            .adjust_points(&p, &w, points, Mutation::new(&key("points"), &api::answers::points_adjusted))
            .await
            .unwrap();
        let order = AddonOrder {
            code: AddonCode::ExtraBot,
            quantity: 1,
            by_partner: false,
            charge: true,
            actor: Actor::User("admin".into()),
        };
        let added = &api::answers::addon_added;
        billing
            .add_addon(&w, billing::Asker::Workspace(None), &order, Mutation::new(&key("addon"), added))
            .await
            .unwrap();
        (billing, clock)
    }

    async fn balance(billing: &Billing<Flaky>) -> String {
        let wallet = WalletId::Workspace(WorkspaceId::parse(W).unwrap());
        billing.store.wallet(&wallet).await.unwrap().balance.to_string()
    }

    #[tokio::test]
    async fn a_due_workspace_is_renewed_once() {
        let (billing, clock) = workspace_with_an_addon().await;
        assert_eq!(balance(&billing).await, "95.00");
        let deadline = Instant::now() + Duration::from_secs(900);
        let run = handle(&billing, deadline, RenewalLimits::default()).await.unwrap();
        assert_eq!(run, RenewalRun { finished: true, ..Default::default() }, "nothing is due in April");
        clock.set(datetime!(2026-05-01 06:00 UTC));
        let run = handle(&billing, deadline, RenewalLimits::default()).await.unwrap();
        assert_eq!(run, RenewalRun { renewed: 1, finished: true, ..Default::default() });
        assert_eq!(balance(&billing).await, "85.00", "May's 10.00");
        let again = handle(&billing, deadline, RenewalLimits::default()).await.unwrap();
        assert_eq!(again, RenewalRun { finished: true, ..Default::default() }, "renewed until 1 June");
    }

    #[tokio::test]
    async fn a_run_with_failed_renewals_fails_and_the_next_one_renews_them() {
        let (billing, clock) = workspace_with_an_addon().await;
        clock.set(datetime!(2026-05-01 06:00 UTC));
        let deadline = Instant::now() + Duration::from_secs(900);
        billing.store.table().fail_writes.store(true, Ordering::Relaxed);
        let err = handle(&billing, deadline, RenewalLimits::default()).await.unwrap_err();
        match &err {
            RenewError::Failed(run) => assert_eq!(*run, RenewalRun { failed: 1, finished: true, ..Default::default() }),
            other => panic!("{other}"),
        }
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "RenewalRetryable");
        assert!(diagnostic.error_message.starts_with("1 renewal(s) failed"), "{}", diagnostic.error_message);
        assert_eq!(balance(&billing).await, "95.00", "nothing was charged");
        billing.store.table().fail_writes.store(false, Ordering::Relaxed);
        let run = handle(&billing, deadline, RenewalLimits::default()).await.unwrap();
        assert_eq!(run.renewed, 1);
        assert_eq!(balance(&billing).await, "85.00");
    }

    #[tokio::test]
    async fn a_run_out_of_time_starts_nothing() {
        let (billing, clock) = workspace_with_an_addon().await;
        clock.set(datetime!(2026-05-01 06:00 UTC));
        let run = handle(&billing, Instant::now() + SAFETY_MARGIN, RenewalLimits::default()).await.unwrap();
        assert_eq!(run, RenewalRun::default(), "not finished, nothing renewed");
        assert_eq!(balance(&billing).await, "95.00");
    }

    #[tokio::test]
    async fn a_run_first_settles_the_plans_edited_since_the_last() {
        let (billing, _) = workspace_with_an_addon().await;
        let w = WorkspaceId::parse(W).unwrap();
        // Two bots: the starter plan's one and the extra bot.
        let usage = Usage { bots: 2, members: 1, bot_users: 0 };
        billing.report_usage(&w, usage, Mutation::new(&key("usage"), &api::answers::workspace_changed)).await.unwrap();
        let mut plan = Plan::default_for(PlanId::Starter);
        plan.limits.bots = 0;
        billing
            .put_plan(
                &PartnerId::parse("partner-1").unwrap(),
                &plan,
                Mutation::new(&key("plan"), &api::answers::plan_set),
            )
            .await
            .unwrap();
        assert!(!billing.workspace(&w).await.unwrap().status.is_paused(), "the edit leaves the status to the pass");
        let run = handle(&billing, Instant::now() + Duration::from_secs(900), RenewalLimits::default()).await.unwrap();
        assert_eq!(run, RenewalRun { finished: true, ..Default::default() }, "nothing is due in April");
        assert!(billing.workspace(&w).await.unwrap().status.is_paused());
    }
}
