//! Metered usage with two wallets (`domain::usage` holds the rules): recording usage, the
//! access check in front of every call, re-billing settings, and the fold that moves the
//! partners' wholesale charges into their wallets.
//!
//! A usage event is ONE transaction: its idempotency record (keyed by the platform's event id),
//! the wholesale charge as an accrual item (`keys::ACCRUAL_SHARDS`), and, when the workspace is
//! re-billed for the meter, the workspace's wallet debit and ledger entry. The partner's wallet
//! is not in it: every workspace's usage would then rewrite that one item. The fold takes a
//! partner's accruals from a shard, at most [`FOLD_BATCH`] at a time, and in ONE transaction
//! debits the partner's wallet by their sum (one ledger entry listing them per workspace and
//! source) and deletes them, each delete conditioned on the accrual still existing. Two folds
//! of the same accruals can't both land: the second fails on the wallet's version or on a
//! delete, and reads again. Usage written while a fold runs is not in the fold's read and waits
//! for the next one. Nothing is lost, nothing is counted twice.
//!
//! Gating before the fold: the partner's wallet lags its accruals by up to one fold interval, so
//! every accrual also adds its amount to its partner's sum in its shard (`keys::accrued`), in
//! the same transaction, and the fold takes what it folds off that sum in its own. A prepaid
//! partner is gated on its wallet less those sums: at zero, it takes no more usage, folded or
//! not.

use std::collections::BTreeMap;
use std::time::Instant;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use domain::{
    AccessDenied, AccessFacts, Actor, Balance, Currency, EntryKind, LedgerEntry, MeterCode, Overdraft, PartnerId,
    Points, PointsDelta, Rebilling, UnitRate, UsageQuantity, WalletId, WalletMode, WholesaleLine, Workspace,
    WorkspaceId, check_access, usage_charge,
};
use store::records::{self, Accrual, PartnerBilling};
use store::table::MAX_TRANSACTION_ACTIONS;
use store::{
    Attr, Condition, Crossing, Guard, IdempotencyKey, Item, Key, Order, Outcome, PageRequest, Posting, StoreError,
    Table, Write, keys, wallet_state,
};

use super::load::fresh;
use super::{Billing, LedgerPage, MAX_OP_ATTEMPTS, Mutation, OpError, RefillState, Replied, Respond, replayed};

/// Who the partner's ledger names for a fold.
pub const FOLD_ACTOR: &str = "usage-fold";
/// Accruals folded in one transaction: all the actions a transaction has but the wallet's own
/// four (wallet, ledger entry, idempotency record, the month before when a fold begins a new
/// one), the shard's sum the fold takes them off, and the refill request a fold under the
/// partner's threshold writes.
pub const FOLD_BATCH: usize = MAX_TRANSACTION_ACTIONS - 6;
/// Fold transactions one run makes at most (then the next run goes on).
pub const MAX_FOLD_BATCHES_PER_RUN: u32 = 10_000;
/// Workspaces whose partner the access check remembers; past this the memory starts over.
pub const MAX_CACHED_WORKSPACES: usize = 100_000;
/// Longest event id the platform may send (Stripe's idempotency-key limit, which we share).
pub const EVENT_ID_MAX_LEN: usize = 255;

/// One metered usage event, as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    pub workspace_id: WorkspaceId,
    pub meter: MeterCode,
    pub quantity: UsageQuantity,
    /// The platform's id for this usage: the idempotency key (one event is counted once).
    pub event_id: String,
}

/// A usage event recorded: what the partner owes the platform for it (in the platform's
/// currency), and what the workspace was charged if it is re-billed.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecorded {
    pub event: UsageEvent,
    pub wholesale: Points,
    pub currency: Currency,
    pub workspace_charge: Option<UsageCharge>,
}

/// A re-billed workspace's charge for a usage event, at its rate for the meter.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageCharge {
    pub rate: UnitRate,
    pub points: Points,
    pub entry: LedgerEntry,
}

