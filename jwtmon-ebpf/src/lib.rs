//! Empty library target: lets `jwtmon`'s build script depend on this crate so
//! cargo rebuilds the embedded object whenever the kernel programs change.
#![no_std]
