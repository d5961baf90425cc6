use super::*;

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

fn one(data: &[u8]) -> Result<Request, Malformed> {
    parse_requests(data, true)
        .into_iter()
        .next()
        .expect("one result")
}

#[test]
fn full_request_fields() {
    let raw = format!(
        "POST /api/v1/login?next=%2Fhome&x=1 HTTP/1.1\r\nHost: api.example\r\nUser-Agent: curl/8\r\n\
         Authorization: Bearer {JWT}\r\nCookie: session=abc; theme=dark\r\nContent-Type: application/json\r\n\
         Content-Length: 17\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n\r\n{{\"user\":\"alice\"}}"
    );
    let r = one(raw.as_bytes()).unwrap();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v1/login")
    );
    assert_eq!(r.query.as_deref(), Some("next=%2Fhome&x=1"));
    assert_eq!(r.version, 1);
    assert_eq!(r.host.as_deref(), Some("api.example"));
    assert_eq!(r.user_agent.as_deref(), Some("curl/8"));
    let c = r.credentials.as_ref().unwrap();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.token_id(), token_id(JWT));
    assert_eq!(c.token_id().len(), 16);
    assert_eq!(c.expose_secret(), JWT);
    // Debug never shows the secret.
    assert!(!format!("{r:?}").contains(JWT));
    assert_eq!(r.cookie_names(), ["session", "theme"]);
    assert!(!format!("{r:?}").contains("abc"));
    assert_eq!(r.content_length, Some(17));
    assert_eq!(r.body, b"{\"user\":\"alice\"}");
    assert_eq!(r.forwarded_for, ["203.0.113.9", "10.0.0.1"]);
    assert!(!r.truncated);
}

#[test]
fn pipelined_requests_all_parse() {
    let raw = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c?q=1 HTTP/1.1\r\n\r\n";
    let got: Vec<String> = parse_requests(raw, true)
        .into_iter()
        .map(|r| r.unwrap().path)
        .collect();
    assert_eq!(got, ["/a", "/b", "/c"]);
}

#[test]
fn cut_header_block_is_truncated_but_usable() {
    let raw = format!(
        "GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {JWT}\r\nUser-Agent: verylongagentthatgetscu"
    );
    let r = parse_requests(raw.as_bytes(), false).remove(0).unwrap();
    assert!(r.truncated);
    assert_eq!(r.path, "/x");
    assert_eq!(r.credentials.unwrap().token_id(), token_id(JWT));
    assert_eq!(r.user_agent, None);
}

#[test]
fn malformed_requests_are_classified() {
    let cases: &[(&[u8], Malformed)] = &[
        (
            b"GET /x HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
            Malformed::HeaderName,
        ),
        (b"GE(T /x HTTP/1.1\r\n\r\n", Malformed::RequestLine),
        (b"GET /x HTTP/2.7\r\n\r\n", Malformed::Version),
        (
            b"GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
            Malformed::HeaderName,
        ),
        (
            b"GET /x HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            Malformed::HeaderValue,
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Malformed::ContentLengthAndTransferEncoding,
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            Malformed::ContentLength,
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: -3\r\n\r\n",
            Malformed::ContentLength,
        ),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            Malformed::TransferEncoding,
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(one(raw), Err(*want), "{}", String::from_utf8_lossy(raw));
    }
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        one(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
        Err(Malformed::TooManyHeaders)
    );
    // A request line longer than the capture.
    let long = format!("GET /{} HTTP/1.1", "a".repeat(5000));
    assert_eq!(
        parse_requests(&long.as_bytes()[..2048], false)[0],
        Err(Malformed::Oversize)
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Deterministic pseudo-random inputs around HTTP-ish prefixes.
    let mut x: u64 = 0x1234_5678;
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 300) as usize;
        let mut buf: Vec<u8> = if i % 2 == 0 {
            b"GET / HTTP/1.1\r\n".to_vec()
        } else {
            Vec::new()
        };
        let mut y = x;
        for _ in 0..len {
            y = y
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let alphabet = b"\r\n :/aZ\x00\xffHTTP1.0-=;,\"[]";
            buf.push(alphabet[(y >> 40) as usize % alphabet.len()]);
        }
        let _ = parse_requests(&buf, i % 3 == 0);
        let _ = parse_responses(&buf);
    }
}

#[test]
fn responses_and_pipelined_responses() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 401 Unauthorized\r\n";
    let codes: Vec<u16> = parse_responses(raw).iter().map(|r| r.status).collect();
    assert_eq!(codes, [200, 404, 401]);
    assert!(parse_responses(b"garbage").is_empty());
}

#[test]
fn smuggling_shapes_are_malformed() {
    let cases: &[(&[u8], Malformed)] = &[
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", Malformed::NewLine),
        (
            b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
            Malformed::NewLine,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
            Malformed::HeaderValue,
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\x0cb\r\n\r\n",
            Malformed::HeaderValue,
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
            Malformed::HeaderValue,
        ),
    ];
    for (input, want) in cases {
        let got = parse_requests(input, true);
        assert_eq!(got[0], Err(*want), "{:?}", String::from_utf8_lossy(input));
    }
    // Tabs and obs-text stay legal in values.
    let ok = parse_requests(b"GET / HTTP/1.1\r\nX: a\tb\xc3\xa9\r\n\r\n", true);
    assert!(ok[0].is_ok());
}

#[test]
fn parsing_stops_where_http_ends() {
    // After an upgrade or CONNECT the stream is another protocol.
    for head in [
        &b"GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
        b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n",
    ] {
        let mut data = head.to_vec();
        data.extend_from_slice(b"\x16\x03\x01 binary tunnel bytes");
        let got = parse_requests(&data, true);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].as_ref().unwrap().upgrade);
    }
    // Empty lines between pipelined requests are skipped, and a body
    // longer than the capture does not run past it.
    let got = parse_requests(
        b"GET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n\n",
        true,
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(Result::is_ok));
    let got = parse_requests(b"POST /a HTTP/1.1\r\nContent-Length: 99\r\n\r\nab", true);
    assert_eq!(got.len(), 1);
}

#[test]
fn absolute_form_targets_become_origin_form_with_their_authority() {
    let r =
        one(b"GET http://api.example:8080/v1/items?id=7 HTTP/1.1\r\nHost: other\r\n\r\n").unwrap();
    assert_eq!(
        (r.path.as_str(), r.query.as_deref()),
        ("/v1/items", Some("id=7"))
    );
    assert_eq!(r.host.as_deref(), Some("api.example:8080"));
    // Userinfo is a credential: dropped. No path is "/"; a fragment goes.
    let r = one(b"GET HTTPS://user:secret@h?x=1#frag HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!((r.path.as_str(), r.query.as_deref()), ("/", Some("x=1")));
    assert_eq!(r.host.as_deref(), Some("h"));
    let r = one(b"GET http://h HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(r.path, "/");
    // Origin form, asterisk and scheme-like paths are left alone.
    for (line, path) in [
        (&b"GET /a/http://b HTTP/1.1\r\n\r\n"[..], "/a/http://b"),
        (b"OPTIONS * HTTP/1.1\r\n\r\n", "*"),
        (b"GET /x?next=http://evil/ HTTP/1.1\r\n\r\n", "/x"),
    ] {
        assert_eq!(one(line).unwrap().path, path);
    }
    assert_eq!(
        crate::endpoint::endpoint(
            "GET",
            &one(b"GET http://h:1/api/v1/users/42 HTTP/1.1\r\n\r\n")
                .unwrap()
                .path
        ),
        "GET /api/v1/users/{id}"
    );
}
