//! The streaming-lag step kinds against real parts: `kafka_consumer_lag` runs a stand-in
//! `kafka-consumer-groups` (a busybox script printing Kafka 3.x's table) in a real container
//! ([`kafka`]), and `spark_master_status` / `prometheus_range` query tiny axum servers that
//! answer on the real paths with the fixture JSON ([`http`]).

pub(crate) mod http;
pub(crate) mod kafka;
