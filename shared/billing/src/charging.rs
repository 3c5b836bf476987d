//! Refill requests and the charging pass: the off-session charges leave the paths that ask for
//! them.
//!
//! A debit that leaves a wallet under its refill threshold (a usage event's, a fold's) and a
//! renewal short of points write a refill request (`REFILLS / <wallet>`) when the setting wants
//! a refill (`AutoTopup::wants_refill`, `wants_topup`): a debit in its own transaction, a
//! renewal instead of its write. Neither calls Stripe. The charging pass makes the charge a
//! request asks for, through the refill engine (`refill.rs`), on the payer's saved card. In AWS
//! that is the charge-refills function, fed by the table's stream (each new or replaced request)
//! and swept on a schedule; locally, the runner's clock control and its tick.
//!
//! A pass takes a request before acting on it: it deletes the request on the condition that it
//! is still the one read (its `request_id`). So two passes that read the same request (a stream
//! record retried, the sweep) charge once, and a newer request that replaced it stays for its
//! own pass. A pass that stops after taking a request loses nothing the engine recorded: an
//! attempt in flight is taken up again by the next request, which the next debit under the
//! threshold or the next renewal run writes.
//!
//! A renewal's request ends with the renewal of its workspace ([`Billing::renew_after_topup`]),
//! which asks for no second top-up: renewed when the charge was credited, in grace or lapsed
//! when it was declined or held. A charge that stopped on an error leaves the workspace due
//! instead, for the next renewal run to ask again.

use std::sync::Arc;

use time::OffsetDateTime;

use domain::{AutoTopup, Balance, Points, WalletId};
use store::records::{self, RefillRequest};
use store::{Attr, Condition, Crossing, Guard, StoreError, Table, Write, keys};

use super::refill::{Payer, REFILL_RESUME_AFTER, TopupResult, Trigger};
use super::{Billing, OpError, RenewalOutcome};

/// Requests read per page of a sweep.
const SWEEP_PAGE: usize = 100;

/// A request for a refill of `wallet`, replacing any before it: `renewal_shortfall` for a
/// renewal's, `None` for a debit's.
pub(super) fn refill_request(wallet: &WalletId, renewal_shortfall: Option<Points>, now: OffsetDateTime) -> Write {
    let request = RefillRequest {
        wallet: wallet.clone(),
        renewal_shortfall,
        request_id: format!("refill_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        requested_at: now,
    };
    Write::Put { item: records::refill_request_item(&request), condition: Condition::Always }
}

/// The request a debit of `wallet` writes in its transaction when it leaves the balance under
/// the threshold of `auto`, if the setting wants a refill now.
pub(super) fn refill_crossing(wallet: &WalletId, auto: &AutoTopup, now: OffsetDateTime) -> Option<Crossing> {
    if !auto.wants_refill(now, REFILL_RESUME_AFTER) {
        return None;
    }
    let below = Balance::from_decimal(auto.threshold?.as_decimal()).expect("a threshold is a balance");
    let wallet = wallet.clone();
    Some(Crossing { below, across: false, write: Arc::new(move |e| refill_request(&wallet, None, e.created_at)) })
}

/// What came of a request a pass took: its charge, and for a renewal's, the renewal after it.
struct Taken {
    charge: TopupResult,
    renewal: Option<RenewalOutcome>,
}

impl From<TopupResult> for Taken {
    fn from(charge: TopupResult) -> Self {
        Taken { charge, renewal: None }
    }
}

/// What a charging pass did (serialized as the charge-refills function's answer and the local
/// clock control's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RefillRun {
    /// Requests this pass took.
    pub taken: u64,
    /// Charged and credited.
    pub credited: u64,
    /// Accepted by Stripe: its event credits it.
    pub pending: u64,
    /// Declined, or nothing to charge with: recorded on the setting (and told to the partner).
    pub failed: u64,
    /// Nothing charged: the balance was topped up meanwhile, the hour after a decline, the
    /// monthly cap, or an attempt another call is charging.
    pub not_tried: u64,
    /// Requests that stopped on an error (logged): the next request takes their attempt up.
    pub errors: u64,
    /// The renewals that waited for these charges: renewed, kept in grace, or lapsed.
    pub renewed: u64,
    pub in_grace: u64,
    pub lapsed: u64,
    /// Every request was read (a sweep) or every one named was handled (stream records).
    pub finished: bool,
}

impl RefillRun {
    pub fn summary(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("counts serialize")
    }

