//! The pages rendered whole, from the built-in templates and from
//! overrides: what each says, that everything inserted is escaped, that
//! no page has a script, an inline style or an external resource, and
//! the branding and the stylesheet taken from `[ui]`.

use std::collections::BTreeMap;

use super::*;

const ASKED: Asked<'static> = Asked {
    browser: "Firefox on Windows",
    ip: "192.0.2.7",
    at: 1_798_216_380,
    now: 1_798_216_380 + 200,
};

fn ui() -> UiConfig {
    UiConfig {
        title: "Acme <Tools>".into(),
        accent: "#123456".into(),
        logo: None,
        footer: Some("\"footer\"".into()),
        templates_dir: None,
        templates: BTreeMap::new(),
    }
}

/// The check-email page for `a<b>@example.com`, a resend delay of 60 s.
fn check<'a>(csrf: &'a str, ttl_minutes: u64, notice: Option<&'a str>) -> CheckEmail<'a> {
    CheckEmail {
        csrf,
        address: Some("a<b>@example.com"),
        link_ttl: Duration::from_secs(ttl_minutes * 60),
        resend_delay: Duration::from_secs(60),
        notice,
    }
}

#[test]
fn provider_buttons_are_escaped_links_carrying_rd() {
    let p = Pages::new(&ui()).with_providers(
        vec![("corp".into(), "Sign in with <Corp> & \"Co\"".into())],
        true,
    );
    let page = p.login("/a?b=1&c=\"x\"", "t", None);
    assert!(
        page.contains(
            "<a class=\"button secondary provider\" href=\"/.portcullis/oidc/start?provider=corp&amp;rd=%2Fa%3Fb%3D1%26c%3D%22x%22\">Sign in with &lt;Corp&gt; &amp; &quot;Co&quot;</a>"
        ),
        "{page}"
    );
    assert!(page.contains("<p class=\"or\">or with your email</p>"));
    assert!(page.contains("name=\"email\""));
    // Without providers the page is as before.
    assert!(!Pages::new(&ui())
        .login("/", "t", None)
        .contains("providers"));
    // Email off: the buttons alone, as the main action, no form.
    let only = Pages::new(&ui())
        .with_providers(vec![("corp".into(), "Corp".into())], false)
        .login("/", "t", None);
    assert!(only.contains("<a class=\"button provider\""), "{only}");
    assert!(!only.contains("<form"), "{only}");
    assert!(!only.contains("class=\"or\""));
}

#[test]
fn check_email_repeats_the_address_and_says_what_to_do() {
    let p = Pages::new(&ui());
    let page = p.check_email(&check("c", 15, None));
    assert!(
        page.contains("If <strong class=\"address\">a&lt;b&gt;@example.com</strong> may sign in"),
        "{page}"
    );
    assert!(
        page.contains("one can be sent 1 minute after the last, and each works for 15 minutes."),
        "{page}"
    );
    let later = p.check_email(&CheckEmail {
        address: None,
        resend_delay: Duration::from_secs(90),
        ..check("c", 60, Some("That code is not right."))
    });
    assert!(later.contains("If this address may sign in"), "{later}");
    assert!(later.contains("one can be sent 90 seconds after the last, and each works for 1 hour."));
    let at_once = p.check_email(&CheckEmail {
        resend_delay: Duration::ZERO,
        ..check("c", 15, None)
    });
    assert!(at_once.contains("one can be sent at once, and each works for 15 minutes."));
}

fn every_page(p: &Pages) -> Vec<(&'static str, String)> {
    vec![
        ("login", p.login("/", "c", None)),
        (
            "login with notice",
            p.login("/", "c", Some("Enter one email address.")),
        ),
        ("check_email", p.check_email(&check("c", 15, None))),
        (
            "check_email with notice",
            p.check_email(&CheckEmail {
                address: None,
                ..check("c", 15, Some("1 try left."))
            }),
        ),
        ("verify_confirm", p.verify_confirm("t", "c", "a***@b.c")),
        ("verify_reveal", p.verify_reveal("t", "c")),
        ("verify_elsewhere", p.verify_elsewhere("ABCD-EFGH", &ASKED)),
        ("link_invalid", p.link_invalid()),
        ("code_locked", p.code_locked()),
        ("forbidden", p.forbidden("a@b.c", "c")),
        ("logout_confirm", p.logout_confirm("c", "/", Some("a@b.c"))),
        ("logout_confirm anonymous", p.logout_confirm("c", "/", None)),
        ("signed_out", p.signed_out()),
        ("error 400", p.error(400, "Bad Request", "x")),
        ("error 502", p.error(502, "Bad Gateway", "x")),
        ("error 504", p.error(504, "Gateway Timeout", "x")),
    ]
}

