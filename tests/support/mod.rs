//! Test helpers: the app spawned on port 0 with a real store and a real SMTP server.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod process;
pub mod redis_server;
pub mod smtp_sink;
pub mod webhook_receiver;

/// Runs each named `async fn(Backend)` as a test on the embedded store and on a real
/// redis-server.
#[macro_export]
macro_rules! on_embedded_and_redis {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Backend::Embedded).await } )*
        }
        mod redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Backend::Redis).await } )*
        }
    };
}

/// As [`on_embedded_and_redis`], and on a three-master Redis Cluster too.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_embedded_and_redis!($($name),*);
        mod redis_cluster {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Backend::RedisCluster).await } )*
        }
    };
}
