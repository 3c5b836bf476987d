//! Plan edits: the request stores the plan and a pending edit; a pass afterwards pauses or
//! resumes the workspaces on that plan.
//!
//! `PUT /partner/plans/{id}` writes, in its one transaction, the plan and the edit
//! (`PLAN_EDITS / <partner>#<plan>`, drawn a new `edit_id`), so the request costs the same with
//! ten workspaces or a million. Views and entitlements evaluate the limits when they are read,
//! so they show the new limits at once; the stored status (and the `workspace.paused` or
//! `workspace.resumed` event) follows in the pass, [`Billing::apply_plan_edits`], which the
//! scheduled renew-addons function runs before its renewals.
//!
//! The pass goes through each pending edit's partner's workspaces in bounded batches: one page
//! of the partner's workspace list, one `BatchGetItem` of their profiles, and for each on the
//! plan the same settlement every other change uses ([`Billing::settle_status`]), whose version
//! condition writes a status and its event once however often it runs. Where a pass stops (its
//! limits, its deadline, a failure), the edit keeps its place (`after`), and the next pass goes
//! on from there; re-settling a workspace already settled writes nothing. The edit is deleted
//! when its last page is done, on the condition that it is still the edit the pass read: an
//! edit of the same plan made meanwhile replaced it and stays pending.

use domain::{PartnerId, Plan, PlanId, Workspace, WorkspaceId};
use store::records::{self, PlanEdit};
use store::table::MAX_BATCH_GET_KEYS;
use store::{Attr, Condition, Guard, StoreError, Table, Write, keys};
use time::OffsetDateTime;

use super::workspace::Settled;
use super::{Billing, MAX_OP_ATTEMPTS, OpError};

/// How much one pass does.
#[derive(Debug, Clone, Copy)]
pub struct PlanEditLimits {
    /// Workspaces read per batch (one page of a partner's list, one `BatchGetItem`).
    pub per_batch: usize,
    /// Batches in one pass, over every pending edit; the next pass goes on.
    pub batches: usize,
}

impl Default for PlanEditLimits {
    fn default() -> Self {
        Self { per_batch: 100, batches: 100 }
    }
}

/// What a pass did (serialized as the local clock control's answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanEditRun {
    /// Edits whose every workspace is settled, and that are deleted.
    pub edits: u64,
    pub paused: u64,
    pub resumed: u64,
    /// Workspaces that could not be settled (logged); their edit stays for the next pass.
    pub failed: u64,
    /// Every edit pending when the pass started is settled and deleted: none was left part way
    /// (limits, deadline, a failure) or replaced by a newer edit meanwhile.
    pub finished: bool,
}

impl PlanEditRun {
    pub fn summary(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("counts serialize")
    }
}

/// How far a pass got with one edit.
enum Progress {
    /// Every workspace is settled and the edit deleted.
    Done,
    /// A newer edit of the plan replaced this one: it is pending, from its start.
    Replaced,
    /// Stopped where the edit's `after` says: limits, deadline or a failure.
    Paused,
}

