//! Test helpers: the app spawned on port 0 with a real store and a real SMTP server.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod process;
pub mod redis_server;
pub mod smtp_sink;
pub mod webhook_receiver;

pub use redis_server::free_port;

/// Runs each named `async fn(B)` as a test once per listed backend, as
/// `<module>::<test name>`: `on_backends!([embedded => Backend::Embedded, redis =>
/// Backend::Redis], my_test)`. The backend expression is evaluated inside the test
/// (it may `.await`), with the calling module's items in scope.
#[macro_export]
macro_rules! on_backends {
    ([$module:ident => $backend:expr $(, $rest:ident => $rest_backend:expr)* $(,)?], $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($backend).await } )*
        }
        $crate::on_backends!([$($rest => $rest_backend),*], $($name),*);
    };
    ([], $($name:ident),* $(,)?) => {};
}

/// The embedded store and a real redis-server.
#[macro_export]
macro_rules! on_embedded_and_redis {
    ($($name:ident),* $(,)?) => {
        $crate::on_backends!(
            [embedded => Backend::Embedded, redis => Backend::Redis],
            $($name),*
        );
    };
}

/// As [`on_embedded_and_redis`], and on a three-master Redis Cluster too.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_backends!(
            [
                embedded => Backend::Embedded,
                redis => Backend::Redis,
                redis_cluster => Backend::RedisCluster,
            ],
            $($name),*
        );
    };
}
