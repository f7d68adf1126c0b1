//! The live progress display, drawn on stderr when it is a terminal: one spinner line per
//! `go build` in flight and one bar per blob upload with its bytes, drawn from the engine's
//! events. Log lines are printed above the bars. When stderr is not a terminal there is no
//! display, and stderr carries exactly the log lines.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ko_core::{Event, EventSink};

/// The display; cheap to clone.
#[derive(Clone)]
pub struct Display {
    multi: MultiProgress,
    /// Bars in flight, by what they show (`build <ip> <platform>`, `blob <repo> <digest>`).
    bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
}

impl Display {
    pub fn new() -> Display {
        Display { multi: MultiProgress::new(), bars: Arc::default() }
    }

    /// The event sink that draws this display.
    pub fn sink(&self) -> EventSink {
        let display = self.clone();
        Arc::new(move |event: &Event| display.on_event(event))
    }

    fn on_event(&self, event: &Event) {
        match event {
            Event::BuildStarted { import_path, platform } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("go build {import_path} ({platform})"));
                bar.enable_steady_tick(Duration::from_millis(100));
                self.insert(format!("build {import_path} {platform}"), bar);
            }
            Event::BuildFinished { import_path, platform, .. } => {
                self.remove(&format!("build {import_path} {platform}"))
            }
            Event::BlobProgress { repository, digest, sent, total } => {
                let key = format!("blob {repository} {digest}");
                let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
                let bar = bars.entry(key).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(*total));
                    bar.set_style(
                        ProgressStyle::with_template("↑ {bar:24.green/dim} {bytes:>10}/{total_bytes:<10} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    let short = digest.get(..19).unwrap_or(digest);
                    bar.set_message(format!("{repository} {short}"));
                    bar
                });
                bar.set_position(*sent);
            }
            Event::BlobUploaded { repository, digest, .. } => self.remove(&format!("blob {repository} {digest}")),
            _ => {}
        }
    }

    fn insert(&self, key: String, bar: ProgressBar) {
        if let Some(old) = self.bars.lock().unwrap_or_else(|p| p.into_inner()).insert(key, bar) {
            old.finish_and_clear();
        }
    }

    fn remove(&self, key: &str) {
        if let Some(bar) = self.bars.lock().unwrap_or_else(|p| p.into_inner()).remove(key) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    /// Takes every bar off the screen (before results are printed, and at exit).
    pub fn clear(&self) {
        for (_, bar) in self.bars.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    /// A writer for the logger that prints each log line above the bars.
    pub fn log_writer(&self) -> LogWriters {
        LogWriters { multi: self.multi.clone() }
    }
}

/// Makes one [`LogLine`] per log event.
pub struct LogWriters {
    multi: MultiProgress,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriters {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine { multi: self.multi.clone(), buf: Vec::new() }
    }
}

/// One log line, written to stderr with the bars out of the way once it is complete.
pub struct LogLine {
    multi: MultiProgress,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.multi.suspend(|| {
            let _ = std::io::stderr().write_all(&buf);
        });
    }
}
