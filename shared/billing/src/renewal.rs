//! Renewal: at each cycle end, the add-ons a workspace holds are paid again with points, or
//! lapse. The decision is `domain::plan_renewal`; this writes it.
//!
//! One workspace's renewal is ONE transaction: the debit (or, for a lapse, a zero-amount entry
//! that says why), the workspace's profile with its next `renews_on` (which moves it off the due
//! index) and every renewed add-on's new period and price, a history item for every add-on that
//! ended or lapsed, and the idempotency record `renewal:<workspace>:<renews_on>`. A re-run, a retry after a crash and two
//! concurrent invocations therefore renew once and charge once: whichever commits first moves
//! the workspace's version, and the others find it renewed.
//!
//! The scheduler ([`Billing::renew_due`]) reads the due index shard by shard, in bounded pages,
//! renews a bounded number of workspaces at once, and stops before its deadline. A workspace
//! stays due until it is renewed or lapses, so what a tick leaves, the next one finds; one
//! several cycles behind is renewed (or lapses) cycle after cycle in the same run.
//!
//! A purchase is refused once a workspace holds [`MAX_RENEWAL_ADDONS`] add-ons, so one
//! transaction carries every renewal. A workspace that held more before that bound existed
//! first lapses the newest of its due add-ons, in transactions of their own (`make_room`), and
//! then renews the rest: nothing stays active unpaid.
//!
//! A renewal short of points whose workspace has auto top-up on charges nothing itself: it asks
//! for a refill (a request the charging pass takes, `charging.rs`) and waits, neither renewed
//! nor lapsed, while the request or its attempt is open. The pass renews the workspace once the
//! charge comes to something, without asking again: one auto top-up per renewal run.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde_json::json;
use time::Date;

use domain::{
    Actor, AddonStatus, Cycle, EntryKind, InFlight, MAX_RENEWAL_ADDONS, Overdraft, PartnerAddon, PartnerId, Plan,
    PlanId, Points, PointsDelta, RenewalLine, RenewalPlan, WalletId, Workspace, WorkspaceAddon, WorkspaceId, evaluate,
    lapses_on, plan_renewal, renewal_overflow, renews_on,
};
use store::records::{self, format_date};
use store::schema::DUE_INDEX;
use store::table::{IndexPosition, IndexQuery, MAX_QUERY_LIMIT, MAX_TRANSACTION_ACTIONS};
use store::{Attr, Condition, Guard, IdempotencyKey, Order, Outcome, StoreError, Table, WalletState, Write, keys};

use super::cards::{Need, workspace_card_notice};
use super::refill::REFILL_RESUME_AFTER;
use super::{Billing, MAX_OP_ATTEMPTS, OpError};

/// Scope of the renewals' idempotency records.
const RENEWAL_SCOPE: &str = "renewal";

/// What a renewal (or an overflow's lapse) writes besides its add-ons: the wallet, the ledger
/// entry, the idempotency record, the month before (when the renewal begins a new one), the
/// workspace, the partner's accrual and its sum (or the lapse event), a pause/resume event, and
/// a `card.expiring` event with its customer record.
const RENEWAL_FIXED_ACTIONS: usize = 10;
const _: () = assert!(MAX_RENEWAL_ADDONS + RENEWAL_FIXED_ACTIONS <= MAX_TRANSACTION_ACTIONS);

/// Overflow batches one renewal may write: enough for every add-on a profile of the earlier
/// shape may be read with.
const MAX_OVERFLOW_BATCHES: usize = (store::upgrade::MAX_ADDON_PAGES * MAX_QUERY_LIMIT).div_ceil(MAX_RENEWAL_ADDONS);

/// Cycles one scheduled run renews of one workspace that is behind; the next run goes on.
pub const MAX_CATCH_UP_CYCLES: usize = 24;
/// Who the renewals' ledger entries name.
pub const RENEWAL_ACTOR: &str = "renewal";

