//! Workspaces: creation, views, add-ons bought or given, points adjusted, plan and usage
//! changes; every change re-evaluates pause/resume in the same transaction.

use domain::{
    Actor, AddonCode, AddonId, AddonStatus, AnchorDay, Balance, Cycle, EntryKind, LedgerEntry, Limits, Overdraft,
    PartnerAddon, PartnerId, Plan, PlanId, Points, PointsDelta, Prorated, Usage, WalletId, Workspace, WorkspaceAddon,
    WorkspaceId, WorkspaceStatus, check_label, evaluate, prorate, room_for_addon,
};
use store::{
    Committed, Condition, Guard, Key, LedgerCursor, Order, Outcome, PageRequest, PartnerLedgerCursor, Posting,
    Snapshot, StoreError, Table, Write, keys, records, wallet_state,
};

use super::load::{Asker, fresh};
use super::refill::{RefillState, Setting};
use super::{Billing, MAX_OP_ATTEMPTS, Mutation, OpError, Page, Replied, replayed};

/// What [`Billing::settle_status`] found.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Settled {
    /// The stored status is the evaluated one already.
    Unchanged,
    /// The status changed and is stored, with its event.
    Changed(WorkspaceStatus),
    /// The workspace moved since it was read: nothing was written; read it again.
    Moved,
}

/// The status a partner's workspace list is filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedStatus {
    Active,
    Paused,
}

impl ListedStatus {
    /// `active` or `paused`, as the status is named everywhere.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "paused" => Some(Self::Paused),
            _ => None,
        }
    }

    fn paused(self) -> bool {
        self == Self::Paused
    }
}

/// A workspace to provision under a chosen id ([`Billing::create_workspace`]).
#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub id: WorkspaceId,
    pub name: String,
    pub plan: PlanId,
    /// Day of the month cycles start; the creation day when not given.
    pub anchor: Option<AnchorDay>,
}

/// What a partner gives to create a workspace; the API assigns its id
/// ([`Billing::create_assigned_workspace`]).
#[derive(Debug, Clone)]
pub struct WorkspaceDraft {
    pub name: String,
    pub plan: PlanId,
    /// Day of the month cycles start; the creation day when not given.
    pub anchor: Option<AnchorDay>,
}

/// Longest reason a partner may give for an adjustment.
pub const REASON_MAX_CHARS: usize = 500;

/// A partner's manual change to a workspace's points.
#[derive(Debug, Clone)]
pub struct PointsAdjustment {
    /// Positive adds, negative deducts.
    pub amount: PointsDelta,
    pub reason: String,
    /// A deduction may take the balance below zero only when the partner says so.
    pub allow_negative: bool,
    pub actor: Actor,
}

/// A workspace add-on purchase, by the workspace (always charged) or by its partner.
#[derive(Debug, Clone)]
pub struct AddonOrder {
    pub code: AddonCode,
    pub quantity: u32,
    pub by_partner: bool,
    /// Debit the prorated points; a partner's grant is free unless it says otherwise.
    pub charge: bool,
    pub actor: Actor,
}

/// An add-on a workspace holds, with its partner's label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledAddon {
    pub addon: WorkspaceAddon,
    pub label: String,
}

/// A workspace with everything its owner needs at a glance: what its creation answers, and
/// [`Billing::workspace_details`].
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceDetails {
    /// Its status evaluated on its plan as it is now.
    pub workspace: Workspace,
    pub cycle: Cycle,
    pub limits: Limits,
    pub balance: Balance,
    /// Add-ons that still count.
    pub addons: Vec<LabelledAddon>,
    pub auto_topup: RefillState,
    /// What its partner calls its points (`credits`, `tokens`).
    pub unit_name: String,
    /// Its partner's brand, for the white-label billing page.
    pub brand: ShownBrand,
}

/// A partner's brand as its workspaces' page shows it: the name it chose, else its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownBrand {
    pub name: String,
    pub brand: domain::Brand,
}

impl ShownBrand {
    pub fn of(profile: &records::PartnerProfile) -> Self {
        let brand = profile.settings.brand.clone();
        Self { name: brand.name.clone().unwrap_or_else(|| profile.name.clone()), brand }
    }
}

