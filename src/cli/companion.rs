//! `twostep companion …`: a companion device for a terminal. It approves
//! or denies sign-ins like the companion page on a phone, for desktops,
//! servers and tests. Its key is an ECDSA P-256 private key in a JSON file
//! created with mode 0600; the server only ever sees the public half.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde::{Deserialize, Serialize};
use twostep_domain::factors::push::{device_message, pairing_message};

#[derive(Subcommand, Debug)]
pub enum CompanionCommand {
    /// Pair this machine with an account, from the link the Security page shows.
    Enroll {
        /// The pairing link (…/companion#pair=…).
        url: String,
        /// How the device is listed on the account.
        #[arg(long, default_value = "Terminal companion")]
        name: String,
        #[command(flatten)]
        key: KeyArg,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Wait for sign-in requests and answer each at the prompt.
    Watch {
        #[command(flatten)]
        key: KeyArg,
        /// Stop after answering one request.
        #[arg(long)]
        once: bool,
    },
    /// Print the pending sign-in requests as JSON.
    Pending {
        #[command(flatten)]
        key: KeyArg,
        /// Seconds to wait for one (at most 25).
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Approve (with the number shown on the sign-in page) or deny one request.
    Answer {
        /// The request's id (from `pending`). Ids are base64url, so one may
        /// begin with `-`: it is still the id, not an option.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Approve, giving the number shown on the sign-in page.
        #[arg(long, conflicts_with = "deny")]
        approve: Option<String>,
        /// Deny.
        #[arg(long)]
        deny: bool,
        /// With --deny: it was not me (the account is warned by e-mail).
        #[arg(long, requires = "deny")]
        not_me: bool,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Remove this device from the account and delete its key file.
    Forget {
        #[command(flatten)]
        key: KeyArg,
    },
}

#[derive(clap::Args, Debug)]
pub struct KeyArg {
    /// The key file [default: $XDG_CONFIG_HOME/twostep/companion.json].
    #[arg(long = "key", env = "TWOSTEP_COMPANION_KEY")]
    path: Option<PathBuf>,
}

impl KeyArg {
    fn path(&self) -> Result<PathBuf, Box<dyn std::error::Error>> {
        if let Some(p) = &self.path {
            return Ok(p.clone());
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .ok_or("give --key: neither XDG_CONFIG_HOME nor HOME is set")?;
        Ok(base.join("twostep").join("companion.json"))
    }
}

/// The key file's contents.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    server: String,
    device_id: String,
    name: String,
    email: String,
    /// The private scalar, base64url.
    private_key: String,
}

struct Device {
    file: KeyFile,
    key: SigningKey,
    http: reqwest::Client,
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn sign(key: &SigningKey, message: &[u8]) -> String {
    let sig: Signature = key.sign(message);
    b64(&sig.to_bytes())
}

fn client() -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    Ok(reqwest::Client::builder().timeout(std::time::Duration::from_secs(40)).build()?)
}

/// Splits `https://host/companion#pair=CODE` into the server's base URL and the code.
fn parse_pairing_url(url: &str) -> Result<(String, String), Box<dyn std::error::Error>> {
    let (before, fragment) = url.split_once('#').ok_or("not a pairing link: it has no #pair=…")?;
    let code = fragment.strip_prefix("pair=").filter(|c| !c.is_empty()).ok_or("not a pairing link: no pair= code")?;
    let base = before.strip_suffix("/companion").ok_or("not a pairing link: it must end in /companion#pair=…")?;
    let parsed = url::Url::parse(base)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("a pairing link is http or https".into());
    }
    Ok((base.trim_end_matches('/').to_owned(), code.to_owned()))
}

/// Writes the key file readable by its owner only, never truncating
/// another file through a link.
fn write_key_file(path: &Path, file: &KeyFile, force: bool) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if force && path.exists() {
        std::fs::remove_file(path)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{} exists; use --force to replace it (the old device stays paired until removed)", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    })?;
    f.write_all(&serde_json::to_vec_pretty(file)?)?;
    f.write_all(b"\n")?;
    Ok(())
}

fn load(arg: &KeyArg) -> Result<Device, Box<dyn std::error::Error>> {
    let path = arg.path()?;
    let text =
        std::fs::read(&path).map_err(|e| format!("{}: {e} (run `twostep companion enroll` first)", path.display()))?;
    let file: KeyFile = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let scalar = data_encoding::BASE64URL_NOPAD.decode(file.private_key.as_bytes())?;
    let key = SigningKey::from_slice(&scalar).map_err(|_| format!("{}: unreadable private key", path.display()))?;
    Ok(Device { file, key, http: client()? })
}

#[expect(clippy::disallowed_methods, reason = "a client's own clock; the server checks it against its own")]
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

impl Device {
    /// Sends a signed request; the JSON answer, or an error with the server's message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b)?,
            None => Vec::new(),
        };
        let ts = unix_now().to_string();
        let signature = sign(&self.key, &device_message(method.as_str(), path, &ts, &bytes));
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.file.server))
            .header("x-twostep-device", &self.file.device_id)
            .header("x-twostep-timestamp", &ts)
            .header("x-twostep-signature", signature);
        if body.is_some() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        let json: serde_json::Value =
            if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text)? };
        if !status.is_success() {
            let code = json["error"]["code"].as_str().unwrap_or("error");
            let message = json["error"]["message"].as_str().unwrap_or("");
            return Err(format!("{code}: {message}").into());
        }
        Ok(json)
    }

    async fn pending(&self, wait: u64) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        self.call(reqwest::Method::GET, &format!("/api/v1/push/challenges?wait={wait}"), None).await
    }

    async fn answer(&self, id: &str, approve: Option<&str>, not_me: bool) -> Result<(), Box<dyn std::error::Error>> {
        let body = match approve {
            Some(n) => serde_json::json!({"decision": "approve", "number": n}),
            None => serde_json::json!({"decision": "deny", "not_me": not_me}),
        };
        let path = format!("/api/v1/push/challenges/{}/answer", path_safe(id));
        self.call(reqwest::Method::POST, &path, Some(&body)).await.map(drop)
    }
}

