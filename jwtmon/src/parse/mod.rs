//! Parse: HTTP/1.x requests and responses from captured payload bytes.

pub mod http;

pub use http::{
    Credentials, Hidden, Malformed, Request, Response, hex16, parse_requests, parse_responses,
    token_id,
};

#[cfg(test)]
mod tests;