/// A workspace after a change, or as evaluated now: its plan, usage, effective limits and status.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceState {
    pub workspace: Workspace,
    pub limits: Limits,
}

/// What a workspace may buy (enabled add-ons only), and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceAddons {
    pub offers: Vec<PartnerAddon>,
    pub owned: Vec<LabelledAddon>,
}

/// A page of a ledger, newest first.
pub type LedgerPage = Page<LedgerEntry>;

/// An add-on bought or given: what it cost now for the rest of `cycle`, its ledger entry, and
/// the workspace after it.
#[derive(Debug, Clone, PartialEq)]
pub struct AddonAdded {
    pub addon: LabelledAddon,
    /// Debited now: the prorated price, or nothing for a partner's free grant.
    pub charged: Points,
    pub prorated: Prorated,
    pub cycle: Cycle,
    pub entry: LedgerEntry,
    pub after: WorkspaceState,
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

impl<T: Table> Billing<T> {
    /// Creates a workspace of `p` under an id the API draws ([`WorkspaceId::generate`]): the
    /// partners' route. Its answer never depends on the ids other partners use: a drawn id
    /// that exists already is drawn again, never reported. A retry with the same idempotency
    /// key answers the id of the first.
    pub async fn create_assigned_workspace(
        &self,
        p: &PartnerId,
        draft: WorkspaceDraft,
        m: Mutation<'_, WorkspaceDetails>,
    ) -> Replied {
        let read = fresh!(self.load_for_partner(p, m.key(), &[keys::partner_plan(p, draft.plan)]).await?);
        for _ in 0..MAX_OP_ATTEMPTS {
            let WorkspaceDraft { name, plan, anchor } = draft.clone();
            let new = NewWorkspace { id: WorkspaceId::generate(), name, plan, anchor };
            match self.insert_workspace(p, new, &read, m).await {
                Err(OpError::AlreadyExists(_)) => continue,
                done => return done,
            }
        }
        Err(OpError::Conflict)
    }

    /// Provisions a workspace of `p` under the id the caller chose: the local runner's demo
    /// data, tests and benchmarks. No HTTP route reaches it; an id in use answers
    /// `AlreadyExists`.
    pub async fn create_workspace(
        &self,
        p: &PartnerId,
        new: NewWorkspace,
        m: Mutation<'_, WorkspaceDetails>,
    ) -> Replied {
        let needed = [keys::partner_profile(p), keys::partner_plan(p, new.plan)];
        let read = fresh!(self.load(m.key(), &needed).await?);
        self.insert_workspace(p, new, &read, m).await
    }

    /// Writes a new workspace of `p` on its plan and the partner's settings, as `read` holds them.
    async fn insert_workspace(
        &self,
        p: &PartnerId,
        new: NewWorkspace,
        read: &Snapshot,
        m: Mutation<'_, WorkspaceDetails>,
    ) -> Replied {
        let name = check_label(&new.name).map_err(|e| OpError::invalid("name", e))?;
        let now = self.clock.now();
        let plan = super::load::plan(read, p, new.plan)?;
        // A workspace starts with its partner's default re-billing (checked when it was saved).
        let profile = super::load::partner_profile(read, p)?;
        let brand = ShownBrand::of(&profile);
        let settings = profile.settings;
        let anchor = new.anchor.unwrap_or_else(|| AnchorDay::of(now.date()));
        let cycle = Cycle::containing(anchor, now.date()).map_err(internal)?;
        let ws = Workspace {
            id: new.id.clone(),
            partner: p.clone(),
            name,
            plan: new.plan,
            anchor,
            usage: Usage::default(),
            status: WorkspaceStatus::Active,
            addons: vec![],
            renews_on: domain::renews_on(&cycle).map_err(internal)?,
            rebilling: settings.default_rebilling,
            subscription: None,
            version: 1,
            created_at: now,
        };
        let writes = vec![
            Write::Put { item: records::workspace_item(&ws), condition: Condition::not_exists(Guard::WorkspaceNew) },
            Write::Put {
                item: records::workspace_ref_item(p, &ws),
                condition: Condition::not_exists(Guard::WorkspaceNew),
            },
            Write::Put {
                item: records::empty_customer_slot_item(&ws.id),
                condition: Condition::not_exists(Guard::WorkspaceNew),
            },
            Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
        ];
        let reply = m.answer(&WorkspaceDetails {
            workspace: ws,
            cycle,
            limits: plan.limits,
            balance: Default::default(),
            addons: vec![],
            auto_topup: RefillState::new(&Setting { auto: Default::default(), amount: None }, false, now),
            unit_name: settings.unit_name.clone(),
            brand,
        });
        self.commit(m.key(), writes, reply, |failed| {
            if failed.contains(Guard::WorkspaceNew) {
                OpError::AlreadyExists("workspace")
            } else {
                OpError::NotFound("partner")
            }
        })
        .await
    }