/// What became of one workspace's renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalOutcome {
    /// Its renewal day has not come.
    NotDue,
    /// Paid for the next cycle (`charged` may be zero: nothing to renew, the cycle moved on).
    Renewed { charged: Points, renews_on: Date },
    /// Renewed by another run meanwhile.
    AlreadyRenewed,
    /// The points don't cover the renewal; the add-ons are kept until `lapses_on`.
    InGrace { shortfall: Points, lapses_on: Date },
    /// Not paid by the end of the grace days: the add-ons lapsed together.
    Lapsed { shortfall: Points, renews_on: Date },
    /// The points don't cover the renewal, and an auto top-up is asked for or being charged:
    /// nothing lapses until it comes to something.
    AwaitingTopup { shortfall: Points },
}

/// Whether a renewal short of points may ask for an auto top-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TopUp {
    /// A scheduled renewal: asks, if the setting wants one.
    Ask,
    /// The renewal after the charging pass made (or could not make) the one asked for: asks for
    /// no second one.
    Asked,
}

/// How a scheduled run goes through the due renewals.
#[derive(Debug, Clone, Copy)]
pub struct RenewalLimits {
    /// Index items read per query.
    pub page_size: usize,
    /// Workspaces renewed at once.
    pub concurrency: usize,
}

impl Default for RenewalLimits {
    fn default() -> Self {
        Self { page_size: 100, concurrency: 16 }
    }
}

/// What a scheduled run did (serialized as the Lambda's answer and the local clock control's).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RenewalRun {
    pub renewed: u64,
    pub lapsed: u64,
    pub in_grace: u64,
    /// Short of points, with an auto top-up asked for or being charged.
    pub awaiting_topup: u64,
    /// Found due on the (eventually consistent) index, but renewed already or not due.
    pub skipped: u64,
    /// Renewals that failed (logged); they stay due for the next run.
    pub failed: u64,
    /// Every shard was read to its last due renewal before the deadline.
    pub finished: bool,
}

