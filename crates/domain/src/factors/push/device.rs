//! Companion devices: pairing, listing, renaming, removing, and the
//! signature check on every device request.

#[allow(clippy::wildcard_imports)]
use super::*;

use p256::ecdsa::VerifyingKey;

use crate::audit::{AuditKind, RequestContext};
use crate::error::{FactorError, InternalError};
use crate::factors::push::store::PushDeviceRecord;
use crate::factors::store::AuthenticatorRecord;
use crate::ids::{AccountId, AuthenticatorId};
use crate::notify::notice::Notice;
use crate::service::{AuditEvent, Twostep};
use crate::sessions::SignedIn;
use crate::token::Token;

/// How far a device's clock may be from ours. Device requests are reads or
/// final answers, so a replay inside the window achieves nothing new.
const DEVICE_CLOCK_SKEW_SECS: i64 = 5 * 60;

const DEVICE_NAME_MAX: usize = 64;

/// A pairing code, to show as a QR link.
#[derive(Debug)]
pub struct Pairing {
    pub code: Token,
    pub expires_in: i64,
}

/// What a device sends to pair.
#[derive(Debug)]
pub struct PairRequest<'a> {
    pub code: &'a str,
    pub name: &'a str,
    /// base64url SEC1 uncompressed P-256 point.
    pub public_key: &'a str,
    /// Its signature over `pairing_message(code, public_key)`.
    pub proof: &'a str,
    pub subscription: Option<WebPushSubscription>,
}

#[derive(Debug)]
pub struct Paired {
    pub device: AuthenticatorRecord,
    pub email: String,
}

/// The signed headers of a device request.
#[derive(Clone, Copy, Debug)]
pub struct DeviceRequest<'a> {
    pub device_id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
    pub method: &'a str,
    /// Path and query, exactly as sent.
    pub path: &'a str,
    pub body: &'a [u8],
}

fn device_name(name: &str) -> Result<String, PushError> {
    let name = name.trim();
    let name = if name.is_empty() { "Companion device" } else { name };
    if name.chars().count() > DEVICE_NAME_MAX || name.chars().any(char::is_control) {
        return Err(PushError::InvalidName);
    }
    Ok(name.to_owned())
}

impl Twostep {
    // ----- pairing -------------------------------------------------------

    /// Issues a pairing code (re-auth; 2FA must already be on, so the
    /// recovery codes exist and are shown where the user can keep them).
    pub async fn start_push_pairing(&self, me: &SignedIn, ctx: &RequestContext) -> Result<Pairing, PushError> {
        if self.store.authenticators(&me.account.id).await?.is_empty() {
            return Err(PushError::TwoFactorNotEnabled);
        }
        self.require_recent_auth(me).await?;
        let code = Token::generate(self.rng());
        let now = self.now();
        let expires_at = now.plus_secs(self.settings.push_pairing_secs);
        self.store.replace_pairing(&code.hash(), &me.account.id, now, expires_at).await?;
        self.audit(AuditEvent::user(AuditKind::PushPairingStarted, &me.account.id), ctx).await;
        Ok(Pairing { code, expires_in: self.settings.push_pairing_secs })
    }

    /// Registers a device from a pairing code; the code works once.
    pub async fn pair_push_device(&self, req: PairRequest<'_>, ctx: &RequestContext) -> Result<Paired, PushError> {
        let name = device_name(req.name)?;
        let (public_key, key) = parse_public_key(req.public_key)?;
        if let Some(s) = &req.subscription {
            s.check(self.settings.webpush_allow_http)?;
        }
        let pairing = Token::presented(req.code).hash();
        let now = self.now();
        let Some(account_id) = self.store.pairing_account(&pairing, now).await? else {
            return Err(PushError::InvalidPairing);
        };
        if !signature_valid(&key, &pairing_message(req.code, req.public_key), req.proof) {
            return Err(PushError::InvalidSignature);
        }
        let account = self.store.account_by_id(&account_id).await?.ok_or(PushError::InvalidPairing)?;
        let id = AuthenticatorId::generate(self.rng());
        let webpush_sealed = match &req.subscription {
            Some(s) => Some(self.seal_subscription(&id, s)?),
            None => None,
        };
        let authenticator = AuthenticatorRecord {
            // The key is public; nothing secret lives in the authenticator row.
            secret_sealed: Vec::new(),
            id,
            account_id: account_id.clone(),
            kind: PUSH_KIND.to_owned(),
            name: name.clone(),
            last_step: 0,
            created_at: now,
            last_used_at: None,
        };
        let device = PushDeviceRecord { authenticator, public_key, webpush_sealed, last_seen_at: Some(now) };
        if !self.store.add_push_device(&pairing, now, &device).await? {
            return Err(PushError::InvalidPairing);
        }
        self.audit(
            AuditEvent::user(AuditKind::PushDeviceAdded, &account_id)
                .factor(device.authenticator.id.to_string())
                .details(name.clone()),
            ctx,
        )
        .await;
        self.notify(&account_id, Notice::AuthenticatorAdded { name }, ctx).await;
        Ok(Paired { device: device.authenticator, email: account.email.as_str().to_owned() })
    }