    /// A partner's workspaces in id order with their balances, `limit` at a time, those in
    /// `status` only if it is given: one Query of the workspace-list index a page.
    pub async fn list_workspaces(
        &self,
        p: &PartnerId,
        after: Option<&WorkspaceId>,
        limit: usize,
        status: Option<ListedStatus>,
    ) -> Result<store::Page<store::Listed, WorkspaceId>, OpError> {
        self.partner_settings(p).await?;
        let in_status = |ws: &records::ListedWorkspace| Some(ws.status.is_paused()) == status.map(ListedStatus::paused);
        let filter: Option<&(dyn Fn(&records::ListedWorkspace) -> bool + Sync)> = status.map(|_| &in_status as _);
        Ok(self.store.workspace_list(p, after, limit, filter).await?)
    }

    /// The workspace as its owner (or its partner) sees it.
    pub async fn workspace_details(&self, ws: &Workspace) -> Result<WorkspaceDetails, OpError> {
        let plan = self.plan(&ws.partner, ws.plan).await?;
        // Evaluated now, not read back: a plan edited since the last change shows at once.
        let (limits, status) = evaluate(&plan, &ws.addons, &ws.usage, ws.unpaid()).map_err(internal)?;
        let ws = Workspace { status, ..ws.clone() };
        let balance = self.store.wallet(&WalletId::Workspace(ws.id.clone())).await?.balance;
        let cycle = Cycle::containing(ws.anchor, self.clock.now().date()).map_err(internal)?;
        let mut addons = Vec::new();
        for a in &ws.addons {
            let label = self.partner_addon(&ws.partner, a.code).await?.label;
            addons.push(LabelledAddon { addon: a.clone(), label });
        }
        let auto_topup = self.auto_topup_state(&ws).await?;
        let profile = self.partner_profile(&ws.partner).await?;
        let brand = ShownBrand::of(&profile);
        let unit_name = profile.settings.unit_name;
        Ok(WorkspaceDetails { workspace: ws, cycle, limits, balance, addons, auto_topup, unit_name, brand })
    }

    /// What a workspace may buy (labels and points, never cost prices), and what it holds.
    pub async fn workspace_addons(&self, ws: &Workspace) -> Result<WorkspaceAddons, OpError> {
        let offers = self.partner_addons(&ws.partner).await?;
        let label =
            |code: AddonCode| offers.iter().find(|o| o.code == code).map(|o| o.label.clone()).unwrap_or_default();
        let owned = ws.addons.iter().map(|a| LabelledAddon { addon: a.clone(), label: label(a.code) }).collect();
        Ok(WorkspaceAddons { offers: offers.into_iter().filter(|o| o.enabled).collect(), owned })
    }

    /// Effective limits and status, for the platform.
    pub async fn entitlements(&self, ws: &Workspace) -> Result<WorkspaceState, OpError> {
        let plan = self.plan(&ws.partner, ws.plan).await?;
        let (limits, status) = evaluate(&plan, &ws.addons, &ws.usage, ws.unpaid()).map_err(internal)?;
        Ok(WorkspaceState { workspace: Workspace { status, ..ws.clone() }, limits })
    }

    /// A page of a workspace's ledger, newest first.
    pub async fn workspace_ledger(
        &self,
        w: &WorkspaceId,
        page: PageRequest<LedgerCursor>,
    ) -> Result<LedgerPage, OpError> {
        let wallet = WalletId::Workspace(w.clone());
        let page = self.store.ledger(&wallet, page.after.as_ref(), page.limit, Order::Descending).await?;
        Ok(LedgerPage { items: page.items, next_cursor: page.next.map(|c| c.encode(&wallet)) })
    }