/// A partner's billing mode, as the platform set it.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingModeSet {
    pub partner: PartnerId,
    pub mode: WalletMode,
}

/// The partner wallet: its balance (the folded one), what it owes not folded yet, mode,
/// auto-refill and a page of its ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerWallet {
    pub partner: PartnerId,
    pub currency: Currency,
    pub balance: Balance,
    /// Wholesale charges accrued and not folded into `balance` yet: a prepaid partner is gated
    /// on `balance` less these.
    pub unfolded: Points,
    pub mode: WalletMode,
    pub auto_refill: RefillState,
    pub ledger: LedgerPage,
}

/// What one fold run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FoldRun {
    /// Fold transactions that landed.
    pub batches: u32,
    /// Accruals they folded.
    pub charges: u32,
    /// Batches that another fold took first (read again, nothing written).
    pub raced: u32,
    /// Every shard was empty when the run ended (else it stopped at its limit or deadline).
    pub finished: bool,
}

impl FoldRun {
    pub fn summary(&self) -> Value {
        json!({ "batches": self.batches, "charges": self.charges, "raced": self.raced, "finished": self.finished })
    }
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

/// The item is at `version` (absent at version 0), under `guard`.
fn version_is(guard: Guard, version: u64) -> Condition {
    if version == 0 { Condition::not_exists(guard) } else { Condition::equals(guard, "version", Attr::n(version)) }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl<T: Table> Billing<T> {
    /// Sets the platform's meters; [`Billing::new`] starts with voice minutes at 0.07 USD.
    pub fn with_meters(mut self, meters: domain::Meters) -> Self {
        self.meters = meters;
        self
    }

    pub(super) fn remember_partner(&self, ws: &Workspace) {
        let mut cache = self.partner_of.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_WORKSPACES {
            cache.clear();
        }
        cache.insert(ws.id.clone(), ws.partner.clone());
    }

    pub(super) fn known_partner(&self, w: &WorkspaceId) -> Option<PartnerId> {
        self.partner_of.lock().unwrap_or_else(|p| p.into_inner()).get(w).cloned()
    }

    /// `POST /platform/usage`: records usage that happened, once per `event_id`; a suspended
    /// partner's workspaces are refused (403 `partner_suspended`), nothing recorded. The partner is
    /// charged the wholesale cost (accrued, folded later); a re-billed workspace is charged its
    /// rate in points, and its balance may go below zero. The same event id with another
    /// workspace, meter or quantity is refused.
    pub async fn record_usage(&self, event: &UsageEvent, respond: Respond<'_, UsageRecorded>) -> Replied {
        let printable = event.event_id.bytes().all(|b| b.is_ascii_graphic());
        if event.event_id.is_empty() || event.event_id.len() > EVENT_ID_MAX_LEN || !printable {
            return Err(OpError::invalid("event_id", format!("1 to {EVENT_ID_MAX_LEN} printable ASCII characters")));
        }
        let w = &event.workspace_id;
        // What the event id promises, in a canonical form: "1.5" and "1.50" are one quantity.
        let request = format!("{w}\n{}\n{}", event.meter, event.quantity);
        let idem = IdempotencyKey::new(&format!("usage:{w}"), &event.event_id, request.as_bytes())
            .map_err(|e| OpError::invalid("event_id", e))?;
        for _ in 0..MAX_OP_ATTEMPTS {
            // The event's idempotency record, the workspace and its wallet in one read: the
            // wallet state is the one the debit is conditioned on.
            let wallet = WalletId::Workspace(w.clone());
            // The partner's profile comes in the same read when this instance knows the
            // workspace's partner, else in a read of its own.
            let known = self.known_partner(w);
            let mut needed = vec![keys::workspace_profile(w), keys::wallet(&wallet), keys::workspace_auto_topup(w)];
            needed.extend(known.as_ref().map(keys::partner_profile));
            let read = fresh!(self.load(&idem, &needed).await?);
            let meter = self
                .meters
                .get(&event.meter)
                .ok_or_else(|| OpError::invalid("meter", format!("unknown meter {:?}", event.meter.as_str())))?;
            let wholesale = usage_charge(meter.unit_cost, event.quantity);
            let ws = super::load::workspace(&read, w)?;
            self.remember_partner(&ws);
            let partner_profile = match known {
                Some(p) if p == ws.partner => read.get(&keys::partner_profile(&p)).cloned(),
                _ => self.store.get(&keys::partner_profile(&ws.partner)).await?,
            };
            // Usage is refused before it is recorded: the platform asks the access check before
            // a call, and a suspended partner's workspaces may not make one.
            if super::load::is_suspended(partner_profile.as_ref())? {
                return Err(OpError::AccessDenied(AccessDenied::PartnerSuspended));
            }
            let now = self.clock.now();
            let accrual = Accrual {
                partner: ws.partner.clone(),
                workspace: w.clone(),
                source: format!("usage:{}", event.meter),
                reference: format!("usage#{w}#{}", event.event_id),
                amount: wholesale,
                quantity: Some(event.quantity),
                created_at: now,
                counted: true,
            };
            let accrue = accrual_write(&accrual);
            let recorded = |workspace_charge| UsageRecorded {
                event: event.clone(),
                wholesale,
                currency: self.meters.currency(),
                workspace_charge,
            };
            let Some(rate) = ws.rebilling.rate(&event.meter) else {
                let writes = accrue
                    .into_iter()
                    .chain([Write::Check {
                        key: keys::workspace_profile(w),
                        condition: Condition::exists(Guard::WorkspaceExists),
                    }])
                    .collect();
                let reply = respond(&recorded(None));
                return self.commit(&idem, writes, reply, |_| OpError::NotFound("workspace")).await;
            };
            let charged = usage_charge(rate, event.quantity);
            let posting = Posting {
                wallet: wallet.clone(),
                amount: PointsDelta::debit(charged),
                // Minutes already spoken can't be refused afterwards.
                overdraft: Overdraft::Allow,
                kind: EntryKind::Usage {
                    meter: event.meter.clone(),
                    quantity: event.quantity,
                    rate,
                    event_id: event.event_id.clone(),
                },
                actor: Actor::System("platform".into()),
                at: now,
                idempotency: idem.clone(),
                partner: Some(ws.partner.clone()),
                // Not in the partner's cross-workspace ledger index: every re-billed event of
                // every workspace would add an item to its one partition (measured:
                // usage-bench). A partner sees usage in each workspace's ledger, and summed per
                // workspace in its own wallet's fold entries.
                in_partner_ledger: false,
                // Re-billing is read from the profile; a change of it in between starts over.
                also: accrue
                    .into_iter()
                    .chain([Write::Check {
                        key: keys::workspace_profile(w),
                        condition: Condition::equals(Guard::WorkspaceVersion, "version", Attr::n(ws.version)),
                    }])
                    .collect(),
            };
            let reply = |e: &LedgerEntry| {
                respond(&recorded(Some(UsageCharge { rate, points: charged, entry: e.clone() }))).to_stored()
            };
            let state = wallet_state(read.get(&keys::wallet(&wallet)))?;
            let auto_topup = read.get(&keys::workspace_auto_topup(w));
            let auto_topup = auto_topup.map(records::auto_topup_from).transpose()?.unwrap_or_default();
            let mut crossings = vec![low_balance_event(&ws, &auto_topup, &event.event_id)];
            crossings.extend(super::charging::refill_crossing(&wallet, &auto_topup, now));
            match self.store.post_crossing(posting, state, &crossings, reply).await {
                Ok(Outcome::Applied { response, .. }) => return replayed(response),
                Ok(Outcome::Replayed { response }) => return replayed(response),
                Ok(Outcome::KeyReused) => return Err(OpError::KeyReused),
                Ok(Outcome::InsufficientBalance { .. }) => {
                    return Err(internal("usage is allowed to overdraw, yet was refused"));
                }
                Err(StoreError::ConditionFailed { failed }) if failed.contains(Guard::WorkspaceVersion) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// `N` items in one consistent read.
    pub(super) async fn read<const N: usize>(&self, keys: [Key; N]) -> Result<[Option<Item>; N], OpError> {
        let items = self.store.get_many(&keys).await?;
        items.try_into().map_err(|_| internal("a batch read answered another number of items"))
    }

    /// `GET /platform/workspaces/{id}/access?meter=`: may the workspace use `meter` now? `Ok` if
    /// it may, else the reason it may not.
    /// One `BatchGetItem` of the workspace, its wallet, its partner's wallet, billing mode and
    /// profile (a suspended partner's workspaces may not), and the sums of the partner's
    /// charges not folded yet, which a prepaid partner's wallet is read less of (plus one read
    /// of the workspace the first time this instance sees it, for its partner).
    pub async fn access(&self, w: &WorkspaceId, meter: &MeterCode) -> Result<(), OpError> {
        if self.meters.get(meter).is_none() {
            return Err(OpError::invalid("meter", format!("unknown meter {:?}", meter.as_str())));
        }
        let partner = match self.known_partner(w) {
            Some(p) => p,
            None => {
                let ws = self.workspace(w).await?;
                self.remember_partner(&ws);
                ws.partner
            }
        };
        let partner_wallet = WalletId::Partner(partner.clone());
        let mut needed = vec![
            keys::workspace_profile(w),
            keys::wallet(&WalletId::Workspace(w.clone())),
            keys::wallet(&partner_wallet),
            keys::partner_billing(&partner),
            keys::partner_profile(&partner),
        ];
        needed.extend(keys::accrued_all(&partner));
        let items = self.store.get_many(&needed).await?;
        let [profile, wallet, partner_wallet, billing, partner_profile] = [0, 1, 2, 3, 4].map(|i| items[i].as_ref());
        let accrued: Vec<Option<&Item>> = items[5..].iter().map(Option::as_ref).collect();
        let ws = records::workspace_from(profile.ok_or(OpError::NotFound("workspace"))?)?;
        let facts = AccessFacts {
            partner_suspended: super::load::is_suspended(partner_profile)?,
            status: &ws.status,
            rebilled: ws.rebilling.rate(meter).is_some(),
            workspace_balance: wallet_state(wallet)?.balance,
            partner_mode: records::partner_billing_from(billing)?.mode,
            partner_balance: partner_standing(partner_wallet, &accrued)?,
        };
        check_access(facts).map_err(OpError::AccessDenied)
    }

    /// `PUT /partner/workspaces/{id}/rebilling`: re-billing on or off, and the rate per meter.
    pub async fn put_rebilling(
        &self,
        p: &PartnerId,
        w: &WorkspaceId,
        rebilling: Rebilling,
        m: Mutation<'_, Workspace>,
    ) -> Replied {
        let needed = [keys::partner_credit_rate(p), keys::workspace_profile(w)];
        let read = fresh!(self.load_for_partner(p, m.key(), &needed).await?);
        let rate = super::load::credit_rate(&read, p)?;
        self.check_rebilling(rate.as_ref(), &rebilling, "")?;
        // The workspace as read with the request, then as it is after each lost race.
        let mut ws = super::load::partner_workspace(&read, p, w)?;
        for _ in 0..MAX_OP_ATTEMPTS {
            let updated = Workspace { rebilling: rebilling.clone(), version: ws.version + 1, ..ws.clone() };
            let reply = m.answer(&updated);
            let writes = vec![Write::Put {
                item: records::workspace_item(&updated),
                condition: version_is(Guard::WorkspaceVersion, ws.version),
            }];
            match self.commit(m.key(), writes, reply, |_| OpError::Conflict).await {
                Err(OpError::Conflict) => ws = self.partner_workspace(p, w).await?,
                other => return other,
            }
        }
        Err(OpError::Conflict)
    }

    /// Re-billing rates against the platform's meters and the partner's price of a point; a
    /// refusal names the field under `param_prefix` (`default_rebilling.` in the settings).
    pub(super) fn check_rebilling(
        &self,
        terms: Option<&domain::CreditRateTerms>,
        rebilling: &Rebilling,
        param_prefix: &str,
    ) -> Result<(), OpError> {
        rebilling
            .validate(&self.meters, terms.map(|t| t.rate()))
            .map_err(|(param, e)| OpError::invalid(&format!("{param_prefix}{param}"), e))
    }

    /// The partner's billing mode (postpaid unless the platform set it).
    pub async fn partner_billing(&self, p: &PartnerId) -> Result<PartnerBilling, OpError> {
        let item = self.store.get(&keys::partner_billing(p)).await?;
        Ok(records::partner_billing_from(item.as_ref())?)
    }

    /// `PUT /platform/partners/{id}/billing`: the platform makes a partner prepaid or postpaid.
    pub async fn put_partner_billing(
        &self,
        p: &PartnerId,
        mode: WalletMode,
        m: Mutation<'_, BillingModeSet>,
    ) -> Replied {
        let read = fresh!(self.load(m.key(), &[keys::partner_profile(p), keys::partner_billing(p)]).await?);
        super::load::partner_profile(&read, p)?;
        // The mode as read with the request, then as it is after each lost race.
        let mut current = records::partner_billing_from(read.get(&keys::partner_billing(p)))?;
        for _ in 0..MAX_OP_ATTEMPTS {
            let next = PartnerBilling { mode, version: current.version + 1 };
            let writes = vec![
                Write::Put {
                    item: records::partner_billing_item(p, &next, self.clock.now()),
                    condition: version_is(Guard::BillingVersion, current.version),
                },
                Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
            ];
            let reply = m.answer(&BillingModeSet { partner: p.clone(), mode });
            match self
                .commit(m.key(), writes, reply, |failed| {
                    if failed.contains(Guard::BillingVersion) {
                        OpError::Conflict
                    } else {
                        OpError::NotFound("partner")
                    }
                })
                .await
            {
                Err(OpError::Conflict) => current = self.partner_billing(p).await?,
                other => return other,
            }
        }
        Err(OpError::Conflict)
    }

    /// `POST /platform/partners/{id}/wallet/adjustments`: the platform credits (a payment it
    /// received) or debits (a correction) a partner's wallet, with a reason.
    pub async fn adjust_partner_wallet(
        &self,
        p: &PartnerId,
        amount: PointsDelta,
        reason: &str,
        actor: Actor,
        m: Mutation<'_, LedgerEntry>,
    ) -> Replied {
        let wallet = WalletId::Partner(p.clone());
        let read = fresh!(self.load(m.key(), &[keys::partner_profile(p), keys::wallet(&wallet)]).await?);
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > super::REASON_MAX_CHARS {
            return Err(OpError::invalid(
                "reason",
                format!("a reason of 1 to {} characters is required", super::REASON_MAX_CHARS),
            ));
        }
        super::load::partner_profile(&read, p)?;
        let state = wallet_state(read.get(&keys::wallet(&wallet)))?;
        let posting = Posting {
            wallet,
            amount,
            // The platform settles a postpaid partner's statement: a correction may overdraw.
            overdraft: Overdraft::Allow,
            kind: EntryKind::Adjustment { reason: reason.to_owned() },
            actor,
            at: self.clock.now(),
            idempotency: m.key().clone(),
            partner: None,
            in_partner_ledger: false,
            also: vec![Write::Check {
                key: keys::partner_profile(p),
                condition: Condition::exists(Guard::PartnerExists),
            }],
        };
        match self.store.post_from(posting, state, |e| m.answer(e).to_stored()).await {
            Ok(Outcome::Applied { response, .. }) | Ok(Outcome::Replayed { response }) => replayed(response),
            Ok(Outcome::KeyReused) => Err(OpError::KeyReused),
            Ok(Outcome::InsufficientBalance { .. }) => Err(internal("an adjustment that may overdraw was refused")),
            Err(StoreError::ConditionFailed { .. }) => Err(OpError::NotFound("partner")),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /partner/wallet`: the partner's wallet in the platform's currency, its mode and a
    /// page of its ledger. The balance is the folded one: charges still waiting for the fold are
    /// not in it (see the module doc).
    pub async fn partner_wallet(
        &self,
        p: &PartnerId,
        page: PageRequest<store::LedgerCursor>,
    ) -> Result<PartnerWallet, OpError> {
        let wallet = WalletId::Partner(p.clone());
        // The profile (a partner that doesn't exist is 404), the wallet, its mode and the sums of
        // its charges not folded yet, in one read.
        let mut needed = vec![keys::partner_profile(p), keys::wallet(&wallet), keys::partner_billing(p)];
        needed.extend(keys::accrued_all(p));
        let items = self.store.get_many(&needed).await?;
        records::partner_profile_from(items[0].as_ref().ok_or(OpError::NotFound("partner"))?)?;
        let state = wallet_state(items[1].as_ref())?;
        let billing = records::partner_billing_from(items[2].as_ref())?;
        let unfolded = records::accrued_from(items[3..].iter().map(Option::as_ref))?;
        let page = self.store.ledger(&wallet, page.after.as_ref(), page.limit, Order::Descending).await?;
        Ok(PartnerWallet {
            partner: p.clone(),
            currency: self.meters.currency(),
            balance: state.balance,
            unfolded,
            mode: billing.mode,
            auto_refill: self.partner_refill_state(p).await?,
            ledger: LedgerPage { items: page.items, next_cursor: page.next.map(|c| c.encode(&wallet)) },
        })
    }

    /// Folds every shard's accruals into their partners' wallets, batch by batch, until all are
    /// empty, [`MAX_FOLD_BATCHES_PER_RUN`] batches were made, or `deadline` passed.
    pub async fn fold_all(&self, deadline: Option<Instant>) -> Result<FoldRun, OpError> {
        let mut run = FoldRun::default();
        for shard in 0..keys::ACCRUAL_SHARDS {
            loop {
                if run.batches + run.raced >= MAX_FOLD_BATCHES_PER_RUN || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    return Ok(run);
                }
                match self.fold_once(shard, None).await? {
                    Folded::Empty => break,
                    Folded::Batch(n) => {
                        run.batches += 1;
                        run.charges += n;
                    }
                    Folded::Raced => run.raced += 1,
                }
            }
        }
        run.finished = true;
        Ok(run)
    }

    /// Folds one partner's accruals, in every shard (an admin's or a test's "now").
    pub async fn fold_partner(&self, p: &PartnerId) -> Result<FoldRun, OpError> {
        let mut run = FoldRun::default();
        for shard in 0..keys::ACCRUAL_SHARDS {
            while run.batches + run.raced < MAX_FOLD_BATCHES_PER_RUN {
                match self.fold_once(shard, Some(p)).await? {
                    Folded::Empty => break,
                    Folded::Batch(n) => {
                        run.batches += 1;
                        run.charges += n;
                    }
                    Folded::Raced => run.raced += 1,
                }
            }
        }
        run.finished = run.batches + run.raced < MAX_FOLD_BATCHES_PER_RUN;
        Ok(run)
    }

    /// One fold transaction: the first partner's accruals at the head of `shard` (or `only`'s).
    async fn fold_once(&self, shard: u32, only: Option<&PartnerId>) -> Result<Folded, OpError> {
        let prefix = only.map(keys::accrual_prefix).unwrap_or_default();
        let items = self.store.query_prefix(&keys::accrual_pk(shard), &prefix, None, FOLD_BATCH).await?;
        let accruals = items.iter().map(records::accrual_from).collect::<Result<Vec<_>, _>>()?;
        let Some(first) = accruals.first() else { return Ok(Folded::Empty) };
        let p = first.partner.clone();
        let batch: Vec<&Accrual> = accruals.iter().take_while(|a| a.partner == p).collect();
        let mut total = Decimal::ZERO;
        // What the batch takes off the shard's sum: the accruals that added to it.
        let mut counted = Decimal::ZERO;
        let mut lines: BTreeMap<(String, String), (u32, Decimal, Decimal)> = BTreeMap::new();
        let mut refs = String::new();
        for a in &batch {
            total += a.amount.as_decimal();
            if a.counted {
                counted += a.amount.as_decimal();
            }
            let line = lines.entry((a.workspace.to_string(), a.source.clone())).or_default();
            line.0 += 1;
            line.1 += a.quantity.map_or(Decimal::ZERO, |q| q.as_decimal());
            line.2 += a.amount.as_decimal();
            refs.push_str(&a.reference);
            refs.push('\n');
        }
        let total =
            Points::from_decimal(total).map_err(|_| OpError::Internal("a fold's sum is out of range".into()))?;
        let lines = lines
            .into_iter()
            .map(|((workspace_id, source), (charges, quantity, amount))| WholesaleLine {
                quantity: source.starts_with("usage:").then(|| quantity.normalize().to_string()),
                amount: Points::from_decimal(amount).map(|a| a.to_string()).unwrap_or_default(),
                workspace_id,
                source,
                charges,
            })
            .collect();
        let count = u32::try_from(batch.len()).expect("a batch is at most FOLD_BATCH");
        // The same accruals make the same key: a fold retried after an unclear failure is
        // answered by the first one's record.
        let idempotency = IdempotencyKey::new(&format!("fold:{p}"), &hex_sha256(refs.as_bytes()), refs.as_bytes())
            .map_err(internal)?;
        let posting = Posting {
            wallet: WalletId::Partner(p.clone()),
            amount: PointsDelta::debit(total),
            // Usage that happened is owed, whatever the balance.
            overdraft: Overdraft::Allow,
            kind: EntryKind::WholesaleCharges { charges: count, lines },
            actor: Actor::System(FOLD_ACTOR.into()),
            at: self.clock.now(),
            idempotency,
            partner: None,
            in_partner_ledger: false,
            also: batch
                .iter()
                .map(|a| Write::Delete {
                    key: keys::accrual(&a.workspace, &a.partner, &a.reference),
                    condition: Condition::exists(Guard::AccrualExists),
                })
                .chain((!counted.is_zero()).then(|| records::accrued_write(&p, shard, -counted)))
                .collect(),
        };
        let [wallet, refill] = self.read([keys::wallet(&posting.wallet), keys::partner_refill(&p)]).await?;
        let state = store::wallet_state(wallet.as_ref())?;
        let refill = super::partner_wallet::refill_setting(refill.as_ref())?;
        let crossings: Vec<Crossing> =
            super::charging::refill_crossing(&posting.wallet, &refill.auto, posting.at).into_iter().collect();
        match self
            .store
            .post_crossing(posting, state, &crossings, |e| json!({ "ledger_entry": e.id.to_string() }))
            .await
        {
            Ok(Outcome::Applied { .. }) => {
                tracing::info!(partner = %p, shard, charges = count, amount = %total, "usage folded");
                Ok(Folded::Batch(count))
            }
            // Folded before under the same key, or another fold took some of these first.
            Ok(Outcome::Replayed { .. }) | Err(StoreError::ConditionFailed { .. }) => Ok(Folded::Raced),
            Ok(other) => Err(internal(format!("a fold came to {other:?}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// The accruals still waiting to be folded for partner `p` (tests and the admin's check).
    pub async fn unfolded(&self, p: &PartnerId) -> Result<Vec<Accrual>, OpError> {
        let mut all = Vec::new();
        for shard in 0..keys::ACCRUAL_SHARDS {
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .store
                    .query_prefix(&keys::accrual_pk(shard), &keys::accrual_prefix(p), after.as_deref(), 500)
                    .await?;
                let more = page.len() == 500;
                after = page.last().map(|i| i.str(store::item::SK).map(str::to_owned)).transpose()?;
                all.extend(page.iter().map(records::accrual_from).collect::<Result<Vec<_>, _>>()?);
                if !more {
                    break;
                }
            }
        }
        Ok(all)
    }
}

/// What an add-on costs the partner for `quantity` from `date` to the cycle's end: the
/// platform's cost price, prorated exactly like the workspace's price (`domain::prorate`):
/// an extra bot at 5.00 USD bought on 15 April of a 1-30 April cycle costs 2.50.
pub(super) fn addon_cost(
    code: domain::AddonCode,
    quantity: u32,
    cycle: &domain::Cycle,
    date: time::Date,
) -> Result<Points, OpError> {
    let unit = Points::from_decimal(code.cost_price().as_major()).map_err(internal)?;
    Ok(domain::prorate(unit, quantity, cycle, date).map_err(|e| OpError::invalid("quantity", e))?.amount())
}

/// `wallet.low_balance` for the partner, in the transaction of the usage debit that crossed
/// into "low": under the workspace's refill threshold when it has one on, else at or below zero
/// (where the access check starts refusing).
fn low_balance_event(ws: &Workspace, auto_topup: &domain::AutoTopup, event_id: &str) -> Crossing {
    let threshold = auto_topup.threshold.filter(|_| auto_topup.enabled);
    // "At or below zero" is "under the smallest positive balance".
    let below = match threshold {
        Some(t) => Balance::from_decimal(t.as_decimal()).expect("a threshold is a balance"),
        None => Balance::from_decimal(Decimal::new(1, domain::BALANCE_DP)).expect("0.0001 is a balance"),
    };
    let (partner, w, event_id) = (ws.partner.clone(), ws.id.clone(), event_id.to_owned());
    Crossing {
        below,
        across: true,
        write: std::sync::Arc::new(move |e: &LedgerEntry| {
            let data = json!({
                "balance": e.balance_after.to_string(),
                "threshold": threshold.map(|t| t.to_string()),
                "ledger_entry": e.id.to_string(),
                "usage_event_id": event_id,
            });
            super::events::event_write(
                &partner,
                &w,
                super::events::PartnerEventKind::WalletLowBalance,
                data,
                e.created_at,
            )
        }),
    }
}

/// The writes of a new accrual: the accrual, and its addition to its shard's sum (none for
/// nothing owed).
pub(super) fn accrual_write(a: &Accrual) -> Vec<Write> {
    if a.amount.is_zero() {
        return Vec::new();
    }
    vec![
        Write::Put { item: records::accrual_item(a), condition: Condition::not_exists(Guard::AccrualNew) },
        records::accrued_write(&a.partner, keys::accrual_shard(&a.workspace), a.amount.as_decimal()),
    ]
}

enum Folded {
    Empty,
    Batch(u32),
    Raced,
}

/// What a partner's wallet holds once the wholesale charges not folded yet are taken off: what
/// gates its workspaces, so a wallet at zero takes no more between two folds.
pub(super) fn partner_standing(wallet: Option<&Item>, accrued: &[Option<&Item>]) -> Result<Balance, OpError> {
    let balance = wallet_state(wallet)?.balance;
    let unfolded = records::accrued_from(accrued.iter().copied())?;
    balance.apply(PointsDelta::debit(unfolded)).ok_or_else(|| internal("a partner's standing is out of range"))
}

/// Whether a prepaid partner's wallet, less what it owes unfolded, still allows purchases
/// (postpaid always does). `read` holds its billing mode, wallet and [`keys::accrued_all`].
pub(super) fn partner_may_spend(read: &store::Snapshot, p: &PartnerId) -> Result<(), OpError> {
    let mode = records::partner_billing_from(read.get(&keys::partner_billing(p)))?.mode;
    if mode == WalletMode::Postpaid {
        return Ok(());
    }
    let accrued: Vec<Option<&Item>> = keys::accrued_all(p).iter().map(|k| read.get(k)).collect();
    if !mode.allows(partner_standing(read.get(&keys::wallet(&WalletId::Partner(p.clone()))), &accrued)?) {
        return Err(OpError::AccessDenied(AccessDenied::PartnerWalletDepleted));
    }
    Ok(())
}