#[test]
fn everything_inserted_is_escaped() {
    let page = Pages::new(&ui()).login("/x\"><script>", "c\"s", Some("<b>"));
    assert!(!page.contains("<script>"));
    assert!(!page.contains("<b>"));
    assert!(page.contains("Acme &lt;Tools&gt;"));
    assert!(page.contains("&quot;footer&quot;"));
    assert!(page.contains("name=\"rd\" value=\"/x&quot;&gt;&lt;script&gt;\""));
    assert!(page.contains("name=\"csrf\" value=\"c&quot;s\""));
    assert!(page.contains("&lt;b&gt;"));
    let page = Pages::new(&ui()).forbidden("<i>@x", "c");
    assert!(page.contains("<strong>&lt;i&gt;@x</strong>"), "{page}");
    let page = Pages::new(&ui()).error(502, "<r>", "<m>");
    assert!(page.contains("&lt;r&gt;") && page.contains("&lt;m&gt;"));
}

#[test]
fn pages_have_no_scripts_inline_styles_or_external_resources() {
    for (name, page) in every_page(&Pages::new(&ui())) {
        let lower = page.to_ascii_lowercase();
        for bad in [
            "<script",
            " style=",
            "<style",
            " on",
            "http://",
            "https://",
            "javascript:",
        ] {
            let hit = match bad {
                // Only event-handler attributes, not words like "on".
                " on" => {
                    lower.contains(" onclick")
                        || lower.contains(" onload")
                        || lower.contains(" onsubmit")
                }
                _ => lower.contains(bad),
            };
            assert!(!hit, "{name} contains {bad:?}:\n{page}");
        }
        assert!(
            page.contains(&format!("href=\"{STYLESHEET_PATH}\"")),
            "{name}"
        );
        assert!(page.starts_with("<!doctype html>"), "{name}");
        assert!(page.contains("<title>"), "{name}");
        assert!(
            page.contains("Acme &lt;Tools&gt;"),
            "{name}: the site's name"
        );
        assert!(
            page.contains("Sign-in by Portcullis"),
            "{name}: the product's name"
        );
    }
}

/// Every visible input has a `<label for>`; every form posts to the gateway.
#[test]
fn every_input_has_a_label() {
    for (name, page) in every_page(&Pages::new(&ui())) {
        for input in page.split("<input").skip(1) {
            let tag = input.split('>').next().unwrap_or("");
            if tag.contains("type=\"hidden\"") {
                continue;
            }
            let id = tag.split("id=\"").nth(1).and_then(|r| r.split('"').next());
            let id = id.unwrap_or_else(|| panic!("{name}: input without id: {tag}"));
            assert!(
                page.contains(&format!("<label for=\"{id}\">")),
                "{name}: {id}"
            );
        }
        for form in page.split("<form").skip(1) {
            assert!(
                form.starts_with(" method=\"post\" action=\"/.portcullis/"),
                "{name}"
            );
            assert!(form.contains("name=\"csrf\" value=\"c\""), "{name}: csrf");
        }
    }
}