/// A new pending edit of plan `plan`, to write with the plan.
pub(super) fn pending_edit(p: &PartnerId, plan: PlanId, at: OffsetDateTime) -> PlanEdit {
    PlanEdit {
        partner: p.clone(),
        plan,
        edit_id: format!("edit_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        after: None,
        edited_at: at,
    }
}

/// The condition of the pass's own writes of an edit: it is still the edit the pass read.
fn still_pending(edit: &PlanEdit) -> Condition {
    Condition::equals(Guard::PlanEditPending, "edit_id", Attr::s(&edit.edit_id))
}

impl<T: Table> Billing<T> {
    /// Settles the workspaces of every pending plan edit, in key order (partner, then plan),
    /// within `limits`, until `stop` says the deadline is near (see the module doc).
    pub async fn apply_plan_edits(
        &self,
        stop: impl Fn() -> bool,
        limits: PlanEditLimits,
    ) -> Result<PlanEditRun, OpError> {
        assert!((1..=MAX_BATCH_GET_KEYS).contains(&limits.per_batch), "a batch is one BatchGetItem");
        let mut run = PlanEditRun::default();
        let mut batches_left = limits.batches;
        let mut start: Option<String> = None;
        let mut all_done = true;
        // Each page of edits spends at least one batch per edit, so the budget ends the loop.
        while batches_left > 0 && !stop() {
            let page = self.store.query_prefix(keys::PLAN_EDITS_PK, "", start.as_deref(), limits.per_batch).await?;
            for item in &page {
                let edit = records::plan_edit_from(item)?;
                match self.settle_edit(edit, limits.per_batch, &mut batches_left, &stop, &mut run).await? {
                    Progress::Done => run.edits += 1,
                    Progress::Replaced | Progress::Paused => all_done = false,
                }
                if batches_left == 0 || stop() {
                    return Ok(run);
                }
            }
            if page.len() < limits.per_batch {
                run.finished = all_done;
                return Ok(run);
            }
            start = page.last().and_then(|i| i.key()).map(|k| k.sk);
        }
        Ok(run)
    }

    /// A partner's workspaces in id order, `limit` at a time, from the partner's own items:
    /// read strongly, so none created before the edit is missed (the workspace list's index
    /// would be a moment behind).
    async fn workspace_refs(
        &self,
        p: &PartnerId,
        after: Option<&WorkspaceId>,
        limit: usize,
    ) -> Result<(Vec<records::WorkspaceRef>, Option<WorkspaceId>), OpError> {
        let start = after.map(|w| keys::workspace_ref(p, w).sk);
        // One more than asked tells whether another page exists.
        let mut items = self
            .store
            .query_prefix(&keys::partner_pk(p), keys::WORKSPACE_REF_PREFIX, start.as_deref(), limit + 1)
            .await?;
        let more = items.len() > limit;
        items.truncate(limit);
        let refs = items.iter().map(records::workspace_ref_from).collect::<Result<Vec<_>, _>>()?;
        let next = more.then(|| refs.last().map(|r| r.id.clone())).flatten();
        Ok((refs, next))
    }

    /// Goes through the workspaces of one edit's partner from where the edit says, a batch at
    /// a time, settling those on the plan; deletes the edit after the last batch.
    async fn settle_edit(
        &self,
        mut edit: PlanEdit,
        per_batch: usize,
        batches_left: &mut usize,
        stop: &impl Fn() -> bool,
        run: &mut PlanEditRun,
    ) -> Result<Progress, OpError> {
        let plan = self.plan(&edit.partner, edit.plan).await?;
        while *batches_left > 0 && !stop() {
            *batches_left -= 1;
            let (refs, next) = self.workspace_refs(&edit.partner, edit.after.as_ref(), per_batch).await?;
            let profile_keys: Vec<_> = refs.iter().map(|r| keys::workspace_profile(&r.id)).collect();
            let profiles = if profile_keys.is_empty() { vec![] } else { self.store.get_many(&profile_keys).await? };
            for item in profiles.iter().flatten() {
                let ws = records::workspace_from(item)?;
                if ws.plan != edit.plan {
                    continue;
                }
                match self.settle_on_plan(ws.clone(), &plan).await {
                    Ok(Settled::Changed(status)) if status.is_paused() => run.paused += 1,
                    Ok(Settled::Changed(_)) => run.resumed += 1,
                    Ok(Settled::Unchanged | Settled::Moved) => {}
                    Err(e) => {
                        // The batch is done again by the next pass, from the same place.
                        tracing::warn!(error = %e, workspace = %ws.id, "settling a workspace after a plan edit failed");
                        run.failed += 1;
                        return Ok(Progress::Paused);
                    }
                }
            }
            let Some(last) = next else {
                let delete =
                    Write::Delete { key: keys::plan_edit(&edit.partner, edit.plan), condition: still_pending(&edit) };
                return Ok(if self.write_edit(delete).await? { Progress::Done } else { Progress::Replaced });
            };
            edit.after = Some(last);
            let save = Write::Put { item: records::plan_edit_item(&edit), condition: still_pending(&edit) };
            if !self.write_edit(save).await? {
                return Ok(Progress::Replaced);
            }
        }
        Ok(Progress::Paused)
    }

    /// Settles one workspace on the edited plan: as the batch read it, and read again if it
    /// moved meanwhile. One that moved to another plan was settled by that change.
    async fn settle_on_plan(&self, mut ws: Workspace, plan: &Plan) -> Result<Settled, OpError> {
        for _ in 0..MAX_OP_ATTEMPTS {
            if ws.plan != plan.id {
                return Ok(Settled::Unchanged);
            }
            match self.settle_status(&ws, plan).await? {
                Settled::Moved => ws = self.workspace(&ws.id).await?,
                settled => return Ok(settled),
            }
        }
        Err(OpError::Conflict)
    }

    /// Writes the pass's change of an edit (its place, or its deletion); `false` when a newer
    /// edit replaced it, which then stays pending as it is.
    async fn write_edit(&self, write: Write) -> Result<bool, OpError> {
        match self.store.write(vec![write]).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
