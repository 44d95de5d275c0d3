//! Security events, written by the domain as things happen (§2.13). The
//! table is append-only: the store refuses updates and deletes.

mod log_page;
pub mod readable;
mod trail;
mod wording;

pub use log_page::{LogPage, LogQuery};
pub(crate) use trail::{AuditEvent, Auditor};

use crate::ids::AccountId;
use crate::time::Timestamp;

/// What happened. Stored as the snake_case slug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditKind {
    AccountCreated,
    AccountDisabled,
    AccountEnabled,
    SignInPassword,
    SignInSecondFactor,
    SignInSucceeded,
    SignOut,
    Reauth,
    TotpEnrollmentStarted,
    AuthenticatorAdded,
    AuthenticatorRemoved,
    TotpReplay,
    WebauthnSignCountRegression,
    RecoveryCodeUsed,
    RecoveryCodesRevealed,
    RecoveryCodesRegenerated,
    TwoFactorDisabled,
    LoginTokenExhausted,
    Throttled,
    FactorLocked,
    FactorUnlocked,
    PasswordLocked,
    PasswordResetRequested,
    PasswordReset,
    PasswordChanged,
    SessionRevoked,
    BrowserRemembered,
    BrowserForgotten,
    CodeSent,
    CodeSendThrottled,
    PhoneVerificationStarted,
    PhoneAdded,
    PhoneRemoved,
    EmailVerified,
    NewDeviceSignIn,
    OrgCreated,
    OrgMemberRemoved,
    OrgRoleChanged,
    OrgInvitationSent,
    OrgInvitationAccepted,
    OrgInvitationDeclined,
    OrgInvitationRevoked,
    PolicyChanged,
    SignInOutsideAllowlist,
    SessionOutsideAllowlist,
    AllowlistChanged,
    AdminGranted,
    AdminRevoked,
    TwoFactorReset,
    MandateNotice,
    PushPairingStarted,
    PushDeviceAdded,
    PushDeviceRenamed,
    PushSent,
    PushApproved,
    PushDenied,
    OidcCodeIssued,
    OidcTokenIssued,
    OidcRefused,
    OidcGrantRevoked,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountCreated => "account_created",
            Self::AccountDisabled => "account_disabled",
            Self::AccountEnabled => "account_enabled",
            Self::SignInPassword => "sign_in_password",
            Self::SignInSecondFactor => "sign_in_second_factor",
            Self::SignInSucceeded => "sign_in_succeeded",
            Self::SignOut => "sign_out",
            Self::Reauth => "reauth",
            Self::TotpEnrollmentStarted => "totp_enrollment_started",
            Self::AuthenticatorAdded => "authenticator_added",
            Self::AuthenticatorRemoved => "authenticator_removed",
            Self::TotpReplay => "totp_replay",
            Self::WebauthnSignCountRegression => "webauthn_sign_count_regression",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRevealed => "recovery_codes_revealed",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::TwoFactorDisabled => "two_factor_disabled",
            Self::LoginTokenExhausted => "login_token_exhausted",
            Self::Throttled => "throttled",
            Self::FactorLocked => "factor_locked",
            Self::FactorUnlocked => "factor_unlocked",
            Self::PasswordLocked => "password_locked",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::SessionRevoked => "session_revoked",
            Self::BrowserRemembered => "browser_remembered",
            Self::BrowserForgotten => "browser_forgotten",
            Self::CodeSent => "code_sent",
            Self::CodeSendThrottled => "code_send_throttled",
            Self::PhoneVerificationStarted => "phone_verification_started",
            Self::PhoneAdded => "phone_added",
            Self::PhoneRemoved => "phone_removed",
            Self::EmailVerified => "email_verified",
            Self::NewDeviceSignIn => "new_device_sign_in",
            Self::OrgCreated => "org_created",
            Self::OrgMemberRemoved => "org_member_removed",
            Self::OrgRoleChanged => "org_role_changed",
            Self::OrgInvitationSent => "org_invitation_sent",
            Self::OrgInvitationAccepted => "org_invitation_accepted",
            Self::OrgInvitationDeclined => "org_invitation_declined",
            Self::OrgInvitationRevoked => "org_invitation_revoked",
            Self::PolicyChanged => "policy_changed",
            Self::SignInOutsideAllowlist => "sign_in_outside_allowlist",
            Self::SessionOutsideAllowlist => "session_outside_allowlist",
            Self::AllowlistChanged => "allowlist_changed",
            Self::AdminGranted => "admin_granted",
            Self::AdminRevoked => "admin_revoked",
            Self::TwoFactorReset => "two_factor_reset",
            Self::MandateNotice => "mandate_notice",
            Self::PushPairingStarted => "push_pairing_started",
            Self::PushDeviceAdded => "push_device_added",
            Self::PushDeviceRenamed => "authenticator_renamed",
            Self::PushSent => "push_sent",
            Self::PushApproved => "push_approved",
            Self::PushDenied => "push_denied",
            Self::OidcCodeIssued => "oidc_code_issued",
            Self::OidcTokenIssued => "oidc_token_issued",
            Self::OidcRefused => "oidc_refused",
            Self::OidcGrantRevoked => "oidc_grant_revoked",
        }
    }
}

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User,
    /// An operator through the admin API or pages; the entry's details name them.
    Admin,
    Cli,
    System,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }
}

/// Where a request came from; carried into every audit entry.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One row of the audit log. `details` is free text and never holds a secret.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    /// The row's place in the log, increasing with every append: the
    /// security log's paging cursor. 0 until stored.
    pub id: i64,
    pub at: Timestamp,
    pub kind: String,
    pub account_id: Option<AccountId>,
    pub email: Option<String>,
    pub actor: String,
    pub factor_id: Option<String>,
    pub success: bool,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub details: String,
}

/// Which entries to read. Construct with `..AuditFilter::default()` so new
/// filters do not break callers.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub account_id: Option<AccountId>,
    pub kind: Option<String>,
    /// Only entries at or after this instant.
    pub since: Option<Timestamp>,
    /// Only entries before this instant.
    pub until: Option<Timestamp>,
    /// Only entries older than this row (`AuditEntry::id`): a cursor for
    /// paging newest first that rows appended meanwhile cannot shift, as an
    /// offset would.
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, entry: &AuditEntry) -> Result<(), crate::error::StoreError>;
    async fn entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, crate::error::StoreError>;
}
