//! The off-session charges, out of the paths that ask for them. A debit that leaves a wallet
//! under its refill threshold (usage, a fold) and a renewal short of points write a refill
//! request (`REFILLS / <wallet>`); this function makes the charge each request asks for, on the
//! payer's saved card, and credits it (`Billing::charge_requested`, `Billing::charge_refills`).
//!
//! Two sources invoke it (template.yaml):
//! - the table's stream, filtered to new and replaced requests: each record names a request to
//!   take, so a refill is charged within seconds of the debit that asked for it;
//! - a schedule, whose sweep takes every request still pending: one whose stream invocation
//!   failed past its retries, or that was written while the stream's mapping was off.
//!
//! Taking a request is conditional (see `billing`'s charging module), so an invocation that
//! overlaps another (a retried batch, the sweep) charges each request once.
//!
//! Each invocation prints what it charged as one metric line (Embedded Metric Format, see
//! `runtime::metrics`): `AutoTopupsCharged`, `AutoTopupsDeclined`, and the renewals that waited
//! for their top-up (`RenewalsDone`, `RenewalsInGrace`, `RenewalsLapsed`, as renew-addons names
//! its own).

use std::time::{Duration, Instant};

use billing::{Billing, OpError, RefillRun};
use domain::WalletId;
use runtime::metrics::MetricLine;
use serde_json::Value;
use store::Table;

/// How long before the invocation's deadline a sweep stops taking requests: one request is a
/// Stripe charge of at most 25.75 s in the worst case (`stripe_gateway::client::DEFAULT_TIMEOUT`'s
/// comment) and its credit. A run stopped mid-charge loses nothing (the attempt is recorded
/// before its charge and taken up again under its key), but it would count as an error.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(30);

/// The value of the metrics' `Function` dimension.
pub const FUNCTION: &str = "charge-refills";

#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// The sweep stopped: the requests could not be read.
    #[error("the charging sweep stopped")]
    Run(#[from] OpError),
    /// Some requests failed (each is logged with its wallet). Their attempts stay recorded: the
    /// next debit under the threshold or the next renewal run asks again and takes them up.
    #[error("{} refill request(s) failed ({})", .0.errors, .0.summary())]
    Failed(RefillRun),
    /// A stream record that names no refill request: the event source's filter is wrong.
    #[error("a stream record names no refill request: {0}")]
    NotARequest(String),
}

/// What Lambda records for a failed invocation: its `errorType` says whether a retry may get
/// through; its `errorMessage` carries the whole chain of causes.
impl From<ChargeError> for lambda_runtime::Diagnostic {
    fn from(e: ChargeError) -> Self {
        let retryable = match &e {
            ChargeError::Failed(_) => true,
            ChargeError::Run(e) => matches!(e, OpError::Conflict | OpError::Unavailable(_) | OpError::RetryLater(_)),
            ChargeError::NotARequest(_) => false,
        };
        let error_type = if retryable { "ChargeRetryable" } else { "ChargeNotRetryable" };
        lambda_runtime::Diagnostic { error_type: error_type.to_owned(), error_message: billing::error_chain(&e) }
    }
}

/// One invocation: the requests a stream batch names, or (any other event: the schedule's) a
/// sweep of every pending one until [`SAFETY_MARGIN`] before `deadline`. Fails when a request
/// failed, so that the function's `Errors` metric (and its alarm) sees it.
pub async fn handle<T: Table>(
    billing: &Billing<T>,
    event: &Value,
    deadline: Instant,
) -> Result<RefillRun, ChargeError> {
    let run = match stream_wallets(event)? {
        Some(wallets) => billing.charge_requested(&wallets).await,
        None => billing.charge_refills(|| out_of_time(Instant::now(), deadline)).await?,
    };
    run.log("charging run");
    metrics(&run).emit();
    if run.errors > 0 {
        return Err(ChargeError::Failed(run));
    }
    Ok(run)
}

/// The wallets whose requests a stream batch names (`None`: the event is not a stream batch).
/// A record of a removed request names nothing to take.
pub fn stream_wallets(event: &Value) -> Result<Option<Vec<WalletId>>, ChargeError> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else { return Ok(None) };
    let mut wallets = Vec::with_capacity(records.len());
    for record in records {
        if record["eventName"] == "REMOVE" {
            continue;
        }
        let keys = &record["dynamodb"]["Keys"];
        let (pk, sk) = (keys[store::item::PK]["S"].as_str(), keys[store::item::SK]["S"].as_str());
        match (pk, sk.and_then(store::keys::wallet_of_pk)) {
            (Some(store::keys::REFILLS_PK), Some(wallet)) => wallets.push(wallet),
            _ => return Err(ChargeError::NotARequest(keys.to_string())),
        }
    }
    Ok(Some(wallets))
}

