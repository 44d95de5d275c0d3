//! The `[access]` section (forward-auth): the rules are checked by the
//! domain (`AccessSpec::compile`); what needs the rest of the configuration
//! is checked here.

use twostep_domain::policy::access::{Access, AccessSpec};

use crate::config::ConfigError;

/// The checked rules. The portal must lie within a cookie domain: it issues
/// the forward-auth cookie, and a browser refuses a cookie for a domain the
/// page is not in (every protected app would then loop back to sign-in).
pub fn resolve(spec: &AccessSpec, public_url: Option<&url::Url>) -> Result<Access, ConfigError> {
    let access = spec.compile().map_err(|e| ConfigError { key: e.key, message: e.message })?;
    if let Some(host) = public_url.and_then(url::Url::host_str)
        && !access.cookie_domains.is_empty()
        && access.cookie_domain_for(host).is_none()
    {
        return Err(ConfigError {
            key: "access.cookie_domains".into(),
            message: format!("the public URL's host {host} lies within none of them"),
        });
    }
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> AccessSpec {
        toml::from_str(toml_text).expect("toml")
    }

    #[test]
    fn the_issue_example_parses_and_the_portal_must_lie_within_a_cookie_domain() {
        let s = spec(
            r#"
            default_policy = "deny"
            cookie_domains = ["example.com"]
            [[rules]]
            domain = ["app.example.com", "*.tools.example.com"]
            path = ["^/api/", "^/admin"]
            methods = ["GET", "POST"]
            networks = ["10.0.0.0/8"]
            subject = ["user:ada@example.com", "org:Acme"]
            policy = "two_factor"
            "#,
        );
        let inside = url::Url::parse("https://auth.example.com").expect("url");
        let outside = url::Url::parse("https://auth.example.org").expect("url");
        assert_eq!(resolve(&s, Some(&inside)).expect("valid").rules.len(), 1);
        assert_eq!(resolve(&s, Some(&outside)).expect_err("outside").key, "access.cookie_domains");
        assert!(resolve(&s, None).is_ok());
        let e = resolve(&spec("[[rules]]\ndomain = [\"a.example.com\"]\npolicy = \"allow\""), None).expect_err("bad");
        assert_eq!(e.key, "access.rules[0].policy");
    }
}
