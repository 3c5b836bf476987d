//! A partner's settings and catalog: add-on prices and labels, and its three plans.

use domain::{AddonCode, PartnerAddon, PartnerId, PartnerSettings, Plan, PlanId};
use store::{Committed, Condition, Guard, IdempotencyKey, Table, Write, keys, records};

use super::load::{Read, fresh};
use super::{Billing, Mutation, OpError, PartnerDetails, Replied, Reply, replayed};

impl<T: Table> Billing<T> {
    /// Provisions a partner named by its id, on the deployment's floors and postpaid (the
    /// local runner's demo and the tests; the platform signs partners up through
    /// [`Billing::onboard_partner`]). Its catalog starts as the platform's defaults.
    pub async fn create_partner(
        &self,
        p: &PartnerId,
        settings: &PartnerSettings,
        m: Mutation<'_, PartnerDetails>,
    ) -> Replied {
        if let Read::Answered(reply) = self.load(m.key(), &[]).await? {
            return Ok(reply);
        }
        settings.validate().map_err(|(param, e)| OpError::invalid(param, e))?;
        let profile = records::PartnerProfile {
            id: p.clone(),
            name: p.as_str().to_owned(),
            settings: settings.clone(),
            status: records::PartnerStatus::Active,
            floors: None,
            version: 1,
            created_at: self.clock.now(),
        };
        self.insert_partner(&profile, None, m).await
    }

    pub async fn partner_settings(&self, p: &PartnerId) -> Result<PartnerSettings, OpError> {
        Ok(self.partner_profile(p).await?.settings)
    }

    /// Replaces the partner's own settings; the platform's part of the profile (name, status,
    /// terms) stays as it is.
    pub async fn put_partner_settings(
        &self,
        p: &PartnerId,
        settings: &PartnerSettings,
        m: Mutation<'_, PartnerSettings>,
    ) -> Replied {
        let needed = [keys::partner_credit_rate(p), keys::partner_stripe(p)];
        let read = fresh!(self.load_for_partner(p, m.key(), &needed).await?);
        settings.validate().map_err(|(param, e)| OpError::invalid(param, e))?;
        let rate = super::load::credit_rate(&read, p)?;
        self.check_rebilling(rate.as_ref(), &settings.default_rebilling, "default_rebilling.")?;
        let read_profile = super::load::partner_profile(&read, p)?;
        // Credit billing sells through the partner's own Stripe account, so it needs one connected
        // in the deployment's mode (live for real money): without it a workspace could not pay.
        let connection = super::load::connection(&read, p)?;
        if settings.credit_billing && self.usable(connection).is_none() {
            return Err(OpError::invalid(
                "credit_billing",
                if self.livemode() {
                    "connect a live-mode Stripe account first (POST /partner/stripe/connect)"
                } else {
                    "connect a Stripe account first (POST /partner/stripe/connect)"
                },
            ));
        }
        // The whole item with the platform's part as read: a change of it in between (a
        // suspension, new terms) fails the version check, and this answers 409 to be retried.
        let condition = super::partners::version_is(read_profile.version);
        let profile = records::PartnerProfile { settings: settings.clone(), ..read_profile };
        let writes = vec![Write::Put { item: records::partner_item(&profile), condition }];
        self.commit(m.key(), writes, m.answer(settings), |_| OpError::Conflict).await
    }

    /// The partner's terms for every platform add-on, in catalog order; defaults where the
    /// partner has not set its own.
    pub async fn partner_addons(&self, p: &PartnerId) -> Result<Vec<PartnerAddon>, OpError> {
        self.partner_settings(p).await?;
        let items =
            self.store.query_prefix(&keys::partner_pk(p), keys::ADDON_PREFIX, None, AddonCode::ALL.len()).await?;
        let stored = items.iter().map(records::partner_addon_from).collect::<Result<Vec<_>, _>>()?;
        Ok(AddonCode::ALL
            .into_iter()
            .map(|code| {
                stored.iter().find(|a| a.code == code).cloned().unwrap_or_else(|| PartnerAddon::default_for(code))
            })
            .collect())
    }

