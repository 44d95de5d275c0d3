//! Recovery codes: issue, use once, reveal, regenerate (`security.md` §2.3).
//!
//! Each code is stored twice, never in the clear: sealed with AES-256-GCM so
//! "Reveal codes" can show it again, and as an HMAC under a lookup key so a
//! sign-in finds it. The HMACs of the account's unused codes are all
//! compared in constant time; spending one is an atomic UPDATE that succeeds
//! for one request only.

pub mod code;
mod factor;

pub(crate) use factor::RecoveryFactor;
pub use factor::{RECOVERY_CODE, RECOVERY_COUNTER};

use zeroize::Zeroizing;

use crate::audit::{AuditKind, RequestContext};
use crate::crypto::{HashPurpose, SealedColumn, SealedField, constant_time_eq};
use crate::error::FactorError;
use crate::factors::Proven;
use crate::factors::recovery::code::{RecoveryCode, generate_set};
use crate::factors::store::RecoveryCodeRecord;
use crate::ids::{AccountId, RecoveryCodeId};
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;

/// At or below this many unused codes, the user is warned.
pub const LOW_WATER: usize = 3;

fn code_field(id: &RecoveryCodeId) -> SealedField<'_> {
    SealedColumn::RecoveryCode.field(id.as_str())
}

/// A code as shown by "Reveal codes".
#[derive(Debug)]
pub struct RevealedCode {
    pub code: RecoveryCode,
    pub used: bool,
}

/// How long further views from the session that was mailed about a view
/// stay quiet.
const REVEAL_NOTICE_WINDOW_SECS: i64 = 15 * 60;

impl Twostep {
    /// A fresh set: the codes to show once, and the rows to store.
    pub(crate) fn new_recovery_set(&self, account: &AccountId) -> (Vec<RecoveryCode>, Vec<RecoveryCodeRecord>) {
        let codes = generate_set(self.rng());
        let now = self.now();
        let records = codes
            .iter()
            .zip(0_i64..)
            .map(|(code, position)| {
                let id = RecoveryCodeId::generate(self.rng());
                RecoveryCodeRecord {
                    lookup: self.recovery_lookup(code).to_vec(),
                    code_sealed: self.keys.seal(code.expose().as_bytes(), code_field(&id), self.rng()),
                    id,
                    account_id: account.clone(),
                    position,
                    created_at: now,
                    used_at: None,
                }
            })
            .collect();
        (codes, records)
    }

    fn recovery_lookup(&self, code: &RecoveryCode) -> [u8; 32] {
        self.keys.keyed_hash(HashPurpose::RecoveryCodeLookup, &[code.expose().as_bytes()])
    }

    pub async fn recovery_codes_remaining(&self, account: &AccountId) -> Result<usize, FactorError> {
        Ok(self.store.factor_summary(account, &[]).await?.unused_recovery_codes)
    }

    /// Spends a recovery code. `Ok(None)` for a wrong or used code.
    pub(crate) async fn use_recovery_code(
        &self,
        account: &AccountId,
        input: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Proven>, FactorError> {
        let Ok(code) = RecoveryCode::parse(input) else {
            return Ok(None);
        };
        // Under every key held: a row not yet re-sealed by a running key
        // rotation still carries its lookup under the retiring key.
        let lookups = self.keys.keyed_hash_candidates(HashPurpose::RecoveryCodeLookup, &[code.expose().as_bytes()]);
        let rows = self.store.recovery_codes(account).await?;
        // Compare against every unused row, without stopping at a match.
        let mut found = None;
        for row in rows.iter().filter(|r| r.used_at.is_none()) {
            for lookup in &lookups {
                if constant_time_eq(&row.lookup, lookup) {
                    found = Some(row.id.clone());
                }
            }
        }
        let Some(id) = found else { return Ok(None) };
        if !self.store.use_recovery_code(&id, self.now()).await? {
            return Ok(None);
        }
        let remaining = rows.iter().filter(|r| r.used_at.is_none()).count() - 1;
        self.audit(
            AuditEvent::user(AuditKind::RecoveryCodeUsed, account)
                .factor(id.to_string())
                .details(format!("{remaining} remaining")),
            ctx,
        )
        .await;
        self.notify(account, Notice::recovery_code_used(remaining), ctx).await;
        Ok(Some(Proven { recovery_codes_remaining: Some(remaining), ..Proven::new(id.to_string()) }))
    }

    /// "Reveal codes": the current set, used ones marked. Needs re-auth.
    pub async fn reveal_recovery_codes(
        &self,
        me: &SignedIn,
        ctx: &RequestContext,
    ) -> Result<Vec<RevealedCode>, FactorError> {
        self.require_recent_auth(me).await?;
        let rows = self.store.recovery_codes(&me.account.id).await?;
        if rows.is_empty() {
            return Err(FactorError::TwoFactorNotEnabled);
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let plain = Zeroizing::new(self.keys.open(&row.code_sealed, code_field(&row.id))?);
            let text = std::str::from_utf8(&plain).unwrap_or_default();
            let code = RecoveryCode::parse(text).map_err(|_| {
                FactorError::Internal(crate::error::InternalError("stored recovery code unreadable".into()))
            })?;
            out.push(RevealedCode { code, used: row.used_at.is_some() });
        }
        self.audit(AuditEvent::user(AuditKind::RecoveryCodesRevealed, &me.account.id), ctx).await;
        // Shown, then downloaded (or reloaded) by the same session: one mail
        // says it. Decided and counted in one statement, like every cap.
        let mac =
            self.keys.keyed_hash(HashPurpose::ThrottleKey, &[b"reveal-notice", me.session.id.as_str().as_bytes()]);
        let scope = format!("reveal-notice:{}", data_encoding::HEXLOWER.encode(&mac[..16]));
        let first = self.store.take_allowance(&scope, self.now(), REVEAL_NOTICE_WINDOW_SECS, 1).await?.is_none();
        if first {
            self.notify(&me.account.id, Notice::recovery_codes_revealed(), ctx).await;
        }
        Ok(out)
    }

    /// A new set; the old one dies. Needs re-auth and 2FA on.
    pub async fn regenerate_recovery_codes(
        &self,
        me: &SignedIn,
        ctx: &RequestContext,
    ) -> Result<Vec<RecoveryCode>, FactorError> {
        self.require_recent_auth(me).await?;
        if self.store.authenticators(&me.account.id).await?.is_empty() {
            return Err(FactorError::TwoFactorNotEnabled);
        }
        let (codes, records) = self.new_recovery_set(&me.account.id);
        self.store.replace_recovery_codes(&me.account.id, &records).await?;
        self.forget_all_browsers(&me.account.id).await?;
        self.audit(AuditEvent::user(AuditKind::RecoveryCodesRegenerated, &me.account.id), ctx).await;
        self.notify(&me.account.id, Notice::recovery_codes_regenerated(), ctx).await;
        Ok(codes)
    }
}
