//! Generated benign requests, for the false-positive cost of each
//! paranoia level next to libinjection's list: what an ordinary API sees
//! (searches, names with apostrophes, addresses, free text with
//! punctuation and the odd `../` or `;`, JSON bodies, dates, e-mail
//! addresses, same-host and partner URLs, markdown). Deterministic.

use std::fmt::Write as _;

const SEARCHES: &[&str] = &[
    "red shoes size 42",
    "what's new?",
    "garden chairs & tables",
    "union jack mug",
    "select comfort mattress",
    "drop-leaf table (oak)",
    "usb-c cable 2m; braided",
    "50% off!!",
    "c++ for beginners",
    "rock & roll t-shirt",
    "path ../ explained",
    "where is my order #4411?",
    "tom's diner",
    "1/2 inch drill bit",
    "\"exact phrase\" search",
    "café au lait",
    "a or b",
    "update my address",
    "delete account how",
    "sleep mask",
];
const NAMES: &[&str] = &[
    "O'Brien",
    "D'Angelo",
    "Jean-Luc Picard",
    "Anne-Marie",
    "McDonald",
    "Zoë",
    "José",
    "O'Neil-Smith",
];
const TEXTS: &[&str] = &[
    "Please leave the parcel at the back door; the bell doesn't work.",
    "Meeting moved to 3pm (room 4B) - bring the Q3 figures.",
    "I can't log in since yesterday, it says 'invalid password' even after reset.",
    "Thanks for the quick reply :) see you on Monday!",
    "The docs at ../guide/setup say to run the installer twice, is that right?",
    "Item arrived damaged: box crushed & two cups broken.",
    "My address is 12 Rue de l'Église, 75004 Paris.",
    "Ratio should be 3:1, not 1:3 as on the label.",
    "**Great product**, would buy again. 5/5",
    "Use - or _ in the username, not spaces.",
    "If the light is red, unplug it and wait 10 s.",
    "Order #1234 and #1235 were charged twice?",
    "The select box on the form doesn't open in Firefox.",
    "Cancel & refund please; the union rep said so.",
];

fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The generated requests (raw bytes).
pub fn requests() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let head = |line: &str, extra: &str, body: &str| {
        let mut r = format!(
            "{line} HTTP/1.1\r\nHost: api.shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n{extra}"
        );
        if !body.is_empty() {
            let _ = write!(r, "Content-Length: {}\r\n", body.len());
        }
        r.push_str("\r\n");
        r.push_str(body);
        r.into_bytes()
    };
    for (i, s) in SEARCHES.iter().enumerate() {
        out.push(head(
            &format!(
                "GET /api/v1/search?q={}&page={}&sort=price_asc",
                q(s),
                i % 5 + 1
            ),
            "",
            "",
        ));
    }
    for (i, n) in NAMES.iter().enumerate() {
        let body = format!(
            r#"{{"name": "{n}", "email": "user{i}@mail.example", "phone": "+33 1 23 45 67 {i:02}", "birthday": "1990-0{}-1{}"}}"#,
            i % 9 + 1,
            i % 9
        );
        out.push(head(
            "POST /api/v1/profile",
            "Content-Type: application/json\r\n",
            &body,
        ));
        let form = format!(
            "first_name={}&last_name={}&newsletter=on",
            q(n),
            q("Smith & Sons")
        );
        out.push(head(
            "POST /account/update",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            &form,
        ));
    }
    for (i, t) in TEXTS.iter().enumerate() {
        let body = serde_json::json!({"subject": format!("Ticket {i}"), "message": t, "priority": "normal"}).to_string();
        out.push(head(
            "POST /api/v1/support/tickets",
            "Content-Type: application/json\r\n",
            &body,
        ));
        out.push(head(
            &format!("GET /api/v1/reviews?comment={}", q(t)),
            "",
            "",
        ));
    }
    for (i, url) in [
        "https://api.shop.example/api/v1/orders?page=2",
        "https://partner.example.net/oauth/callback",
        "https://www.google.com/search?q=shoes",
        "https://cdn.shop.example/img/banner.png",
        "https://hooks.partner.example/notify",
    ]
    .iter()
    .enumerate()
    {
        out.push(head(
            &format!("GET /login?redirect_uri={}&state=xyz{i}", q(url)),
            "",
            "",
        ));
    }
    // Shapes the newer readings must leave alone: a PHP site's pages,
    // accented and fullwidth text, an avatar as a data URL, a telemetry
    // body with its own session id, JavaScript-like text with escapes.
    for (line, extra, body) in [
        ("GET /index.php?page=2&lang=fr", "", String::new()),
        ("GET /wp-admin/admin-ajax.php?action=heartbeat", "", String::new()),
        (
            "POST /api/v1/profile",
            "Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n",
            format!("name={}&city={}", q("Françoise Müller"), q("Köln (Ehrenfeld)")),
        ),
        (
            "POST /api/v1/notes",
            "Content-Type: application/json\r\n",
            r#"{"text": "Preis: ¼ Liter für 3€ — über die Brücke à la carte", "tags": ["（全角）", "日本語。"]}"#.to_string(),
        ),
        (
            "POST /api/v1/avatar",
            "Content-Type: application/json\r\n",
            r#"{"image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}"#.to_string(),
        ),
        (
            "POST /api/v1/events",
            "Content-Type: application/json\r\n",
            r#"{"session_id": "c0ffee42", "sid": "a1", "event": "page_view", "path": "/pricing"}"#.to_string(),
        ),
        (
            "POST /api/v1/snippets",
            "Content-Type: application/json\r\n",
            r#"{"title": "Unicode in JSON", "body": "Write \\u00e9 for é and \\x41 for A."}"#.to_string(),
        ),
        (
            "GET /api/v1/users?username__sort=asc&first__name=ann",
            "",
            String::new(),
        ),
    ] {
        out.push(head(line, extra, &body));
    }
    for i in 0..20 {
        out.push(head(
            &format!(
                "GET /api/v1/orders/{}/items?fields=id,name,price&expand=true",
                10_000 + i * 37
            ),
            "Accept: application/json\r\nReferer: https://api.shop.example/orders\r\n",
            "",
        ));
    }
    out
}
