//! Logging (B6): one JSON object per line on stdout (or pretty on a TTY), level by
//! `ABBOTIK_LOG`; Prometheus metrics recorder for the metrics listener.

use crate::config::Config;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::Write as _;
use tracing_subscriber::fmt::MakeWriter as _;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber. Lines are written by a background thread (request handling never
/// waits on stdout, [`crate::logsink`]); the returned guard flushes them when dropped at exit.
pub fn init_logging(cfg: &Config, to_stdout: bool) -> crate::logsink::LogGuard {
    // PostgreSQL notices ("already exists, skipping" of idempotent DDL) are not news.
    let filter = EnvFilter::try_new(format!("tokio_postgres=warn,{}", cfg.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let sink: Box<dyn std::io::Write + Send> = if to_stdout {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::stderr())
    };
    let (writer, guard) = crate::logsink::sink(sink);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone());
    if cfg.log_json {
        let access = writer.clone();
        let installed = builder
            .fmt_fields(crate::logfmt::span_fields())
            .event_format(crate::logfmt::JsonLines)
            .try_init();
        if installed.is_ok() {
            abbotik_http::request_log::set_access_writer(Box::new(move |r, status, ms| {
                let line = crate::logfmt::access_line(r, status, ms);
                // A log line that cannot be written has nowhere else to go.
                let _ = access.make_writer().write_all(line.as_bytes());
            }));
        }
    } else {
        let _ = builder.event_format(crate::logfmt::PrettyLines).try_init();
    }
    guard
}

/// Installs the global metrics recorder; `None` when metrics are off or already installed.
pub fn init_metrics(cfg: &Config) -> Option<PrometheusHandle> {
    if !cfg.metrics_enabled {
        return None;
    }
    let handle = PrometheusBuilder::new().install_recorder().ok()?;
    metrics::gauge!("abbotik_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => option_env!("ABBOTIK_COMMIT").unwrap_or("unknown"), "region" => cfg.region.clone()).set(1.0);
    Some(handle)
}
