//! The reconciliation sweep on a schedule: EventBridge Scheduler invokes this function every 15
//! minutes, and it lists what happened on the platform's Stripe account and on every partner's
//! connected account since its position there, and applies each event through the webhook's own
//! path (`Billing::sweep`): a payment whose webhook never came is credited, a refund or dispute
//! the webhook missed is taken back, once, whoever comes first. Two runs that overlap apply each
//! event once in effect (every effect is keyed by its object) and sweep each account once (its
//! position is written under a version).
//!
//! It logs one line with the run's counts, and one metric line in CloudWatch's Embedded Metric
//! Format: `SweepFixed`, the events the webhook had missed (the alarm on it says money went
//! unaccounted for a while), and `SweepEvents`.

use std::time::{Duration, Instant};

use billing::{Billing, OpError, SweepLimits, SweepRun};
use runtime::metrics::MetricLine;
use store::Table;

/// How long before the invocation's deadline a run stops starting windows. A window is a few
/// Stripe pages (each up to 26 s with its retries) and its events' transactions.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(60);

/// The value of the metrics' `Function` dimension (template.yaml's alarm names it).
pub const FUNCTION: &str = "reconcile-payments";

/// A run that stopped: the partner list or a position could not be read or written. The
/// positions stay where they were; the next run goes on from them.
#[derive(Debug)]
pub struct SweepError(pub OpError);

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the sweep stopped")
    }
}

impl std::error::Error for SweepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// What Lambda records for a failed invocation: whether to wait for the next run (the store or
/// Stripe busy or unavailable) or to look now.
impl From<SweepError> for lambda_runtime::Diagnostic {
    fn from(e: SweepError) -> Self {
        let retryable = matches!(
            e.0,
            OpError::Conflict | OpError::Unavailable(_) | OpError::StripeUnavailable(_) | OpError::RetryLater(_)
        );
        let error_type = if retryable { "SweepRetryable" } else { "SweepNotRetryable" };
        lambda_runtime::Diagnostic { error_type: error_type.to_owned(), error_message: billing::error_chain(&e) }
    }
}

/// One run, stopping [`SAFETY_MARGIN`] before `deadline`.
pub async fn handle<T: Table>(billing: &Billing<T>, deadline: Instant) -> Result<SweepRun, SweepError> {
    let stop = deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline);
    let run = billing.sweep(|| Instant::now() >= stop, SweepLimits::default()).await.map_err(SweepError)?;
    let SweepRun { accounts, events, fixed, refused, failed, finished } = run;
    tracing::info!(accounts, events, fixed, refused, failed, finished, "sweep run");
    metrics(&run).emit();
    Ok(run)
}

/// The run's counts as one Embedded Metric Format line: CloudWatch makes metrics of it from the
/// log, with no call of its own.
pub fn metrics(run: &SweepRun) -> MetricLine {
    MetricLine::new(FUNCTION)
        .count("SweepFixed", run.fixed)
        .count("SweepEvents", run.events)
        .count("SweepRefused", run.refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_line_is_embedded_metric_format() {
        let run = SweepRun { accounts: 3, events: 6, fixed: 2, refused: 1, failed: 0, finished: true };
        let line: serde_json::Value = serde_json::from_str(&metrics(&run).to_json(1_777_000_000_000)).unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 1_777_000_000_000_i64);
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], runtime::metrics::NAMESPACE);
        for metric in declared["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_u64(), "{name} has a value: {line}");
        }
        assert_eq!((&line["SweepFixed"], &line["SweepEvents"]), (&serde_json::json!(2), &serde_json::json!(6)));
        assert_eq!(line["Function"], "reconcile-payments", "its dimension has a value");
    }
}