/// Strings the sign-in tests and people look for.
#[test]
fn the_words_that_matter() {
    let p = Pages::new(&ui());
    assert!(p
        .check_email(&check("c", 15, None))
        .contains("Check your email"));
    assert!(p
        .check_email(&check("c", 15, None))
        .contains("for 15 minutes"));
    assert!(p
        .check_email(&check("c", 120, None))
        .contains("for 2 hours"));
    assert!(p.link_invalid().contains("can no longer be used"));
    let shown = p.verify_elsewhere("ABCD-EFGH", &ASKED);
    assert!(shown.contains(">ABCD-EFGH<"));
    assert!(shown.contains(">Firefox on Windows<"), "{shown}");
    assert!(shown.contains(">192.0.2.7<"), "{shown}");
    assert!(shown.contains("about 3 minutes ago (25 December 2026, 16:33 UTC)"));
    assert!(shown.contains("If this was not you, do not type the code anywhere"));
    assert!(shown.contains("browser that asked"));
    let unknown = p.verify_elsewhere(
        "ABCD-EFGH",
        &Asked {
            browser: "",
            ip: "",
            ..ASKED
        },
    );
    assert!(unknown.contains(">unknown<"), "{unknown}");
    let reveal = p.verify_reveal("tok", "c");
    assert!(reveal.contains("name=\"token\" value=\"tok\""));
    assert!(reveal.contains("name=\"action\" value=\"show-code\""));
    assert!(!reveal.contains("code-box"));
    let confirm = p.verify_confirm("tok", "c", "a***@b.c");
    assert!(confirm.contains("name=\"token\" value=\"tok\""));
    assert!(confirm.contains("a***@b.c"));
    let forbidden = p.forbidden("alice@example.com", "c");
    assert!(forbidden.contains("alice@example.com"));
    assert!(forbidden.contains("action=\"/.portcullis/logout\""));
    let bye = p.logout_confirm("c", "/back", Some("a@b.c"));
    assert!(bye.contains("name=\"rd\" value=\"/back\"") && bye.contains("<strong>a@b.c</strong>"));
    let timeout = p.error(504, "Gateway Timeout", "It took too long to answer.");
    assert!(timeout.contains("504") && timeout.contains("took too long"));
    assert!(p
        .login(
            "/",
            "c",
            Some("Enter one email address, like name@example.com.")
        )
        .contains("role=\"alert\">Enter one email address"));
}

#[test]
fn branding_from_config() {
    let mut u = ui();
    u.logo = Some("/static/logo.svg?a=1&b=\"2\"".into());
    u.footer = None;
    let page = Pages::new(&u).signed_out();
    assert!(
        page.contains(
            "<img class=\"logo\" src=\"/static/logo.svg?a=1&amp;b=&quot;2&quot;\" alt=\"\">"
        ),
        "{page}"
    );
    assert!(!page.contains("class=\"mark\""));
    assert!(!page.contains("footer&quot;"));
    let page = Pages::new(&ui()).signed_out();
    assert!(
        page.contains("class=\"mark\""),
        "the mark stands in for a logo"
    );
    assert!(page.contains("<p>&quot;footer&quot;</p>"));
    assert!(page.contains("<link rel=\"icon\" href=\"data:image/svg+xml;base64,"));
}

#[test]
fn the_stylesheet_carries_the_palette_of_the_accent() {
    assert!(
        STYLESHEET.starts_with(&Palette::for_accent(DEFAULT_ACCENT).css()),
        "style.css must begin with the default palette:\n{}",
        Palette::for_accent(DEFAULT_ACCENT).css()
    );
    let mut u = ui();
    u.accent = "#ffd400".into();
    let css = Pages::new(&u).stylesheet();
    assert!(css.starts_with(STYLESHEET));
    assert!(css.ends_with(&Palette::for_accent("#ffd400").css()));
    assert!(css.contains("--on-accent: #1b1f24;"), "dark text on yellow");
}

#[test]
fn overrides_replace_built_in_templates() {
    let mut u = ui();
    u.templates.insert(
        "login.html".into(),
        "<h1>Hi {{site}}</h1><form method=\"post\" action=\"/.portcullis/login\">{{notice}}\
<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\"><input type=\"hidden\" name=\"rd\" value=\"{{rd}}\"></form>".into(),
    );
    u.templates
        .insert("layout.html".into(), "<main>{{content}}</main>".into());
    u.templates.insert("style.css".into(), "body{}".into());
    // Not valid: ignored here (config conversion refuses it earlier).
    u.templates
        .insert("signed_out.html".into(), "{{nope}}".into());
    let p = Pages::new(&u);
    assert_eq!(
        p.login("/r", "c", Some("<x>")),
        "<main><h1>Hi Acme &lt;Tools&gt;</h1><form method=\"post\" action=\"/.portcullis/login\">\
<p class=\"notice\" role=\"alert\">&lt;x&gt;</p>\n<input type=\"hidden\" name=\"csrf\" value=\"c\">\
<input type=\"hidden\" name=\"rd\" value=\"/r\"></form></main>"
    );
    assert!(p.signed_out().contains("You are signed out"));
    assert!(p.stylesheet().starts_with("body{}\n"));
}