impl RenewalRun {
    /// The counts as JSON: `{"renewed": .., "lapsed": .., ..}`.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("counts serialize")
    }

    fn add(&mut self, other: &RenewalRun) {
        self.renewed += other.renewed;
        self.lapsed += other.lapsed;
        self.in_grace += other.in_grace;
        self.awaiting_topup += other.awaiting_topup;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// A workspace as a renewal decides on it: its profile (with the add-ons it holds) and its
/// wallet.
struct Holding {
    ws: Workspace,
    state: WalletState,
}

impl<T: Table> Billing<T> {
    /// Renews workspace `w` if its renewal is due (see the module doc).
    pub async fn renew_workspace(&self, w: &WorkspaceId) -> Result<RenewalOutcome, OpError> {
        self.renew(w, None, &PartnerTerms::default(), TopUp::Ask).await
    }

    /// Renews `w` after the charging pass took its renewal's request for an auto top-up.
    pub(super) async fn renew_after_topup(&self, w: &WorkspaceId) -> Result<RenewalOutcome, OpError> {
        self.renew(w, None, &PartnerTerms::default(), TopUp::Asked).await
    }

    /// The renewal of `w`, starting from `hint` (the workspace as the due index showed it, so
    /// the first attempt reads no profile: its version condition catches a stale one) and the
    /// partner terms this run has read already.
    async fn renew(
        &self,
        w: &WorkspaceId,
        mut hint: Option<Workspace>,
        terms: &PartnerTerms,
        top_up: TopUp,
    ) -> Result<RenewalOutcome, OpError> {
        for _ in 0..MAX_OP_ATTEMPTS {
            let ws = match hint.take() {
                Some(ws) => ws,
                None => self.workspace(w).await?,
            };
            let now = self.clock.now();
            if ws.renews_on > now.date() {
                return Ok(RenewalOutcome::NotDue);
            }
            let ended_on = ws.renews_on.previous_day().ok_or_else(|| internal("renews_on is the first day"))?;
            let ended = Cycle::containing(ws.anchor, ended_on).map_err(internal)?;
            let wallet = WalletId::Workspace(w.clone());
            let [wallet_item, auto_topup, customer, connection] = self
                .read([
                    keys::wallet(&wallet),
                    keys::workspace_auto_topup(w),
                    keys::workspace_customer(w),
                    keys::partner_stripe(&ws.partner),
                ])
                .await?;
            let state = store::wallet_state(wallet_item.as_ref())?;
            let auto_topup = auto_topup.as_ref().map(records::auto_topup_from).transpose()?.unwrap_or_default();
            let prices = terms.prices(self, &ws.partner).await?;
            let Some(Holding { ws, state }) = self.make_room(Holding { ws, state }, ended, &prices, terms).await?
            else {
                // The workspace or its wallet moved meanwhile: decide again.
                continue;
            };
            let price = |code| prices.iter().find(|p| p.code == code).map(|p| p.points);
            let plan = plan_renewal(ended, &ws.addons, price).map_err(internal)?;
            let shortfall = plan.shortfall(state.balance);
            let lapse = !shortfall.is_zero();
            if lapse {
                if auto_topup.in_flight_at(now, Some(REFILL_RESUME_AFTER)) == InFlight::Busy {
                    // Being charged right now: its pass renews the workspace after it.
                    return Ok(RenewalOutcome::AwaitingTopup { shortfall });
                }
                if top_up == TopUp::Ask && auto_topup.wants_topup(now, REFILL_RESUME_AFTER) {
                    let request = super::charging::refill_request(&wallet, Some(shortfall), now);
                    self.store.write(vec![request]).await?;
                    tracing::info!(workspace = %w, shortfall = %shortfall, "renewal waits for an auto top-up");
                    return Ok(RenewalOutcome::AwaitingTopup { shortfall });
                }
                let grace = self.partner_settings(&ws.partner).await?.grace_days;
                let lapses_on = lapses_on(ws.renews_on, grace);
                if now.date() < lapses_on {
                    return Ok(RenewalOutcome::InGrace { shortfall, lapses_on });
                }
            }
            let next_renews_on = renews_on(&plan.next).map_err(internal)?;
            let plan_terms = terms.plan(self, &ws.partner, ws.plan).await?;
            let mut writes = renewal_writes(&ws, &plan, &plan_terms, lapse, next_renews_on, now)?;
            // Each renewal looks a cycle ahead: a card that won't last to the next one is told of.
            let connection = connection.as_ref().map(records::stripe_connection_from).transpose()?;
            let account = self.usable(connection).map(|c| c.account);
            let need = Need { refills: auto_topup.enabled, renews_on: Some(next_renews_on) };
            writes.extend(workspace_card_notice(&ws, account.as_ref(), customer.as_ref(), need, now)?);
            if plan.lines.is_empty() {
                // Nothing to pay or lapse: only the cycle (and any cancelled add-on) moves on.
                return match self.store.write(writes).await {
                    Ok(()) => Ok(RenewalOutcome::Renewed { charged: Points::ZERO, renews_on: next_renews_on }),
                    Err(StoreError::ConditionFailed { .. }) => continue,
                    Err(e) => Err(e.into()),
                };
            }
            if !lapse {
                // The partner owes the platform each renewed add-on's whole-month cost price.
                let cost = plan.lines.iter().try_fold(Points::ZERO, |sum, l| {
                    let unit = Points::from_decimal(l.addon.cost_price().as_major()).ok()?;
                    sum.checked_add(unit.checked_mul(l.quantity)?)
                });
                let accrual = records::Accrual {
                    partner: ws.partner.clone(),
                    workspace: w.clone(),
                    source: "renewal".into(),
                    reference: format!("renewal#{w}#{}", format_date(ws.renews_on)),
                    amount: cost.ok_or_else(|| internal("a renewal's cost price is out of range"))?,
                    quantity: None,
                    created_at: now,
                    counted: true,
                };
                writes.extend(super::usage::accrual_write(&accrual));
            }
            let (cycle_start, cycle_end) = (format_date(plan.next.start()), format_date(plan.next.end()));
            let (amount, kind) = if lapse {
                let reason = format!("not paid: the balance lacked {shortfall} points when the grace days ended");
                let kind = EntryKind::Lapse { cycle_start, cycle_end, lines: plan.lines.clone(), shortfall, reason };
                (PointsDelta::ZERO, kind)
            } else {
                (
                    PointsDelta::debit(plan.total),
                    EntryKind::Renewal { cycle_start, cycle_end, lines: plan.lines.clone() },
                )
            };
            let key = format!("{w}:{}", format_date(ws.renews_on));
            let idempotency = IdempotencyKey::new(RENEWAL_SCOPE, &key, key.as_bytes())
                .map_err(|_| internal(format!("renewal key {key} is not a key")))?;
            let posting = store::Posting {
                wallet,
                amount,
                overdraft: Overdraft::Forbid,
                kind,
                actor: Actor::System(RENEWAL_ACTOR.into()),
                at: now,
                idempotency,
                partner: Some(ws.partner.clone()),
                in_partner_ledger: true,
                also: writes,
            };
            let outcome = if lapse { "lapsed" } else { "renewed" };
            match self.store.post_from(posting, state, |_| json!({ "outcome": outcome })).await {
                Ok(Outcome::Applied { entry, .. }) => {
                    tracing::info!(workspace = %w, entry = %entry.id, outcome, points = %plan.total,
                        renews_on = %next_renews_on, "renewal");
                    return Ok(if lapse {
                        RenewalOutcome::Lapsed { shortfall, renews_on: next_renews_on }
                    } else {
                        RenewalOutcome::Renewed { charged: plan.total, renews_on: next_renews_on }
                    });
                }
                Ok(Outcome::Replayed { .. } | Outcome::KeyReused) => return Ok(RenewalOutcome::AlreadyRenewed),
                // Spent or changed meanwhile (a purchase, a cancellation): decide again.
                Ok(Outcome::InsufficientBalance { .. }) | Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// Lapses the due add-ons one renewal cannot carry ([`renewal_overflow`]), at most
    /// [`MAX_RENEWAL_ADDONS`] per transaction, so that the renewal of the rest fits one. Each
    /// batch is one transaction guarded by the workspace's version and the add-ons' statuses
    /// ([`commit_overflow`](Self::commit_overflow)): a concurrent run or a retry finds the
    /// workspace moved and decides again. Returns what the renewal continues from, or `None`
    /// when something moved meanwhile.
    async fn make_room(
        &self,
        mut held: Holding,
        ended: Cycle,
        prices: &[PartnerAddon],
        terms: &PartnerTerms,
    ) -> Result<Option<Holding>, OpError> {
        for _ in 0..MAX_OVERFLOW_BATCHES {
            let overflow = renewal_overflow(&ended, &held.ws.addons);
            if overflow.is_empty() {
                return Ok(Some(held));
            }
            let batch = &overflow[..overflow.len().min(MAX_RENEWAL_ADDONS)];
            let plan_terms = terms.plan(self, &held.ws.partner, held.ws.plan).await?;
            let next = ended.next().map_err(internal)?;
            let decided = overflow_batch(&held, batch, prices, &plan_terms, next, self.clock.now())?;
            match self.commit_overflow(&held, decided, next).await? {
                Some(after) => held = after,
                None => return Ok(None),
            }
        }
        Err(internal(format!("workspace {} has more add-ons due than its renewal lapses", held.ws.id)))
    }

    /// Writes one overflow batch: with a zero-amount `lapse` ledger entry naming the active
    /// add-ons it lapses (keyed by the workspace's version it was decided on), or, when it only
    /// ends cancelled ones, without one.
    async fn commit_overflow(
        &self,
        held: &Holding,
        decided: OverflowBatch,
        next: Cycle,
    ) -> Result<Option<Holding>, OpError> {
        let OverflowBatch { ws, writes, lines } = decided;
        let before = &held.ws;
        if lines.is_empty() {
            return match self.store.write(writes).await {
                Ok(()) => Ok(Some(Holding { ws, state: held.state })),
                Err(StoreError::ConditionFailed { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        let key = format!("{}:{}:overflow:{}", before.id, format_date(before.renews_on), before.version);
        let idempotency = IdempotencyKey::new(RENEWAL_SCOPE, &key, key.as_bytes())
            .map_err(|_| internal(format!("renewal key {key} is not a key")))?;
        let reason = format!(
            "more add-ons fell due at once than the {MAX_RENEWAL_ADDONS} one renewal carries: the newest lapsed \
             instead of renewing"
        );
        let (cycle_start, cycle_end) = (format_date(next.start()), format_date(next.end()));
        let lapsed = lines.len();
        let posting = store::Posting {
            wallet: WalletId::Workspace(before.id.clone()),
            amount: PointsDelta::ZERO,
            overdraft: Overdraft::Forbid,
            kind: EntryKind::Lapse { cycle_start, cycle_end, lines, shortfall: Points::ZERO, reason },
            actor: Actor::System(RENEWAL_ACTOR.into()),
            at: self.clock.now(),
            idempotency,
            partner: Some(before.partner.clone()),
            in_partner_ledger: true,
            also: writes,
        };
        match self.store.post_from(posting, held.state, |_| json!({ "outcome": "overflow_lapsed" })).await {
            Ok(Outcome::Applied { entry, .. }) => {
                tracing::info!(workspace = %before.id, entry = %entry.id, lapsed, "renewal overflow lapsed");
                Ok(Some(Holding { ws, state: held.state.after(&entry) }))
            }
            Ok(Outcome::Replayed { .. } | Outcome::KeyReused | Outcome::InsufficientBalance { .. })
            | Err(StoreError::ConditionFailed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews `ws` cycle after cycle until it is current or `MAX_CATCH_UP_CYCLES` are done (a
    /// workspace whose renewal failed for a while has several due), and counts each step.
    async fn renew_until_current(&self, ws: &Workspace, terms: &PartnerTerms) -> RenewalRun {
        let mut run = RenewalRun::default();
        let mut hint = Some(ws.clone());
        for _ in 0..MAX_CATCH_UP_CYCLES {
            let next = match self.renew(&ws.id, hint.take(), terms, TopUp::Ask).await {
                Ok(RenewalOutcome::Renewed { renews_on, .. }) => {
                    run.renewed += 1;
                    renews_on
                }
                Ok(RenewalOutcome::Lapsed { renews_on, .. }) => {
                    run.lapsed += 1;
                    renews_on
                }
                Ok(RenewalOutcome::InGrace { .. }) => {
                    run.in_grace += 1;
                    break;
                }
                Ok(RenewalOutcome::AwaitingTopup { .. }) => {
                    run.awaiting_topup += 1;
                    break;
                }
                Ok(RenewalOutcome::NotDue | RenewalOutcome::AlreadyRenewed) => {
                    run.skipped += 1;
                    break;
                }
                Err(e) => {
                    tracing::error!(workspace = %ws.id, error = %e, "renewal failed; it stays due");
                    run.failed += 1;
                    break;
                }
            };
            if next > self.clock.now().date() {
                break;
            }
        }
        run
    }

    /// A page of one shard of the due index (`pk`), earliest renewal first, after `after`: the
    /// workspace profiles it projects, in today's shape, and where the next page starts (`None`:
    /// the shard has no more).
    pub(super) async fn due_page(
        &self,
        pk: &str,
        after: Option<&IndexPosition>,
        limit: usize,
    ) -> Result<(Vec<store::Item>, Option<IndexPosition>), OpError> {
        let items = self
            .store
            .table()
            .query_index(IndexQuery { index: &DUE_INDEX, pk, start_after: after, limit, order: Order::Ascending })
            .await
            .map_err(StoreError::from_table)?;
        let next = match items.last() {
            Some(last) if items.len() == limit => {
                let key = last.key().ok_or_else(|| internal("an index item without its key"))?;
                Some(IndexPosition { key, index_sk: last.str(DUE_INDEX.sort)?.to_owned() })
            }
            _ => None,
        };
        Ok((self.store.upgrade_all(items).await?, next))
    }

    /// Renews every workspace due today, shard by shard, until `out_of_time()` says to stop (it
    /// is asked before each page and each batch: the Lambda passes its deadline less a margin).
    /// Failures are logged and counted, not fatal: the workspace stays due for the next run.
    pub async fn renew_due(
        &self,
        out_of_time: impl Fn() -> bool,
        limits: RenewalLimits,
    ) -> Result<RenewalRun, OpError> {
        let today = format_date(self.clock.now().date());
        let terms = PartnerTerms::default();
        let mut run = RenewalRun::default();
        let page_size = limits.page_size.clamp(1, store::table::MAX_QUERY_LIMIT);
        for shard in 0..keys::DUE_SHARDS {
            let pk = keys::due_pk(shard);
            let mut after: Option<IndexPosition> = None;
            loop {
                if out_of_time() {
                    return Ok(run);
                }
                let (items, next) = self.due_page(&pk, after.as_ref(), page_size).await?;
                let mut due = Vec::new();
                let mut reached_future = false;
                for item in &items {
                    let sk = item.str(DUE_INDEX.sort)?;
                    // `<yyyy-mm-dd>#<workspace>`: dates compare as strings.
                    if sk.get(..10).is_none_or(|d| d > today.as_str()) {
                        reached_future = true;
                        break;
                    }
                    // The index projects the whole profile: the first attempt starts from it.
                    due.push(records::workspace_from(item)?);
                }
                for chunk in due.chunks(limits.concurrency.max(1)) {
                    if out_of_time() {
                        return Ok(run);
                    }
                    let renewals = chunk.iter().map(|ws| {
                        let span = tracing::info_span!("renewal", operation = "renewal", workspace = %ws.id, partner = %ws.partner);
                        tracing::Instrument::instrument(self.renew_until_current(ws, &terms), span)
                    });
                    for counted in join_all(renewals).await {
                        run.add(&counted);
                    }
                }
                match next {
                    Some(next) if !reached_future => after = Some(next),
                    _ => break,
                }
            }
        }
        run.finished = true;
        Ok(run)
    }
}

/// The workspace's write of a renewal (or lapse), guarded by the version it was decided on,
/// with the history items of the add-ons that end.
fn renewal_writes(
    ws: &Workspace,
    plan: &RenewalPlan,
    plan_terms: &Plan,
    lapse: bool,
    next_renews_on: Date,
    now: time::OffsetDateTime,
) -> Result<Vec<Write>, OpError> {
    let mut ended = Vec::new();
    let after: Vec<WorkspaceAddon> = ws
        .addons
        .iter()
        .map(|a| {
            let mut next = a.clone();
            if let Some(line) = plan.lines.iter().find(|l| l.addon_id == a.id) {
                if lapse {
                    next.status = AddonStatus::Lapsed;
                } else {
                    next.period_end = plan.next.end();
                    next.unit_points = line.unit_points;
                }
            } else if plan.ending.contains(&a.id) {
                next.status = AddonStatus::Removed;
            }
            if !next.status.counts_toward_limits() {
                ended.push(next.clone());
            }
            next
        })
        .collect();
    let (_, status) = evaluate(plan_terms, &after, &ws.usage, ws.unpaid()).map_err(internal)?;
    if status != ws.status {
        tracing::info!(workspace = %ws.id, paused = status.is_paused(), "renewal changes the workspace's status");
    }
    let held = after.into_iter().filter(|a| a.status.counts_toward_limits()).collect();
    let updated = Workspace { status, addons: held, renews_on: next_renews_on, version: ws.version + 1, ..ws.clone() };
    let mut writes = vec![Write::Put {
        item: records::workspace_item(&updated),
        condition: Condition::equals(Guard::WorkspaceVersion, "version", Attr::n(ws.version)),
    }];
    writes.extend(ended.iter().map(|a| super::workspace::history_write(&ws.id, a)));
    if lapse && !plan.lines.is_empty() {
        let lapsed: Vec<_> = plan
            .lines
            .iter()
            .map(|l| json!({ "addon_id": l.addon_id, "addon": l.addon, "quantity": l.quantity }))
            .collect();
        let data = json!({ "addons": lapsed, "cycle_start": format_date(plan.next.start()) });
        writes.push(super::events::event_write(
            &ws.partner,
            &ws.id,
            super::events::PartnerEventKind::AddonLapsed,
            data,
            now,
        ));
    }
    writes.extend(super::events::status_event(&ws.partner, &ws.id, &ws.status, &updated.status, now));
    Ok(writes)
}

/// One batch of an overflow's lapse, decided: the workspace (with its add-ons) after it, the
/// writes that take it there, and the lines of the active add-ons it lapses (at the price they
/// would have renewed at).
struct OverflowBatch {
    ws: Workspace,
    writes: Vec<Write>,
    lines: Vec<RenewalLine>,
}

/// Decides one overflow batch: active add-ons of `batch` lapse, cancelled ones end.
fn overflow_batch(
    held: &Holding,
    batch: &[WorkspaceAddon],
    prices: &[PartnerAddon],
    plan_terms: &Plan,
    next: Cycle,
    now: time::OffsetDateTime,
) -> Result<OverflowBatch, OpError> {
    let ws = &held.ws;
    let ended = |a: &WorkspaceAddon| match a.status {
        AddonStatus::Cancelling => AddonStatus::Removed,
        _ => AddonStatus::Lapsed,
    };
    let addons: Vec<WorkspaceAddon> =
        ws.addons.iter().filter(|a| !batch.iter().any(|b| b.id == a.id)).cloned().collect();
    let (_, status) = evaluate(plan_terms, &addons, &ws.usage, ws.unpaid()).map_err(internal)?;
    let updated = Workspace { status, addons, version: ws.version + 1, ..ws.clone() };
    let mut writes = vec![Write::Put {
        item: records::workspace_item(&updated),
        condition: Condition::equals(Guard::WorkspaceVersion, "version", Attr::n(ws.version)),
    }];
    let mut lines = Vec::new();
    for was in batch {
        writes.push(super::workspace::history_write(&ws.id, &WorkspaceAddon { status: ended(was), ..was.clone() }));
        if was.status == AddonStatus::Active {
            let unit_points = prices.iter().find(|p| p.code == was.code).map_or(was.unit_points, |p| p.points);
            let points = unit_points.checked_mul(was.quantity).ok_or_else(|| internal("price out of range"))?;
            let (addon_id, addon, quantity) = (was.id.clone(), was.code, was.quantity);
            lines.push(RenewalLine { addon_id, addon, quantity, unit_points, points });
        }
    }
    if !lines.is_empty() {
        let lapsed: Vec<_> =
            lines.iter().map(|l| json!({ "addon_id": l.addon_id, "addon": l.addon, "quantity": l.quantity })).collect();
        let data = json!({ "addons": lapsed, "cycle_start": format_date(next.start()) });
        let kind = super::events::PartnerEventKind::AddonLapsed;
        writes.push(super::events::event_write(&ws.partner, &ws.id, kind, data, now));
    }
    writes.extend(super::events::status_event(&ws.partner, &ws.id, &ws.status, &updated.status, now));
    Ok(OverflowBatch { ws: updated, writes, lines })
}

/// A partner's add-on prices and plans, read once per scheduled run and shared by its
/// workspaces' renewals. A price edited during a run applies from the next run: the same rule
/// as a price edited during the cycle (it applies at the next renewal), one run later at most.
#[derive(Default)]
struct PartnerTerms {
    prices: Mutex<HashMap<PartnerId, Arc<Vec<PartnerAddon>>>>,
    plans: Mutex<HashMap<(PartnerId, PlanId), Arc<Plan>>>,
}

impl PartnerTerms {
    async fn prices<T: Table>(&self, billing: &Billing<T>, p: &PartnerId) -> Result<Arc<Vec<PartnerAddon>>, OpError> {
        if let Some(known) = self.prices.lock().unwrap_or_else(|e| e.into_inner()).get(p) {
            return Ok(known.clone());
        }
        let read = Arc::new(billing.partner_addons(p).await?);
        self.prices.lock().unwrap_or_else(|e| e.into_inner()).insert(p.clone(), read.clone());
        Ok(read)
    }

    async fn plan<T: Table>(&self, billing: &Billing<T>, p: &PartnerId, id: PlanId) -> Result<Arc<Plan>, OpError> {
        let key = (p.clone(), id);
        if let Some(known) = self.plans.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(known.clone());
        }
        let read = Arc::new(billing.plan(p, id).await?);
        self.plans.lock().unwrap_or_else(|e| e.into_inner()).insert(key, read.clone());
        Ok(read)
    }
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

/// Runs the futures concurrently on this task and returns their outputs in order (a bounded
/// batch: the caller chunks).
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut done = true;
        for (f, out) in pending.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}
