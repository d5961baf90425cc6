//! Forwarding headers: the client of a proxied request is found (or not)
//! without panicking, for both believed headers.
#![no_main]

use jwtmon::capture::config::ForwardedHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let hops: Vec<String> = text.split(',').map(str::to_string).collect();
    let req = jwtmon::parse::Request {
        forwarded_for: hops.clone(),
        forwarded: hops,
        ..Default::default()
    };
    let trusted = [
        "127.0.0.0/8".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
    ];
    for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        let _ = jwtmon::observe::client::client_ip(
            "127.0.0.1".parse().unwrap(),
            &req,
            &trusted,
            header,
        );
    }
    let mut s = jwtmon::observe::client::SuspectedProxies::new(3, 8);
    let _ = s.suspect(
        "192.0.2.1".parse().unwrap(),
        &req,
        ForwardedHeader::XForwardedFor,
    );
});