/// An invocation's charges as one metric line, workspaces' auto top-ups and partners'
/// auto-refills together. Charged: credited now, or accepted by Stripe with the money to come
/// (its event credits it). Declined: declined, or nothing to charge with; the payer's setting
/// records it and the partner hears of it.
pub fn metrics(run: &RefillRun) -> MetricLine {
    MetricLine::new(FUNCTION)
        .count("AutoTopupsCharged", run.credited.saturating_add(run.pending))
        .count("AutoTopupsDeclined", run.failed)
        .count("RenewalsDone", run.renewed)
        .count("RenewalsInGrace", run.in_grace)
        .count("RenewalsLapsed", run.lapsed)
}

/// Whether a sweep at `now` must stop taking requests for `deadline`.
pub fn out_of_time(now: Instant, deadline: Instant) -> bool {
    deadline.saturating_duration_since(now) <= SAFETY_MARGIN
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::{FixedClock, PartnerId, WorkspaceId};
    use serde_json::json;
    use store::Store;
    use store::memory::MemoryTable;
    use time::OffsetDateTime;

    use super::*;

    fn record(event_name: &str, pk: &str, sk: &str) -> Value {
        json!({ "eventName": event_name, "eventSource": "aws:dynamodb",
                "dynamodb": { "Keys": { "PK": { "S": pk }, "SK": { "S": sk } } } })
    }

    #[test]
    fn a_stream_batch_names_the_wallets_of_its_requests() {
        let batch = json!({ "Records": [
            record("INSERT", "REFILLS", "WS#ws-1"),
            record("MODIFY", "REFILLS", "PARTNER#p-1"),
            record("REMOVE", "REFILLS", "WS#ws-2"),
        ]});
        let wallets = stream_wallets(&batch).unwrap().unwrap();
        assert_eq!(
            wallets,
            [
                WalletId::Workspace(WorkspaceId::parse("ws-1").unwrap()),
                WalletId::Partner(PartnerId::parse("p-1").unwrap())
            ]
        );
        assert_eq!(stream_wallets(&json!({ "source": "aws.scheduler" })).unwrap(), None, "the schedule's");
        for wrong in [record("INSERT", "WS#ws-1", "WALLET"), record("INSERT", "REFILLS", "ACCOUNT#acct_1")] {
            let err = stream_wallets(&json!({ "Records": [wrong] })).unwrap_err();
            assert!(matches!(err, ChargeError::NotARequest(_)), "{err}");
            assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "ChargeNotRetryable");
        }
    }

    #[tokio::test]
    async fn a_sweep_with_nothing_asked_finishes_and_one_out_of_time_starts_nothing() {
        let billing =
            Billing::new(Store::new(MemoryTable::new()), Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH)));
        let later = Instant::now() + Duration::from_secs(60);
        let run = handle(&billing, &json!({}), later).await.unwrap();
        assert_eq!(run, RefillRun { finished: true, ..RefillRun::default() });
        let run = handle(&billing, &json!({ "Records": [] }), Instant::now()).await.unwrap();
        assert_eq!(run, RefillRun { finished: true, ..RefillRun::default() }, "an empty batch");
    }

    #[test]
    fn charges_and_the_renewals_after_them_are_the_metrics() {
        let run = RefillRun {
            taken: 9,
            credited: 3,
            pending: 1,
            failed: 2,
            not_tried: 1,
            errors: 1,
            renewed: 2,
            in_grace: 1,
            lapsed: 1,
            finished: true,
        };
        let line: Value = serde_json::from_str(&metrics(&run).to_json(0)).unwrap();
        let value = |name: &str| line[name].as_u64().unwrap_or_else(|| panic!("{name} in {line}"));
        assert_eq!((value("AutoTopupsCharged"), value("AutoTopupsDeclined")), (4, 2));
        assert_eq!((value("RenewalsDone"), value("RenewalsInGrace"), value("RenewalsLapsed")), (2, 1, 1));
        assert_eq!(line["Function"], FUNCTION);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn a_sweep_stops_a_margin_before_its_deadline() {
        let now = Instant::now();
        assert!(!out_of_time(now, now + SAFETY_MARGIN + Duration::from_millis(1)));
        assert!(out_of_time(now, now + SAFETY_MARGIN));
    }
}
