//! Log lines on stderr in upstream's shape: Go's `log` prefix (`2006/01/02 15:04:05`, UTC here)
//! then the message. ko's own progress is info; `-v` adds debug detail from the core and registry.
//! With a progress display on the terminal, each line is printed above its bars.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use crate::progress::Display;

struct GoLogFormat;

impl<S, N> FormatEvent<S, N> for GoLogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let stamp = ko_core::image::time::rfc3339(now);
        // 1970-01-01T00:00:00Z -> 1970/01/01 00:00:00
        write!(writer, "{} {} ", stamp[..10].replace('-', "/"), &stamp[11..19])?;
        match *event.metadata().level() {
            Level::WARN => write!(writer, "WARNING: ")?,
            Level::ERROR => write!(writer, "ERROR: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the stderr logger, writing through `progress` when there is a display.
pub fn init(verbose: bool, progress: Option<&Display>) {
    let default = if verbose { "ko_core=debug,info" } else { "ko_core=info,warn" };
    let filter = EnvFilter::try_from_env("KO_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).event_format(GoLogFormat);
    match progress {
        Some(display) => builder.with_writer(display.log_writer()).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}
