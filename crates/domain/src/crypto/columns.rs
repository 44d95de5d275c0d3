//! Every column that holds a sealed value, in one list: the row a value is
//! bound to (its associated data) and what a key rotation re-seals. A new
//! sealed column is one more variant here, so no rotation can miss it.

use super::SealedField;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    /// A TOTP seed being confirmed.
    TotpEnrollment,
    /// A confirmed TOTP seed.
    Authenticator,
    /// A recovery code, kept so "reveal codes" can show it; its lookup hash
    /// is rebuilt from it when re-sealed.
    RecoveryCode,
    /// The new phone number a verification code was sent to.
    PhoneDestination,
    /// A message waiting in the outbox.
    Outbox,
    /// A companion's Web Push subscription.
    PushSubscription,
    /// A server-wide secret (the VAPID key), by name.
    ServerSecret,
    /// An OpenID Connect signing key's private half, by its thumbprint.
    OidcKey,
}

impl SealedColumn {
    /// In the order a rotation walks them: the long-lived secrets first.
    pub const ALL: [Self; 8] = [
        Self::Authenticator,
        Self::RecoveryCode,
        Self::PushSubscription,
        Self::ServerSecret,
        Self::OidcKey,
        Self::TotpEnrollment,
        Self::PhoneDestination,
        Self::Outbox,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Self::TotpEnrollment => "totp_enrollments",
            Self::Authenticator => "authenticators",
            Self::RecoveryCode => "recovery_codes",
            Self::PhoneDestination => "oob_codes",
            Self::Outbox => "outbox",
            Self::PushSubscription => "push_devices",
            Self::ServerSecret => "server_secrets",
            Self::OidcKey => "oidc_keys",
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            Self::TotpEnrollment | Self::Authenticator => "secret_sealed",
            Self::RecoveryCode => "code_sealed",
            Self::PhoneDestination => "destination_sealed",
            Self::Outbox => "payload_sealed",
            Self::PushSubscription => "webpush_sealed",
            Self::ServerSecret => "value_sealed",
            Self::OidcKey => "private_sealed",
        }
    }

    /// The row's primary key, which the associated data names.
    pub fn id_column(self) -> &'static str {
        match self {
            Self::PushSubscription => "authenticator_id",
            Self::ServerSecret => "name",
            Self::OidcKey => "kid",
            _ => "id",
        }
    }

    pub fn field(self, row_id: &str) -> SealedField<'_> {
        SealedField { table: self.table(), column: self.column(), row_id }
    }

    /// A stable name, for the rotation's progress and its report.
    pub fn name(self) -> &'static str {
        self.table()
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}
