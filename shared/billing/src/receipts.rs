//! Receipts of top-ups: what Stripe gives the customer for a payment, and the link to it.
//!
//! Stripe makes the receipt: a Checkout payment gets a paid invoice (the product asks for one
//! with `invoice_creation[enabled]`), emailed to the customer, and an off-session charge has its
//! charge's receipt. The top-up's ledger entry names that object (`in_...` or `ch_...`), from the
//! event (or the charge's own answer) that credited it; the webhook never calls Stripe for it.
//!
//! The links themselves are Stripe's to serve and change (a hosted invoice link expires), so none
//! is stored: `GET /workspace/receipts/{id}` and `GET /partner/wallet/receipts/{id}` ask Stripe
//! for the current one, on the account the payment was made on, once the one read of the request
//! has proved the receipt is the caller's. That proof is a `RECEIPT#<id>` item, written once in
//! the credit's own transaction, naming the wallet it paid: another tenant's receipt reads as one
//! that does not exist.

use domain::{AccessDenied, PartnerId, WalletId, WorkspaceId};
use store::records::{self, PaymentRecord, ReceiptRecord};
use store::{Condition, Guard, Item, Table, Write, keys};
use stripe_gateway::gateway::{Account, GatewayError};
use stripe_gateway::ids::ReceiptId;

use super::payments::stripe_error;
use super::{Billing, OpError};

/// A receipt, and where it is read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: ReceiptId,
    /// Its page: the hosted invoice, or the charge's receipt.
    pub url: String,
    /// An invoice's PDF; none for a charge.
    pub pdf: Option<String>,
}

/// The receipt's record, written with the credit of `payment` (the same wallet, partner and
/// account): once, as the credit is.
pub(super) fn receipt_write(id: ReceiptId, payment: &PaymentRecord) -> Write {
    let record = ReceiptRecord {
        id,
        wallet: payment.wallet.clone(),
        partner: payment.partner.clone(),
        account: payment.account.clone(),
        payment_intent: payment.payment_intent.clone(),
    };
    Write::Put { item: records::receipt_item(&record), condition: Condition::not_exists(Guard::ReceiptNew) }
}

/// The record of `item` if the receipt is `wallet`'s; any other (or none) is "not found", so a
/// receipt id can't be probed.
fn owned_by(item: Option<&Item>, wallet: &WalletId) -> Result<ReceiptRecord, OpError> {
    let record = item.map(records::receipt_from).transpose()?.ok_or(OpError::NotFound("receipt"))?;
    if &record.wallet != wallet {
        return Err(OpError::NotFound("receipt"));
    }
    Ok(record)
}

impl<T: Table> Billing<T> {
    /// `GET /workspace/receipts/{id}`: a receipt of one of workspace `w`'s top-ups, for anyone
    /// of the workspace. The workspace (its token's partner must be the workspace's) and the
    /// receipt's record are one read.
    pub async fn workspace_receipt(
        &self,
        w: &WorkspaceId,
        partner_claim: Option<&PartnerId>,
        id: &ReceiptId,
    ) -> Result<Receipt, OpError> {
        let items = self.store.get_many(&[keys::workspace_profile(w), keys::receipt(id)]).await?;
        let ws = records::workspace_from(items[0].as_ref().ok_or(OpError::NotFound("workspace"))?)?;
        if partner_claim.is_some_and(|p| p != &ws.partner) {
            return Err(OpError::NotFound("workspace"));
        }
        let record = owned_by(items[1].as_ref(), &WalletId::Workspace(w.clone()))?;
        self.receipt_links(&record).await
    }

    /// `GET /partner/wallet/receipts/{id}`: a receipt of one of partner `p`'s own wallet
    /// top-ups. A suspended partner is refused, as on every partner route; its profile and the
    /// receipt's record are one read.
    pub async fn partner_receipt(&self, p: &PartnerId, id: &ReceiptId) -> Result<Receipt, OpError> {
        let items = self.store.get_many(&[keys::partner_profile(p), keys::receipt(id)]).await?;
        if super::load::is_suspended(items[0].as_ref())? {
            return Err(OpError::AccessDenied(AccessDenied::PartnerSuspended));
        }
        let record = owned_by(items[1].as_ref(), &WalletId::Partner(p.clone()))?;
        self.receipt_links(&record).await
    }

    /// Asks Stripe, on the account the payment was made on, where the receipt is read now.
    async fn receipt_links(&self, record: &ReceiptRecord) -> Result<Receipt, OpError> {
        let account = record.account.as_ref().map_or(Account::Platform, Account::Connected);
        let gateway = self.payments()?.gateway()?;
        match gateway.retrieve_receipt(account, &record.id).await {
            Ok(Some(links)) => Ok(Receipt { id: record.id.clone(), url: links.url, pdf: links.pdf }),
            // Stripe has no page for it (yet), or no longer has it on that account (a partner
            // that deleted it, or its account): nothing to link to.
            Ok(None) => Err(OpError::NotFound("receipt")),
            Err(GatewayError::InvalidRequest { code: Some(code), .. }) if code == "resource_missing" => {
                tracing::warn!(receipt = %record.id, "a receipt of ours that Stripe does not have");
                Err(OpError::NotFound("receipt"))
            }
            Err(e) => Err(stripe_error("receipts.retrieve", e)),
        }
    }
}
