use super::*;

fn rule(domain: &[&str], policy: &str) -> RuleSpec {
    RuleSpec {
        domain: domain.iter().map(|s| (*s).to_owned()).collect(),
        policy: policy.to_owned(),
        ..RuleSpec::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn access(rules: Vec<RuleSpec>) -> Access {
    AccessSpec { default_policy: "deny".into(), cookie_domains: strings(&["example.com"]), rules }
        .compile()
        .expect("valid")
}

fn target(url: &str, method: &str, ip: &str) -> Target {
    Target::from_url(url, method, ip.parse().ok()).expect("url")
}

fn policy_of(a: &Access, url: &str) -> Policy {
    a.decide(&target(url, "GET", "10.1.2.3"), None).policy
}

#[test]
fn first_matching_rule_wins_and_the_default_catches_the_rest() {
    let a = access(vec![
        RuleSpec { path: strings(&["^/public/"]), ..rule(&["app.example.com"], "bypass") },
        rule(&["app.example.com"], "two_factor"),
        rule(&["app.example.com"], "bypass"),
    ]);
    assert_eq!(policy_of(&a, "https://app.example.com/public/x"), Policy::Bypass);
    assert_eq!(policy_of(&a, "https://app.example.com/private"), Policy::TwoFactor);
    let d = a.decide(&target("https://other.example.com/", "GET", "10.1.2.3"), None);
    assert_eq!((d.policy, d.matched), (Policy::Deny, Matched::Default));
}

#[test]
fn domain_globs_match_names_below_not_the_base_nor_lookalikes() {
    let a = access(vec![rule(&["*.tools.example.com", "App.Example.com"], "one_factor")]);
    for yes in ["https://a.tools.example.com/", "https://a.b.tools.example.com/", "https://APP.example.com:8443/x"] {
        assert_eq!(policy_of(&a, yes), Policy::OneFactor, "{yes}");
    }
    for no in [
        "https://tools.example.com/",
        "https://eviltools.example.com/",
        "https://a.tools.example.com.evil/",
        "https://app.example.co/",
    ] {
        assert_eq!(policy_of(&a, no), Policy::Deny, "{no}");
    }
}

#[test]
fn paths_are_decoded_and_normalised_before_the_regexes_see_them() {
    let a = access(vec![
        RuleSpec { path: strings(&["^/admin"]), ..rule(&["app.example.com"], "deny") },
        rule(&["app.example.com"], "bypass"),
    ]);
    for sneaky in [
        "https://app.example.com/admin",
        "https://app.example.com/public/../admin",
        "https://app.example.com/%61dmin",
        "https://app.example.com//admin",
        "https://app.example.com/x/%2e%2e/admin",
        "https://app.example.com/x%2F..%2Fadmin",
        "https://app.example.com/./admin/",
    ] {
        assert_eq!(policy_of(&a, sneaky), Policy::Deny, "{sneaky}");
    }
    assert_eq!(policy_of(&a, "https://app.example.com/administrators/../home"), Policy::Bypass);
    assert_eq!(normalise_path("/a//b/./c/../d/"), "/a/b/d/");
    assert_eq!(normalise_path("/../../"), "/");
}

#[test]
fn methods_and_networks_narrow_a_rule() {
    let a = access(vec![
        RuleSpec { methods: strings(&["get", "HEAD"]), ..rule(&["app.example.com"], "bypass") },
        RuleSpec { networks: strings(&["10.0.0.0/8", "2001:db8::/32"]), ..rule(&["app.example.com"], "one_factor") },
    ]);
    let d = |method: &str, ip: &str| a.decide(&target("https://app.example.com/", method, ip), None).policy;
    assert_eq!(d("GET", "192.0.2.1"), Policy::Bypass);
    assert_eq!(d("head", "192.0.2.1"), Policy::Bypass);
    assert_eq!(d("POST", "10.9.9.9"), Policy::OneFactor);
    assert_eq!(d("POST", "::ffff:10.9.9.9"), Policy::OneFactor);
    assert_eq!(d("POST", "2001:db8::5"), Policy::OneFactor);
    assert_eq!(d("POST", "192.0.2.1"), Policy::Deny);
    assert_eq!(d("POST", "not an address"), Policy::Deny);
}

#[test]
fn subjects_need_an_identity_and_skip_the_rule_for_others() {
    let a = access(vec![
        RuleSpec {
            subject: strings(&["user:Ada@Example.com", "org:Acme"]),
            ..rule(&["app.example.com"], "two_factor")
        },
        rule(&["app.example.com"], "deny"),
    ]);
    let t = target("https://app.example.com/", "GET", "10.0.0.1");
    let anonymous = a.decide(&t, None);
    assert!(anonymous.needs_identity);
    assert_eq!(anonymous.matched, Matched::Rule(0));
    let none: [String; 0] = [];
    let acme = strings(&["Other", "Acme"]);
    let ada = Identity { email: "ada@example.com", orgs: &none };
    let bob_in_acme = Identity { email: "bob@example.com", orgs: &acme };
    let eve = Identity { email: "eve@example.com", orgs: &none };
    assert_eq!(a.decide(&t, Some(ada)).policy, Policy::TwoFactor);
    assert_eq!(a.decide(&t, Some(bob_in_acme)).policy, Policy::TwoFactor);
    let d = a.decide(&t, Some(eve));
    assert_eq!((d.policy, d.matched, d.needs_identity), (Policy::Deny, Matched::Rule(1), false));
    let (_, why) = a.explain(&t, Some(eve));
    assert!(why[0].contains("none of its subjects"), "{why:?}");
    assert!(why[1].contains("matches: deny"), "{why:?}");
}

#[test]
fn bad_rules_are_refused_with_their_key() {
    let cases = [
        (rule(&[], "deny"), "access.rules[0].domain"),
        (rule(&["app.example.com"], "allow"), "access.rules[0].policy"),
        (rule(&["app example.com"], "deny"), "access.rules[0].domain"),
        (rule(&["*"], "deny"), "access.rules[0].domain"),
        (RuleSpec { path: strings(&["^/(unclosed"]), ..rule(&["a.example.com"], "deny") }, "access.rules[0].path"),
        (RuleSpec { methods: strings(&["G ET"]), ..rule(&["a.example.com"], "deny") }, "access.rules[0].methods"),
        (
            RuleSpec { networks: strings(&["10.0.0.0/33"]), ..rule(&["a.example.com"], "deny") },
            "access.rules[0].networks",
        ),
        (
            RuleSpec { subject: strings(&["group:admins"]), ..rule(&["a.example.com"], "deny") },
            "access.rules[0].subject",
        ),
        (RuleSpec { subject: strings(&["user:"]), ..rule(&["a.example.com"], "deny") }, "access.rules[0].subject"),
    ];
    for (r, key) in cases {
        let e = AccessSpec { rules: vec![r], ..AccessSpec::default() }.compile().expect_err(key);
        assert_eq!(e.key, key, "{e}");
    }
    let e = AccessSpec { default_policy: "allow".into(), ..AccessSpec::default() }.compile().expect_err("policy");
    assert_eq!(e.key, "access.default_policy");
    let e = AccessSpec { cookie_domains: strings(&["com"]), ..AccessSpec::default() }.compile().expect_err("tld");
    assert_eq!(e.key, "access.cookie_domains[0]");
    let huge = RuleSpec { path: strings(&["(a{1000}){1000}"]), ..rule(&["a.example.com"], "deny") };
    assert!(AccessSpec { rules: vec![huge], ..AccessSpec::default() }.compile().is_err());
}

#[test]
fn return_targets_stay_within_the_cookie_domains() {
    let a = access(Vec::new());
    for ok in ["https://app.example.com/x?y=1#z", "https://example.com/", "https://a.b.example.com:8443/"] {
        assert!(a.return_target(ok, false).is_some(), "{ok}");
    }
    assert_eq!(a.return_target("http://app.example.com/", true).as_deref(), Some("http://app.example.com/"));
    for no in [
        "http://app.example.com/",
        "//evil.example",
        "/local/path",
        "https://example.com.evil/",
        "https://evilexample.com/",
        "https://evil.example/?https://app.example.com/",
        "https://app.example.com@evil.example/",
        "https://user@app.example.com/",
        "https://evil.example\\@app.example.com/",
        "https://evil.example\\.example.com/",
        "javascript:alert(1)//app.example.com",
        "JavaScript://app.example.com/%0aalert(1)",
        "data:text/html,https://app.example.com",
        "https%3A%2F%2Fevil.example",
        "https:%2F%2Fevil.example",
        "https://evil.example%2F.example.com/",
        "https://app.example.com/\n",
        "\thttps://app.example.com/",
        "https://10.0.0.1/",
        "ftp://app.example.com/",
        "",
    ] {
        assert_eq!(a.return_target(no, false), None, "{no:?}");
    }
    assert_eq!(a.return_target("http://evil.example/", true), None);
}

#[test]
fn the_longest_cookie_domain_holds_a_host() {
    let a = AccessSpec { cookie_domains: strings(&["example.com", "Tools.Example.com."]), ..AccessSpec::default() }
        .compile()
        .expect("valid");
    assert_eq!(a.cookie_domain_for("x.tools.example.com"), Some("tools.example.com"));
    assert_eq!(a.cookie_domain_for("auth.example.com"), Some("example.com"));
    assert_eq!(a.cookie_domain_for("example.org"), None);
}