    /// One log line with every count, as `what`.
    pub fn log(&self, what: &str) {
        let RefillRun { taken, credited, pending, failed, not_tried, errors, renewed, in_grace, lapsed, finished } =
            *self;
        tracing::info!(
            taken, credited, pending, failed, not_tried, errors, renewed, in_grace, lapsed, finished, "{what}"
        );
    }

    fn count(&mut self, wallet: &WalletId, result: Result<Option<Taken>, OpError>) {
        match result {
            Ok(None) => {}
            Ok(Some(Taken { charge, renewal })) => {
                self.taken += 1;
                *match charge {
                    TopupResult::Credited => &mut self.credited,
                    TopupResult::Pending => &mut self.pending,
                    TopupResult::Failed => &mut self.failed,
                    TopupResult::NotTried => &mut self.not_tried,
                } += 1;
                match renewal {
                    Some(RenewalOutcome::Renewed { .. }) => self.renewed += 1,
                    Some(RenewalOutcome::InGrace { .. }) => self.in_grace += 1,
                    Some(RenewalOutcome::Lapsed { .. }) => self.lapsed += 1,
                    _ => {}
                }
            }
            Err(e) => {
                tracing::error!(wallet = %wallet, error = super::error_chain(&e), "refill request failed");
                self.errors += 1;
            }
        }
    }
}

impl<T: Table> Billing<T> {
    /// Takes every pending request, page by page, until `stop()` (asked before each request).
    pub async fn charge_refills(&self, stop: impl Fn() -> bool) -> Result<RefillRun, OpError> {
        let mut run = RefillRun::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.query_prefix(keys::REFILLS_PK, "", after.as_deref(), SWEEP_PAGE).await?;
            let more = page.len() == SWEEP_PAGE;
            after = page.last().map(|i| i.str(store::item::SK).map(str::to_owned)).transpose()?;
            for item in &page {
                if stop() {
                    return Ok(run);
                }
                let request = records::refill_request_from(item)?;
                let wallet = request.wallet.clone();
                run.count(&wallet, self.take_request(request).await);
            }
            if !more {
                run.finished = true;
                return Ok(run);
            }
        }
    }

    /// Takes the pending requests of `wallets` (those a stream's records name), if they are
    /// still pending.
    pub async fn charge_requested(&self, wallets: &[WalletId]) -> RefillRun {
        let mut run = RefillRun::default();
        for wallet in wallets {
            let result = async {
                let Some(item) = self.store.get(&keys::refill_request(wallet)).await? else { return Ok(None) };
                self.take_request(records::refill_request_from(&item)?).await
            };
            run.count(wallet, result.await);
        }
        run.finished = true;
        run
    }

    /// Takes `request` (`None`: another pass took it, or a newer request replaced it) and makes
    /// the charge it asks for.
    async fn take_request(&self, request: RefillRequest) -> Result<Option<Taken>, OpError> {
        let take = Write::Delete {
            key: keys::refill_request(&request.wallet),
            condition: Condition::equals(Guard::RefillRequestPending, "request_id", Attr::s(&request.request_id)),
        };
        match self.store.write(vec![take]).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let w = match &request.wallet {
            WalletId::Partner(p) => {
                return Ok(Some(self.try_refill(Payer::Partner(p), Trigger::Threshold).await?.into()));
            }
            WalletId::Workspace(w) => w,
        };
        let ws = match self.workspace(w).await {
            Ok(ws) => ws,
            Err(OpError::NotFound(_)) => {
                tracing::warn!(workspace = %w, "a refill request for a workspace we don't have: dropped");
                return Ok(Some(TopupResult::NotTried.into()));
            }
            Err(e) => return Err(e),
        };
        let Some(shortfall) = request.renewal_shortfall else {
            return Ok(Some(self.try_refill(Payer::Workspace(&ws), Trigger::Threshold).await?.into()));
        };
        // A charge that stopped on an error leaves the renewal due, neither renewed nor lapsed:
        // the next run asks again (and takes up an attempt left in flight).
        let charge = self.try_refill(Payer::Workspace(&ws), Trigger::Renewal(shortfall)).await?;
        // Whatever else the charge came to, the renewal goes on: renewed if it was credited, in
        // grace or lapsed if not.
        let renewal = self.renew_after_topup(w).await?;
        tracing::info!(workspace = %w, shortfall = %shortfall, charge = ?charge, renewal = ?renewal,
            "renewal after its auto top-up");
        Ok(Some(Taken { charge, renewal: Some(renewal) }))
    }
}