/// Challenge ids are base64url; other characters (which no id has) are
/// dropped rather than let into the path.
fn path_safe(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

pub async fn run(cmd: CompanionCommand) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        CompanionCommand::Enroll { url, name, key, force } => enroll(&url, &name, &key, force).await,
        CompanionCommand::Pending { key, wait } => {
            let d = load(&key)?;
            println!("{}", serde_json::to_string_pretty(&d.pending(wait).await?)?);
            Ok(())
        }
        CompanionCommand::Answer { id, approve, deny, not_me, key } => {
            let d = load(&key)?;
            if approve.is_none() && !deny {
                return Err("give --approve NUMBER or --deny".into());
            }
            d.answer(&id, approve.as_deref(), not_me).await?;
            println!("{}", if deny { "denied" } else { "approved" });
            Ok(())
        }
        CompanionCommand::Watch { key, once } => watch(&load(&key)?, once).await,
        CompanionCommand::Forget { key } => {
            let d = load(&key)?;
            d.call(reqwest::Method::DELETE, "/api/v1/push/device", None).await?;
            std::fs::remove_file(key.path()?)?;
            println!("removed {} from {}", d.file.name, d.file.email);
            Ok(())
        }
    }
}

async fn enroll(url: &str, name: &str, arg: &KeyArg, force: bool) -> Result<(), Box<dyn std::error::Error>> {
    let (server, code) = parse_pairing_url(url)?;
    let path = arg.path()?;
    if path.exists() && !force {
        return Err(format!("{} exists; use --force to replace it", path.display()).into());
    }
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let public = b64(key.verifying_key().to_encoded_point(false).as_bytes());
    let body = serde_json::json!({
        "pairing_code": code,
        "name": name,
        "public_key": public,
        "signature": sign(&key, &pairing_message(&code, &public)),
    });
    let res = client()?.post(format!("{server}/api/v1/push/devices")).json(&body).send().await?;
    let status = res.status();
    let json: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        let message = json["error"]["message"].as_str().unwrap_or("the server refused the pairing");
        return Err(message.to_owned().into());
    }
    let file = KeyFile {
        server,
        device_id: json["device_id"].as_str().unwrap_or_default().to_owned(),
        name: json["name"].as_str().unwrap_or(name).to_owned(),
        email: json["email"].as_str().unwrap_or_default().to_owned(),
        private_key: b64(&key.to_bytes()),
    };
    write_key_file(&path, &file, force)?;
    println!("paired \"{}\" with {} (key in {})", file.name, file.email, path.display());
    // What to run next, with the key file named when it is not the default.
    let key = if arg.path.is_some() { format!(" --key {}", path.display()) } else { String::new() };
    println!("next: run `twostep companion watch{key}` to answer sign-in requests here");
    Ok(())
}