    pub(super) fn seal_subscription(
        &self,
        id: &AuthenticatorId,
        s: &WebPushSubscription,
    ) -> Result<Vec<u8>, PushError> {
        let json = serde_json::to_vec(s).map_err(|e| InternalError(format!("subscription: {e}")))?;
        Ok(self.keys.seal(&json, subscription_field(id), self.rng()))
    }

    /// The account's companion devices, oldest first.
    pub async fn push_devices(&self, account: &AccountId) -> Result<Vec<PushDeviceRecord>, PushError> {
        Ok(self.store.push_devices(account).await?)
    }

    pub async fn rename_push_device(
        &self,
        me: &SignedIn,
        id: &str,
        name: &str,
        ctx: &RequestContext,
    ) -> Result<PushDeviceRecord, PushError> {
        let name = device_name(name)?;
        let id = AuthenticatorId::from_stored(id);
        let device = self.store.push_device(&id).await?.filter(|d| d.authenticator.account_id == me.account.id);
        let Some(mut device) = device else { return Err(PushError::NotFound) };
        self.store.rename_authenticator(&me.account.id, &id, &name).await?;
        self.audit(
            AuditEvent::user(AuditKind::PushDeviceRenamed, &me.account.id).factor(id.to_string()).details(name.clone()),
            ctx,
        )
        .await;
        device.authenticator.name = name;
        Ok(device)
    }

    /// Removes a device like any authenticator (re-auth, policy, notice);
    /// `NotFound` for an id that is not one of the account's devices.
    pub async fn remove_push_device(&self, me: &SignedIn, id: &str, ctx: &RequestContext) -> Result<(), FactorError> {
        let found = self.store.push_device(&AuthenticatorId::from_stored(id)).await?;
        if !found.is_some_and(|d| d.authenticator.account_id == me.account.id) {
            return Err(FactorError::NotFound);
        }
        self.remove_authenticator(me, id, ctx).await
    }

    // ----- device requests -----------------------------------------------

    /// Checks a device request's signature; the device for a valid one.
    /// Unknown, removed and wrongly signing devices get the same answer.
    pub async fn authenticate_device(&self, r: &DeviceRequest<'_>) -> Result<PushDeviceRecord, PushError> {
        let ts: i64 = r.timestamp.parse().map_err(|_| PushError::InvalidSignature)?;
        let now = self.now();
        if (now.secs() - ts).abs() > DEVICE_CLOCK_SKEW_SECS || r.device_id.is_empty() || r.device_id.len() > 64 {
            return Err(PushError::InvalidSignature);
        }
        let device = self.store.push_device(&AuthenticatorId::from_stored(r.device_id)).await?;
        let Some(device) = device else { return Err(PushError::InvalidSignature) };
        let key = VerifyingKey::from_sec1_bytes(&device.public_key)
            .map_err(|_| InternalError("stored device key unreadable".to_owned()))?;
        if !signature_valid(&key, &device_message(r.method, r.path, r.timestamp, r.body), r.signature) {
            return Err(PushError::InvalidSignature);
        }
        if device.last_seen_at.is_none_or(|t| now.secs() - t.secs() >= 60) {
            self.store.touch_push_device(&device.authenticator.id, now).await?;
        }
        Ok(device)
    }

    /// The device removes itself ("forget this device" on the phone).
    /// The device's signature is the proof here, so no re-auth; policy
    /// still keeps an account's last factor.
    pub async fn forget_push_device(&self, device: &PushDeviceRecord, ctx: &RequestContext) -> Result<(), FactorError> {
        let (account, id) = (&device.authenticator.account_id, &device.authenticator.id);
        self.refuse_removing_last_factor(account, id).await?;
        self.delete_factor(account, id, "removed from the device itself", ctx).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_trimmed_bounded_and_defaulted() {
        assert_eq!(device_name("  Pixel  ").unwrap(), "Pixel");
        assert_eq!(device_name("").unwrap(), "Companion device");
        assert!(device_name(&"x".repeat(65)).is_err());
        assert!(device_name("a\nb").is_err());
    }
}
