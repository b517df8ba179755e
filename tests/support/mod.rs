//! Test helpers: the app spawned on port 0 with a real store and a real SMTP server.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod redis_server;
pub mod smtp_sink;
pub mod process;