/// Long-polls and asks at the prompt for each new request. Ends at end of
/// input, or after one answer with `once`.
async fn watch(d: &Device, once: bool) -> Result<(), Box<dyn std::error::Error>> {
    println!("watching for sign-in requests to {} as \"{}\" (Ctrl-C to stop)", d.file.email, d.file.name);
    let mut seen = std::collections::HashSet::new();
    let stdin = std::io::stdin();
    loop {
        let pending = d.pending(25).await?;
        let list = pending["challenges"].as_array().cloned().unwrap_or_default();
        for c in list {
            let id = c["id"].as_str().unwrap_or_default().to_owned();
            if !seen.insert(id.clone()) {
                continue;
            }
            println!(
                "\nSign-in request for {} from {} ({}{}), {} s left.",
                c["email"].as_str().unwrap_or("?"),
                c["client"].as_str().unwrap_or("?"),
                c["ip"].as_str().unwrap_or("?"),
                c["place"].as_str().map(|p| format!(", {p}")).unwrap_or_default(),
                c["expires_in"],
            );
            print!("Type the number shown on the sign-in page to approve, \"n\" to deny, \"x\" if it wasn't you: ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            if stdin.lock().read_line(&mut line)? == 0 {
                println!();
                return Ok(());
            }
            let answer = line.trim();
            let result = match answer {
                "n" | "N" => d.answer(&id, None, false).await.map(|()| "denied"),
                "x" | "X" => d.answer(&id, None, true).await.map(|()| "denied; the account is warned"),
                n => d.answer(&id, Some(n), false).await.map(|()| "approved"),
            };
            match result {
                Ok(what) => println!("{what}"),
                Err(e) => println!("not done: {e}"),
            }
            if once {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pairing_links_split_into_server_and_code() {
        let (server, code) = parse_pairing_url("https://auth.example.org/companion#pair=abc_DEF-1").unwrap();
        assert_eq!(server, "https://auth.example.org");
        assert_eq!(code, "abc_DEF-1");
        let (server, _) = parse_pairing_url("http://127.0.0.1:8080/companion#pair=x").unwrap();
        assert_eq!(server, "http://127.0.0.1:8080");
        for bad in [
            "https://auth.example.org/companion",
            "https://auth.example.org/companion#pair=",
            "https://auth.example.org/elsewhere#pair=x",
            "ftp://auth.example.org/companion#pair=x",
        ] {
            assert!(parse_pairing_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_files_are_private_and_never_overwritten_silently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("companion.json");
        let file = || KeyFile {
            server: "http://127.0.0.1:1".into(),
            device_id: "d".into(),
            name: "n".into(),
            email: "e".into(),
            private_key: "k".into(),
        };
        write_key_file(&path, &file(), false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(write_key_file(&path, &file(), false).is_err());
        write_key_file(&path, &file(), true).unwrap();
    }
}
