//! The fold on a schedule: EventBridge Scheduler invokes this function every minute, and it
//! moves every accrued wholesale charge (usage at the platform's unit cost, add-on cost prices)
//! into its partner's wallet, one transaction per batch (`Billing::fold_all`), until the shards
//! are empty or its deadline is near. What one run leaves, the next finds; two runs that
//! overlap fold each charge once (a batch another fold took first is read again).
//!
//! The interval is the staleness bound of the partner balance that gates usage and purchases:
//! a charge is in the partner's wallet at most one interval (plus a run's time) after it
//! happened.

use std::time::{Duration, Instant};

use billing::{Billing, FoldRun, OpError};
use store::Table;

/// How long before the invocation's deadline a run stops starting batches. A batch is one
/// query, one read and one transaction (well under a second; a refill it asks for is
/// charge-refills' to make). A run killed mid-batch loses nothing (the batch commits or not),
/// but it would count as the function's error.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(10);

/// A run that stopped: the shards could not be read or a batch not written. What it left
/// stays accrued; the next run folds it.
#[derive(Debug)]
pub struct FoldError(pub OpError);

impl std::fmt::Display for FoldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the fold run stopped")
    }
}

impl std::error::Error for FoldError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// What Lambda records for a failed invocation: its `errorType` says whether to wait for the
/// next run (storage busy or unavailable) or to look now (a broken item); its `errorMessage`
/// carries the whole chain of causes.
impl From<FoldError> for lambda_runtime::Diagnostic {
    fn from(e: FoldError) -> Self {
        let retryable = matches!(e.0, OpError::Conflict | OpError::Unavailable(_));
        let error_type = if retryable { "FoldRetryable" } else { "FoldNotRetryable" };
        lambda_runtime::Diagnostic { error_type: error_type.to_owned(), error_message: billing::error_chain(&e) }
    }
}

/// One run, stopping [`SAFETY_MARGIN`] before `deadline`.
pub async fn handle<T: Table>(billing: &Billing<T>, deadline: Instant) -> Result<FoldRun, FoldError> {
    let stop = deadline.checked_sub(SAFETY_MARGIN).unwrap_or(deadline);
    billing.fold_all(Some(stop)).await.map_err(FoldError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::FixedClock;
    use std::sync::Arc;
    use store::Store;
    use store::memory::MemoryTable;
    use time::OffsetDateTime;

    #[tokio::test]
    async fn a_run_with_nothing_accrued_finishes_without_writing() {
        let billing =
            Billing::new(Store::new(MemoryTable::new()), Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH)));
        let run = handle(&billing, Instant::now() + Duration::from_secs(60)).await.unwrap();
        assert_eq!(run, FoldRun { batches: 0, charges: 0, raced: 0, finished: true });
    }

    #[tokio::test]
    async fn a_run_past_its_deadline_starts_nothing() {
        let billing =
            Billing::new(Store::new(MemoryTable::new()), Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH)));
        let run = handle(&billing, Instant::now()).await.unwrap();
        assert!(!run.finished);
        assert_eq!(run.batches, 0);
    }

    /// Lambda records the whole chain of causes, and whether a later run may get through.
    #[test]
    fn a_stopped_run_reports_its_causes() {
        let table = store::TableError::transient("ThrottlingException");
        let stopped = FoldError(OpError::Unavailable(store::StoreError::Unavailable(table)));
        let diagnostic = lambda_runtime::Diagnostic::from(stopped);
        assert_eq!(diagnostic.error_type, "FoldRetryable");
        assert_eq!(
            diagnostic.error_message,
            "the fold run stopped: storage temporarily unavailable; retry: storage unavailable: transient: \
             ThrottlingException"
        );
    }
}