    pub async fn partner_addon(&self, p: &PartnerId, code: AddonCode) -> Result<PartnerAddon, OpError> {
        let item = self.store.get(&keys::partner_addon(p, code)).await?;
        Ok(item
            .as_ref()
            .map(records::partner_addon_from)
            .transpose()?
            .unwrap_or_else(|| PartnerAddon::default_for(code)))
    }

    pub async fn put_partner_addon(
        &self,
        p: &PartnerId,
        addon: &PartnerAddon,
        m: Mutation<'_, PartnerAddon>,
    ) -> Replied {
        if let Read::Answered(reply) = self.load_for_partner(p, m.key(), &[]).await? {
            return Ok(reply);
        }
        addon.points.check_price().map_err(|e| OpError::invalid("points", e))?;
        let writes = vec![
            // A full replacement of the partner's own terms: last writer wins, on purpose.
            Write::Put { item: records::partner_addon_item(p, addon), condition: Condition::Always },
            Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
        ];
        self.commit(m.key(), writes, m.answer(addon), |_| OpError::NotFound("partner")).await
    }

    pub async fn plans(&self, p: &PartnerId) -> Result<Vec<Plan>, OpError> {
        self.partner_settings(p).await?;
        let items = self.store.query_prefix(&keys::partner_pk(p), keys::PLAN_PREFIX, None, PlanId::ALL.len()).await?;
        let stored = items.iter().map(records::plan_from).collect::<Result<Vec<_>, _>>()?;
        Ok(PlanId::ALL
            .into_iter()
            .map(|id| stored.iter().find(|x| x.id == id).cloned().unwrap_or_else(|| Plan::default_for(id)))
            .collect())
    }

    pub async fn plan(&self, p: &PartnerId, id: PlanId) -> Result<Plan, OpError> {
        let item = self.store.get(&keys::partner_plan(p, id)).await?;
        Ok(item.as_ref().map(records::plan_from).transpose()?.unwrap_or_else(|| Plan::default_for(id)))
    }

    /// Replaces a plan's label, limits and price, and leaves the plan's workspaces to the plan
    /// edits' pass, which pauses or resumes them ([`Billing::apply_plan_edits`]): the request
    /// costs the same however many workspaces the plan has. Views and entitlements evaluate
    /// the limits when read, so they show the new ones at once.
    pub async fn put_plan(&self, p: &PartnerId, plan: &Plan, m: Mutation<'_, Plan>) -> Replied {
        if let Read::Answered(reply) = self.load_for_partner(p, m.key(), &[]).await? {
            return Ok(reply);
        }
        if let Some(kind) = plan.limits.above_plan_maximum() {
            let max = domain::PLAN_LIMIT_MAX;
            return Err(OpError::invalid(&format!("limits.{}", kind.as_str()), format!("must be at most {max}")));
        }
        let edit = super::plan_edits::pending_edit(p, plan.id, self.clock.now());
        let writes = vec![
            Write::Put { item: records::plan_item(p, plan), condition: Condition::Always },
            // Replaces an edit of this plan still pending: the pass settles on the newest limits.
            Write::Put { item: records::plan_edit_item(&edit), condition: Condition::Always },
            Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
        ];
        self.commit(m.key(), writes, m.answer(plan), |_| OpError::NotFound("partner")).await
    }

    /// Commits `writes` with the idempotency record of `reply`; `on_condition` names what a
    /// failure of the writes' guards means.
    pub(super) async fn commit(
        &self,
        idem: &IdempotencyKey,
        writes: Vec<Write>,
        reply: Reply,
        on_condition: impl FnOnce(&store::FailedGuards) -> OpError,
    ) -> Replied {
        let stored = reply.to_stored();
        match self.store.commit(idem, self.clock.now(), writes, &stored).await {
            Ok(Committed::Applied) => Ok(reply),
            Ok(Committed::Replayed { response }) => replayed(response),
            Ok(Committed::KeyReused) => Err(OpError::KeyReused),
            Err(store::StoreError::ConditionFailed { failed }) => Err(on_condition(&failed)),
            Err(e) => Err(e.into()),
        }
    }
}
