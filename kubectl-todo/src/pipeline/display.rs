//! How `up` shows progress: a spinner per component on a terminal, plain
//! lines (one per change) when piped or with `NO_COLOR`, always on stderr so
//! that stdout holds only the result.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub trait Display: Send + Sync {
    /// A component's state changed; `done` when it has nothing left to do.
    fn component(&self, name: &str, line: &str, done: bool);
    /// Something worth a line of its own.
    fn note(&self, line: &str);
}

/// Spinners on a terminal without `NO_COLOR`, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Display> {
    if image_builder::term::styled(image_builder::term::Stream::Stderr) {
        Box::new(Spinners {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Box::new(Lines)
    }
}

pub struct Lines;

impl Display for Lines {
    fn component(&self, _name: &str, line: &str, _done: bool) {
        eprintln!("{line}");
    }

    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
}

struct Spinners {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Display for Spinners {
    fn component(&self, name: &str, line: &str, done: bool) {
        let mut bars = self.bars.lock().expect("display lock");
        let bar = bars.entry(name.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if done {
            bar.finish_with_message(format!("✓ {line}"));
        } else {
            bar.set_message(line.to_string());
        }
    }

    fn note(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        for bar in self.bars.lock().expect("display lock").values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}
