//! Organisations and administration: what their refusals say.

use axum::http::StatusCode;
use twostep_domain::policy::admin::AdminError;
use twostep_domain::policy::orgs::OrgError;

use super::super::pages::Message;
use super::super::render;
use super::{Refusal, Reply, inline, internal, not_found_page, reauth_first};

/// A refused change to an organisation, said on its page; `None` when the
/// error leaves nothing of the organisation to show (not found, 2FA
/// required of the member, or a failure).
pub fn org(e: &OrgError) -> Option<Refusal> {
    let (status, message) = match e {
        OrgError::InvalidName => {
            (StatusCode::BAD_REQUEST, "Give the organisation a name of 1 to 100 characters.".to_owned())
        }
        OrgError::InvalidEmail => {
            (StatusCode::BAD_REQUEST, "Enter an e-mail address like name@example.com.".to_owned())
        }
        OrgError::Throttled { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "You have sent {} invitations for this organisation in the last hour. Try again in {} minutes.",
                twostep_domain::policy::orgs::INVITES_PER_HOUR,
                (retry_after + 59) / 60
            ),
        ),
        OrgError::AlreadyMember => (StatusCode::CONFLICT, "That address is already a member's.".to_owned()),
        OrgError::LastOwner => (
            StatusCode::CONFLICT,
            "An organisation must keep at least one owner: make another member an owner first.".to_owned(),
        ),
        OrgError::OwnersWithoutTwoFactor { owners } => {
            (StatusCode::CONFLICT, format!("These owners must turn on 2FA first: {}.", owners.join(", ")))
        }
        OrgError::NotOwner => (StatusCode::FORBIDDEN, "Only owners of the organisation may do this.".to_owned()),
        OrgError::NotFound | OrgError::TwoFactorRequired | OrgError::EmailUnverified | OrgError::Internal(_) => {
            return None;
        }
    };
    Some(Refusal::new(status, message))
}

/// An owner's "Revoke" on an invitation that is no longer pending.
pub fn invitation_closed() -> Refusal {
    Refusal::new(StatusCode::NOT_FOUND, "That invitation was already accepted, declined or revoked, or has expired.")
}

/// Accepting or declining an invitation to the signed-in account.
pub fn invitation(e: OrgError) -> Reply {
    match e {
        OrgError::NotFound => {
            inline(StatusCode::NOT_FOUND, "That invitation is no longer open: it was used, revoked or has expired.")
        }
        OrgError::AlreadyMember => inline(StatusCode::CONFLICT, "You are already a member of that organisation."),
        OrgError::EmailUnverified => inline(
            StatusCode::FORBIDDEN,
            "Verify your e-mail address first: only its verified holder may accept or decline an invitation to it.",
        ),
        e => Reply::Page(internal(&e)),
    }
}

/// To anyone who is not an administrator the admin area does not exist.
pub fn admin(e: AdminError, back_to: &str) -> Reply {
    Reply::Page(match e {
        AdminError::InvalidFilter(message) => return inline(StatusCode::BAD_REQUEST, message),
        AdminError::NotAdmin | AdminError::NotFound => not_found_page(),
        AdminError::TwoFactorRequired => render(
            StatusCode::FORBIDDEN,
            &Message::new(
                None,
                "Two-factor authentication first",
                "Administrators must have two-factor authentication on. Set it up on the Security page, then come back.",
            )
            .with_link("/security", "Go to Security"),
        ),
        AdminError::ReauthRequired => reauth_first(back_to),
        AdminError::OwnAccount => render(
            StatusCode::CONFLICT,
            &Message::new(
                None,
                "This is your own account",
                "Administrators change their own account on the Security page, not here.",
            )
            .with_link("/security", "Go to Security"),
        ),
        e @ AdminError::Internal(_) => internal(&e),
    })
}
