//! Owns log output: tracing-subscriber with an EnvFilter, as text or JSON lines on stderr.
//! Logging never takes the program down: a closed or full stderr loses log lines, never
//! a task.

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Starts logging with a filter that configuration has already validated.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        // A write error would be reported through the same broken stderr.
        .log_internal_errors(false)
        // Colour codes only help a person at a terminal; they corrupt log files and shippers.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

/// stderr that swallows its own errors. When the reader of natsmon's stderr has gone
/// (`natsmon 2>&1 | head`), a failing write must cost the line, not the task that logged.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
