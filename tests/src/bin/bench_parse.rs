//! `cargo xtask bench-parse`: requests/second on one core through the
//! parser alone and through parse + pairing (the observer), next to raw
//! httparse on the same bytes in the same run. Realistic requests: about
//! 600 bytes of headers including a 400-byte JWT.

use std::{
    hint::black_box,
    time::{Duration, Instant, SystemTime},
};

use jwtmon::{
    capture::config::CaptureConfig,
    capture::{Direction, Segment},
    observe::Observer,
    parse::parse_requests,
};

/// The allocator the daemon uses (the parser's copies are its cost).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: usize = 200_000;

fn request(i: usize) -> Vec<u8> {
    let jwt = format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
        "A".repeat(200),
        "s".repeat(160 + i % 7)
    );
    format!(
        "GET /api/v1/accounts/{i}/balance?currency=EUR HTTP/1.1\r\nHost: api.bank.example\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0\r\n\
         Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\n\
         Authorization: Bearer {jwt}\r\nX-Request-Id: 4f7d2c1e-{i:08}\r\n\
         Cookie: session=abcdef0123456789; theme=dark\r\n\r\n"
    )
    .into_bytes()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let reqs: Vec<Vec<u8>> = (0..1024).map(request).collect();
    let avg = reqs.iter().map(Vec::len).sum::<usize>() / reqs.len();

    // Baseline: httparse alone.
    let t = Instant::now();
    for i in 0..N {
        let mut h = [httparse::EMPTY_HEADER; 96];
        let mut r = httparse::Request::new(&mut h);
        black_box(r.parse(black_box(&reqs[i % reqs.len()])).ok());
    }
    let base = rate(N, t.elapsed());

    // Baseline for pairing: what any consumer of the ring buffer must do
    // at least (copy each record out, httparse the request and response).
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let t = Instant::now();
    for i in 0..N {
        let data = black_box(&reqs[i % reqs.len()]).clone();
        let mut h = [httparse::EMPTY_HEADER; 96];
        let mut r = httparse::Request::new(&mut h);
        black_box(r.parse(&data).ok());
        let data = black_box(resp).to_vec();
        let mut h = [httparse::EMPTY_HEADER; 96];
        let mut r = httparse::Response::new(&mut h);
        black_box(r.parse(&data).ok());
    }
    let base_pair = rate(N, t.elapsed());

    // jwtmon's parser (fields, token hashing, cookies).
    let t = Instant::now();
    for i in 0..N {
        black_box(parse_requests(black_box(&reqs[i % reqs.len()]), true));
    }
    let parse = rate(N, t.elapsed());

    // Parse + pair: requests and responses on 1,000 keep-alive flows.
    let mut obs = Observer::new(&CaptureConfig::default());
    let mut out = Vec::new();
    let server = "10.0.0.1:8080".parse().unwrap();
    let now = SystemTime::now();
    let clients: Vec<std::net::SocketAddr> = (0..1000)
        .map(|i| {
            format!("10.1.{}.{}:{}", i / 250, i % 250, 40000 + i)
                .parse()
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    for i in 0..N {
        let client = clients[i % clients.len()];
        let data = reqs[i % reqs.len()].clone();
        let len = data.len() as u32;
        obs.push(
            Segment {
                dir: Direction::Request,
                time: now,
                src: client,
                dst: server,
                seq: 1,
                ack: 1,
                payload_len: len,
                data,
                transport: jwtmon::capture::Transport::Tcp,
            },
            &mut out,
        );
        obs.push(
            Segment {
                dir: Direction::Response,
                time: now,
                src: server,
                dst: client,
                seq: 1,
                ack: 1 + len,
                payload_len: 40,
                data: resp.to_vec(),
                transport: jwtmon::capture::Transport::Tcp,
            },
            &mut out,
        );
        if out.len() > 4096 {
            black_box(&out);
            out.clear();
        }
    }
    let pair = rate(N, t.elapsed());
    assert_eq!(obs.stats.paired as usize, N);

    println!("one core, {N} requests of {avg} bytes (JWT of ~400 bytes)");
    println!();
    println!("| stage | requests/s | vs. httparse alone |");
    println!("|---|---:|---:|");
    println!("| baseline: httparse::Request::parse | {base:.0} | 1.00x |");
    println!(
        "| jwtmon parse (all fields; token hashed lazily) | {parse:.0} | {:.2}x |",
        parse / base
    );
    println!("| baseline: copy out + httparse request and response | {base_pair:.0} | 1.00x |");
    println!(
        "| jwtmon parse + pair (Observer, 1,000 flows) | {pair:.0} | {:.2}x |",
        pair / base_pair
    );
}
