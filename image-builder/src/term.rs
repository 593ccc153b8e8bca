//! What both binaries draw on a terminal: the one rule for colour and
//! spinners, and the build progress widget (`image-builder build` and
//! `kubectl todo up` show the same one).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use crate::build::{Event, Progress};

/// An output stream of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether `NO_COLOR` asks for no colour: set to a non-empty value, as
/// <https://no-color.org> defines it (`NO_COLOR=` alone asks for nothing).
pub fn no_color() -> bool {
    asks_for_no_color(std::env::var_os("NO_COLOR").as_deref())
}

fn asks_for_no_color(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Colour, spinners and other terminal styling on `stream`: only for a
/// person at a terminal who has not asked for none.
pub fn styled(stream: Stream) -> bool {
    let tty = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    tty && !no_color()
}

/// Progress on a terminal (indicatif spinners) or as plain lines.
pub struct TermProgress {
    bars: Option<(
        indicatif::MultiProgress,
        Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    )>,
    enabled: bool,
}

impl TermProgress {
    pub fn new(enabled: bool) -> Self {
        TermProgress {
            bars: (enabled && styled(Stream::Stderr)).then(|| {
                (
                    indicatif::MultiProgress::new(),
                    Mutex::new(Default::default()),
                )
            }),
            enabled,
        }
    }

    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for b in bars.lock().expect("progress lock").values() {
                b.finish_and_clear();
            }
        }
    }
}

impl Progress for TermProgress {
    fn event(&self, component: &str, event: Event) {
        if !self.enabled {
            return;
        }
        match &self.bars {
            None => match event {
                Event::Status(s) | Event::Step(s) => eprintln!("[{component}] {s}"),
                Event::Output(s) => eprintln!("[{component}]   {s}"),
                Event::Done(s) => eprintln!("[{component}] {s}"),
            },
            Some((multi, bars)) => {
                let mut bars = bars.lock().expect("progress lock");
                let bar = bars.entry(component.to_string()).or_insert_with(|| {
                    let b = multi.add(indicatif::ProgressBar::new_spinner());
                    b.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} {prefix:.bold} {wide_msg}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                    );
                    b.set_prefix(component.to_string());
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                match event {
                    Event::Status(s) | Event::Step(s) => bar.set_message(s),
                    Event::Output(_) => {}
                    Event::Done(s) => bar.finish_with_message(s),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::asks_for_no_color;

    #[test]
    fn no_color_is_any_non_empty_value() {
        assert!(!asks_for_no_color(None));
        assert!(!asks_for_no_color(Some(OsStr::new(""))));
        assert!(asks_for_no_color(Some(OsStr::new("1"))));
        assert!(asks_for_no_color(Some(OsStr::new("0"))));
        assert!(asks_for_no_color(Some(OsStr::new("false"))));
    }
}
