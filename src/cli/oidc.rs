//! `twostep oidc …`: the OpenID Connect provider's clients and signing keys.

use std::sync::Arc;

use clap::{Args, Subcommand};
use twostep_domain::oidc::Oidc;
use twostep_domain::oidc::clients::NewClient;
use twostep_domain::oidc::store::ClientRecord;
use twostep_domain::policy::store::OrgStore;
use twostep_domain::ports::{OsRng, SystemClock};

use super::open;
use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum OidcCommand {
    /// Register, list and remove the apps that sign people in through twostep.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Make new ID token signing keys; the old ones stay published until
    /// the tokens they signed have expired.
    RotateKey,
    /// Print a new client secret and its SHA-256, for a client declared in
    /// the configuration file (`[[oidc.clients]]` takes the hash).
    GenerateSecret,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register an app; prints its client id and (unless --public) its secret, shown only this once.
    Add(AddArgs),
    /// The registered apps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One app's settings.
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// A new secret for an app; the old one stops working at once.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an app and every token it was given.
    Remove { client_id: String },
}

#[derive(Args, Debug)]
#[expect(clippy::struct_excessive_bools, reason = "command-line switches")]
pub struct AddArgs {
    /// The app's name, shown on the consent page.
    name: String,
    /// Where the app receives the code (exact match; https, or http on loopback). Repeatable.
    #[arg(long = "redirect-uri", required = true, num_args = 1..)]
    redirect_uris: Vec<String>,
    /// Where the app may send people after signing out. Repeatable.
    #[arg(long = "post-logout-redirect-uri", num_args = 1..)]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (a single-page or native app): no secret, PKCE only.
    #[arg(long)]
    public: bool,
    /// Everyone signing in to this app must prove a second factor.
    #[arg(long)]
    require_two_factor: bool,
    /// Only members of this organisation (its id) may sign in.
    #[arg(long)]
    org: Option<String>,
    /// Do not ask people to consent (an app of the operator's own).
    #[arg(long)]
    skip_consent: bool,
    /// How ID tokens are signed: RS256 (default), ES256 or EdDSA.
    #[arg(long, default_value = "RS256")]
    id_token_alg: String,
    /// Print exactly {"client_id": …, "client_secret": …}.
    #[arg(long)]
    json: bool,
}

fn client_json(c: &ClientRecord) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.id,
        "name": c.name,
        "public": c.secret_hash.is_none(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "require_two_factor": c.require_two_factor,
        "org": c.org_id,
        "skip_consent": c.skip_consent,
        "id_token_alg": c.id_token_alg,
        "created_at": c.created_at.rfc3339(),
    })
}

pub async fn run(config: &Config, cmd: OidcCommand) -> Result<(), Box<dyn std::error::Error>> {
    if matches!(cmd, OidcCommand::GenerateSecret) {
        let secret = twostep_domain::token::Token::generate(&OsRng);
        println!("client_secret: {}", secret.expose());
        println!("secret_sha256: {}", twostep_domain::oidc::rules::sha256_hex(secret.expose()));
        println!("give the secret to the app; put only secret_sha256 in [[oidc.clients]]");
        return Ok(());
    }
    let (resolved, twostep) = open(config).await?;
    let store = twostep_store::SqlStore::connect_with(&resolved.database_url, resolved.sqlite_synchronous).await?;
    let issuer = resolved.public_url.as_ref().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let oidc = Oidc::new(Arc::new(store.clone()), Arc::new(SystemClock), Arc::new(OsRng), &issuer);
    match cmd {
        OidcCommand::GenerateSecret => {}
        OidcCommand::RotateKey => {
            let kids = oidc.rotate_keys(twostep.keys()).await?;
            println!("new signing keys: {}", kids.join(", "));
            println!("the old keys stay published until the ID tokens they signed expire");
        }
        OidcCommand::Client(ClientCommand::Add(a)) => {
            if let Some(org) = &a.org
                && store.org(org).await?.is_none()
            {
                return Err(format!("no organisation with id {org:?}").into());
            }
            let r = oidc
                .add_client(NewClient {
                    name: a.name,
                    id: None,
                    redirect_uris: a.redirect_uris,
                    post_logout_redirect_uris: a.post_logout_redirect_uris,
                    public: a.public,
                    require_two_factor: a.require_two_factor,
                    org_id: a.org,
                    skip_consent: a.skip_consent,
                    id_token_alg: Some(a.id_token_alg),
                })
                .await?;
            if a.json {
                println!("{}", serde_json::json!({ "client_id": r.client.id, "client_secret": r.secret }));
            } else {
                println!("client_id:     {}", r.client.id);
                match &r.secret {
                    Some(s) => {
                        println!("client_secret: {s}");
                        println!("the secret is shown only now: store it in the app's settings");
                    }
                    None => println!("public client: no secret; the app must use PKCE (S256)"),
                }
            }
        }
        OidcCommand::Client(ClientCommand::List { json }) => {
            let clients = oidc.clients().await?;
            if json {
                println!("{}", serde_json::Value::Array(clients.iter().map(client_json).collect()));
            } else if clients.is_empty() {
                println!("no clients yet; add one with `twostep oidc client add NAME --redirect-uri URI`");
            }
            for c in clients.iter().filter(|_| !json) {
                let kind = if c.secret_hash.is_some() { "confidential" } else { "public" };
                println!("{:<24} {:<12} {:<24} {}", c.id, kind, c.name, c.redirect_uris.join(" "));
            }
        }
        OidcCommand::Client(ClientCommand::Show { client_id, json }) => {
            let c = oidc.client(&client_id).await?;
            let v = client_json(&c);
            if json {
                println!("{v}");
            } else {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
        }
        OidcCommand::Client(ClientCommand::RotateSecret { client_id, json }) => {
            let secret = oidc.rotate_secret(&client_id).await?;
            if json {
                println!("{}", serde_json::json!({ "client_id": client_id, "client_secret": secret }));
            } else {
                println!("client_secret: {secret}");
                println!("the old secret no longer works; the new one is shown only now");
            }
        }
        OidcCommand::Client(ClientCommand::Remove { client_id }) => {
            oidc.remove_client(&client_id).await?;
            println!("removed {client_id} and every token it was given");
        }
    }
    Ok(())
}