    /// A page of the partner's ledger across all its workspaces, newest first.
    pub async fn partner_ledger(
        &self,
        p: &PartnerId,
        page: PageRequest<PartnerLedgerCursor>,
    ) -> Result<LedgerPage, OpError> {
        self.partner_settings(p).await?;
        let page = self.store.partner_ledger(p, page.after.as_ref(), page.limit).await?;
        Ok(LedgerPage { items: page.items, next_cursor: page.next.map(|c| c.encode(p)) })
    }

    /// Buys (or, for a partner, grants) an add-on: the prorated points are debited in ONE
    /// transaction with the new add-on, the ledger entry, the idempotency record and the
    /// workspace's re-evaluated status. If the workspace changed meanwhile, it starts over.
    ///
    /// Each attempt reads the workspace (with the add-ons it holds), its wallet, its partner's
    /// profile, add-on terms, plans, wallet and billing mode with the idempotency record in one
    /// `BatchGetItem`.
    pub async fn add_addon(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        order: &AddonOrder,
        m: Mutation<'_, AddonAdded>,
    ) -> Replied {
        let wallet = WalletId::Workspace(w.clone());
        let needed = |p: &PartnerId| {
            let mut keys: Vec<Key> = PlanId::ALL.iter().map(|id| keys::partner_plan(p, *id)).collect();
            keys.extend([
                keys::wallet(&wallet),
                keys::partner_profile(p),
                keys::partner_addon(p, order.code),
                keys::wallet(&WalletId::Partner(p.clone())),
                keys::partner_billing(p),
            ]);
            keys.extend(keys::accrued_all(p));
            keys
        };
        for _ in 0..MAX_OP_ATTEMPTS {
            let (ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
            let profile = super::load::partner_profile(&read, &ws.partner)?;
            if profile.status.is_suspended() {
                return Err(OpError::AccessDenied(domain::AccessDenied::PartnerSuspended));
            }
            let settings = profile.settings;
            if !order.by_partner && !settings.credit_billing {
                return Err(OpError::Forbidden("add-on credit billing is off for this workspace's partner"));
            }
            let offer = super::load::partner_addon(&read, &ws.partner, order.code)?;
            if !order.by_partner && !offer.enabled {
                return Err(OpError::invalid("addon", "this add-on is not offered"));
            }
            // A prepaid partner pays the platform before its workspaces take more.
            super::usage::partner_may_spend(&read, &ws.partner)?;
            let now = self.clock.now();
            let cycle = Cycle::containing(ws.anchor, now.date()).map_err(internal)?;
            let prorated = prorate(offer.points, order.quantity, &cycle, now.date())
                .map_err(|e| OpError::invalid("quantity", e))?;
            let addon = WorkspaceAddon {
                id: AddonId::generate(),
                code: order.code,
                quantity: order.quantity,
                unit_points: offer.points,
                status: AddonStatus::Active,
                period_end: cycle.end(),
                created_at: now,
                billed: None,
            };
            // Exact under concurrent purchases: the workspace's version condition below makes a
            // purchase that raced another decide again on the list that includes it.
            room_for_addon(&ws.addons).map_err(OpError::AddonLimit)?;
            let mut addons = ws.addons.clone();
            addons.push(addon.clone());
            let plan = super::load::plan(&read, &ws.partner, ws.plan)?;
            let (limits, status) =
                evaluate(&plan, &addons, &ws.usage, ws.unpaid()).map_err(|e| OpError::invalid("quantity", e))?;
            let updated = Workspace { status: status.clone(), addons, version: ws.version + 1, ..ws.clone() };
            let charged = if order.charge { prorated.amount() } else { Default::default() };
            // The partner owes the platform the add-on's cost price, prorated by the same rule,
            // whether the workspace paid points for it or the partner gave it.
            let cost = super::usage::addon_cost(order.code, order.quantity, &cycle, now.date())?;
            let accrual = records::Accrual {
                partner: ws.partner.clone(),
                workspace: w.clone(),
                source: format!("addon_purchase:{}", order.code.as_str()),
                reference: format!("addon#{w}#{}", addon.id),
                amount: cost,
                quantity: None,
                created_at: now,
                counted: true,
            };
            let posting = Posting {
                wallet: wallet.clone(),
                amount: PointsDelta::debit(charged),
                overdraft: Overdraft::Forbid,
                kind: EntryKind::AddonPurchase {
                    addon_id: addon.id.clone(),
                    addon: order.code,
                    quantity: order.quantity,
                    unit_points: offer.points,
                    days_remaining: prorated.days_remaining(),
                    days_in_cycle: prorated.days_in_cycle(),
                    by_partner: order.by_partner,
                },
                actor: order.actor.clone(),
                at: now,
                idempotency: m.key().clone(),
                partner: Some(ws.partner.clone()),
                in_partner_ledger: true,
                also: std::iter::once(Write::Put {
                    item: records::workspace_item(&updated),
                    condition: Condition::equals(Guard::WorkspaceVersion, "version", store::Attr::n(ws.version)),
                })
                .chain(super::events::status_event(&ws.partner, w, &ws.status, &updated.status, now))
                .chain(super::usage::accrual_write(&accrual))
                .collect(),
            };
            let reply = |entry: &LedgerEntry| {
                m.answer(&AddonAdded {
                    addon: LabelledAddon { addon: addon.clone(), label: offer.label.clone() },
                    charged,
                    prorated,
                    cycle,
                    entry: entry.clone(),
                    after: WorkspaceState { workspace: updated.clone(), limits },
                })
                .to_stored()
            };
            let state = wallet_state(read.get(&keys::wallet(&wallet)))?;
            match self.store.post_from(posting, state, reply).await {
                Ok(Outcome::Applied { response, .. }) | Ok(Outcome::Replayed { response }) => {
                    return replayed(response);
                }
                Ok(Outcome::InsufficientBalance { balance }) => {
                    return Err(OpError::InsufficientPoints { balance, required: charged });
                }
                Ok(Outcome::KeyReused) => return Err(OpError::KeyReused),
                // The workspace moved (usage, plan, another add-on): evaluate again.
                Err(StoreError::ConditionFailed { failed }) if failed.contains(Guard::WorkspaceVersion) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }

    /// A partner adds (or deducts, with a minus sign) points by hand, with a reason.
    pub async fn adjust_points(
        &self,
        p: &PartnerId,
        w: &WorkspaceId,
        adjustment: PointsAdjustment,
        m: Mutation<'_, LedgerEntry>,
    ) -> Replied {
        let wallet = WalletId::Workspace(w.clone());
        let needed = [keys::workspace_profile(w), keys::wallet(&wallet)];
        let read = fresh!(self.load_for_partner(p, m.key(), &needed).await?);
        let PointsAdjustment { amount, reason, allow_negative, actor } = adjustment;
        let reason = reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > REASON_MAX_CHARS {
            return Err(OpError::invalid(
                "reason",
                format!("a reason of 1 to {REASON_MAX_CHARS} characters is required"),
            ));
        }
        super::load::partner_workspace(&read, p, w)?;
        let state = wallet_state(read.get(&keys::wallet(&wallet)))?;
        let posting = Posting {
            wallet,
            amount,
            overdraft: if allow_negative { Overdraft::Allow } else { Overdraft::Forbid },
            kind: EntryKind::Adjustment { reason },
            actor,
            at: self.clock.now(),
            idempotency: m.key().clone(),
            partner: Some(p.clone()),
            in_partner_ledger: true,
            also: vec![Write::Check {
                key: keys::workspace_profile(w),
                condition: Condition::exists(Guard::WorkspaceExists),
            }],
        };
        let reply = |e: &LedgerEntry| m.answer(e).to_stored();
        match self.store.post_from(posting, state, reply).await {
            Ok(Outcome::Applied { response, .. }) | Ok(Outcome::Replayed { response }) => replayed(response),
            Ok(Outcome::InsufficientBalance { balance }) => {
                Err(OpError::InsufficientPoints { balance, required: amount.magnitude() })
            }
            Ok(Outcome::KeyReused) => Err(OpError::KeyReused),
            Err(StoreError::ConditionFailed { .. }) => Err(OpError::NotFound("workspace")),
            Err(e) => Err(e.into()),
        }
    }

    /// The workspace cancels an add-on: it keeps counting until its period ends, then ends
    /// instead of renewing.
    pub async fn cancel_addon(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        id: &AddonId,
        m: Mutation<'_, LabelledAddon>,
    ) -> Replied {
        // The add-on's label is the partner's: its terms for every add-on come in the one read.
        let terms = |p: &PartnerId| AddonCode::ALL.into_iter().map(|code| keys::partner_addon(p, code)).collect();
        let not_active = |status: &str| format!("the add-on is {status}, not active");
        let change = |ws: &mut Workspace, read: &Snapshot| {
            let addon = held_addon(ws, read, id, not_active)?;
            if addon.status != AddonStatus::Active {
                return Err(OpError::invalid("addon_id", not_active(addon.status.as_str())));
            }
            addon.status = AddonStatus::Cancelling;
            Ok(vec![])
        };
        let outcome = |ws: &Workspace, _: &Limits, read: &Snapshot| {
            let addon = ws.addons.iter().find(|a| &a.id == id).expect("the change kept the add-on");
            let label = super::load::partner_addon(read, &ws.partner, addon.code)?.label;
            Ok(LabelledAddon { addon: addon.clone(), label })
        };
        let history = |p: &PartnerId| {
            let mut keys: Vec<Key> = terms(p);
            keys.push(keys::workspace_addon(w, id));
            keys
        };
        self.evolve(w, asker, history, change, outcome, m).await
    }

    /// The partner removes an add-on now; the workspace is re-evaluated at once.
    pub async fn remove_addon(
        &self,
        p: &PartnerId,
        w: &WorkspaceId,
        id: &AddonId,
        m: Mutation<'_, WorkspaceState>,
    ) -> Replied {
        let change = |ws: &mut Workspace, read: &Snapshot| {
            let addon = held_addon(ws, read, id, |status| format!("the add-on is already {status}"))?;
            addon.status = AddonStatus::Removed;
            let ended = addon.clone();
            ws.addons.retain(|a| &a.id != id);
            Ok(vec![history_write(w, &ended)])
        };
        let history = |_: &PartnerId| vec![keys::workspace_addon(w, id)];
        self.evolve(w, Asker::Partner(p), history, change, state_after, m).await
    }

    /// The platform reports what a workspace uses; it pauses or resumes accordingly.
    pub async fn report_usage(&self, w: &WorkspaceId, usage: Usage, m: Mutation<'_, WorkspaceState>) -> Replied {
        let change = |ws: &mut Workspace, _: &Snapshot| {
            ws.usage = usage;
            Ok(vec![])
        };
        self.evolve(w, Asker::Platform, |_| vec![], change, state_after, m).await
    }

    /// Re-evaluates a workspace's stored status from its current plan, add-ons and usage, and
    /// stores it if it changed. Deterministic from the stored state, so it needs no
    /// idempotency key: running it twice changes nothing the second time.
    pub async fn refresh_status(&self, w: &WorkspaceId) -> Result<WorkspaceStatus, OpError> {
        for _ in 0..MAX_OP_ATTEMPTS {
            let ws = self.workspace(w).await?;
            let plan = self.plan(&ws.partner, ws.plan).await?;
            match self.settle_status(&ws, &plan).await? {
                Settled::Unchanged => return Ok(ws.status),
                Settled::Changed(status) => return Ok(status),
                Settled::Moved => continue,
            }
        }
        Err(OpError::Conflict)
    }

    /// Evaluates `ws`'s status (as read, at its version) on `plan` with its add-ons and usage,
    /// and stores it if it changed, with its `workspace.paused` or `workspace.resumed` event, in
    /// one transaction conditioned on that version. Running it again after it was stored finds
    /// nothing to change, so the event is written once.
    pub(super) async fn settle_status(&self, ws: &Workspace, plan: &Plan) -> Result<Settled, OpError> {
        let (_, status) = evaluate(plan, &ws.addons, &ws.usage, ws.unpaid()).map_err(internal)?;
        if status == ws.status {
            return Ok(Settled::Unchanged);
        }
        let updated = Workspace { status: status.clone(), version: ws.version + 1, ..ws.clone() };
        let write = Write::Put {
            item: records::workspace_item(&updated),
            condition: Condition::equals(Guard::WorkspaceVersion, "version", store::Attr::n(ws.version)),
        };
        let event = super::events::status_event(&ws.partner, &ws.id, &ws.status, &status, self.clock.now());
        match self.store.write(std::iter::once(write).chain(event).collect()).await {
            Ok(()) => Ok(Settled::Changed(status)),
            Err(StoreError::ConditionFailed { .. }) => Ok(Settled::Moved),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change` to the workspace (its plan, usage or add-ons), re-evaluates its status
    /// and writes it all in one transaction conditioned on the workspace's version, answering
    /// the `outcome` it makes of the workspace after it; starts over if the workspace moved
    /// meanwhile.
    ///
    /// Each attempt reads the workspace (with the add-ons it holds), its partner's plans and
    /// `keys` of its partner with the idempotency record in one `BatchGetItem`.
    async fn evolve<O>(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        keys: impl Fn(&PartnerId) -> Vec<Key>,
        change: impl Fn(&mut Workspace, &Snapshot) -> Result<Vec<Write>, OpError>,
        outcome: impl Fn(&Workspace, &Limits, &Snapshot) -> Result<O, OpError>,
        m: Mutation<'_, O>,
    ) -> Replied {
        let needed = |p: &PartnerId| {
            let mut needed: Vec<Key> = PlanId::ALL.iter().map(|id| keys::partner_plan(p, *id)).collect();
            needed.extend(keys(p));
            needed
        };
        for _ in 0..MAX_OP_ATTEMPTS {
            let (mut ws, read) = fresh!(self.load_workspace_change(w, asker, m.key(), needed).await?);
            let expected = ws.version;
            let before = ws.status.clone();
            let mut writes = change(&mut ws, &read)?;
            let plan = super::load::plan(&read, &ws.partner, ws.plan)?;
            let (limits, status) = evaluate(&plan, &ws.addons, &ws.usage, ws.unpaid()).map_err(internal)?;
            ws.status = status;
            ws.version = expected + 1;
            writes.extend(super::events::status_event(&ws.partner, w, &before, &ws.status, self.clock.now()));
            writes.insert(
                0,
                Write::Put {
                    item: records::workspace_item(&ws),
                    condition: Condition::equals(Guard::WorkspaceVersion, "version", store::Attr::n(expected)),
                },
            );
            let reply = m.answer(&outcome(&ws, &limits, &read)?);
            match self.store.commit(m.key(), self.clock.now(), writes, &reply.to_stored()).await {
                Ok(Committed::Applied) => return Ok(reply),
                Ok(Committed::Replayed { response }) => return replayed(response),
                Ok(Committed::KeyReused) => return Err(OpError::KeyReused),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpError::Conflict)
    }
}

/// The add-on `id` that `ws` holds, to change. One it held before (ended, in its history, read
/// with the change) is refused with `ended`'s words for its status; one it never held is not
/// found.
fn held_addon<'a>(
    ws: &'a mut Workspace,
    read: &Snapshot,
    id: &AddonId,
    ended: impl Fn(&str) -> String,
) -> Result<&'a mut WorkspaceAddon, OpError> {
    if let Some(addon) = ws.addons.iter_mut().find(|a| &a.id == id) {
        return Ok(addon);
    }
    match read.get(&keys::workspace_addon(&ws.id, id)) {
        Some(item) => Err(OpError::invalid("addon_id", ended(records::workspace_addon_from(item)?.status.as_str()))),
        None => Err(OpError::NotFound("add-on")),
    }
}

/// The history item of an add-on that ended. Unconditional: the workspace's version, in the
/// same transaction, guards the change (the item may exist from before the add-ons moved into
/// the profile).
pub(super) fn history_write(w: &WorkspaceId, ended: &WorkspaceAddon) -> Write {
    Write::Put { item: records::workspace_addon_item(w, ended), condition: Condition::Always }
}

/// A change's outcome: the workspace's plan, limits, usage and status after it.
fn state_after(ws: &Workspace, limits: &Limits, _: &Snapshot) -> Result<WorkspaceState, OpError> {
    Ok(WorkspaceState { workspace: ws.clone(), limits: *limits })
}
