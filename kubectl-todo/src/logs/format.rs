//! How one log line is printed: `component/pod/container message` (with a
//! colour per pod on a terminal), or one JSON object per line.

use std::io::{self, Write};
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::format::Format;

/// The container a line comes from.
#[derive(Debug)]
pub struct Source {
    pub component: String,
    pub pod: String,
    pub container: String,
    /// Printed instead of the pod name: the part that tells pods apart.
    short: String,
    /// Index into the palette; one per pod.
    colour: usize,
}

impl Source {
    pub fn new(
        component: &str,
        pod: &str,
        template_hash: Option<&str>,
        container: &str,
        colour: usize,
    ) -> Source {
        Source {
            component: component.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
            short: short_pod_name(pod, template_hash),
            colour,
        }
    }
}

/// `web-7d9f8c6b5-x2k4c` → `7d9f8c6b5-x2k4c`: the Deployment's name repeats
/// the component, while the template hash tells rollout generations apart.
fn short_pod_name(pod: &str, template_hash: Option<&str>) -> String {
    template_hash
        .filter(|h| !h.is_empty())
        .and_then(|h| {
            pod.find(&format!("-{h}-"))
                .map(|i| pod[i + 1..].to_string())
        })
        .unwrap_or_else(|| pod.to_string())
}

#[derive(Debug)]
pub struct Line {
    pub source: Arc<Source>,
    /// The kubelet's timestamp; `None` only when the server sent a line without one.
    pub time: Option<Timestamp>,
    pub message: String,
}

// Bright and normal green, yellow, blue, magenta and cyan: red is left to errors.
const PALETTE: [&str; 10] = ["32", "33", "34", "35", "36", "92", "93", "94", "95", "96"];

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: Format,
    pub timestamps: bool,
    pub colour: bool,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    time: Option<String>,
    component: &'a str,
    pod: &'a str,
    container: &'a str,
    message: &'a str,
}

impl Printer {
    pub fn write(&self, out: &mut impl Write, line: &Line) -> io::Result<()> {
        let source = &line.source;
        match self.format {
            Format::Json => {
                let json = JsonLine {
                    time: line.time.map(stamp),
                    component: &source.component,
                    pod: &source.pod,
                    container: &source.container,
                    message: &line.message,
                };
                serde_json::to_writer(&mut *out, &json)?;
                out.write_all(b"\n")
            }
            _ => {
                if self.colour {
                    let code = PALETTE[source.colour % PALETTE.len()];
                    write!(out, "\x1b[{code}m")?;
                }
                write!(
                    out,
                    "{}/{}/{}",
                    source.component, source.short, source.container
                )?;
                if self.colour {
                    out.write_all(b"\x1b[0m")?;
                }
                if let (true, Some(t)) = (self.timestamps, line.time) {
                    write!(out, " {}", stamp(t))?;
                }
                writeln!(out, " {}", line.message)
            }
        }
    }
}

/// The kubelet's own form: nine fractional digits, so that columns line up.
fn stamp(t: Timestamp) -> String {
    format!("{t:.9}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: &str, message: &str) -> Line {
        Line {
            source: Arc::new(Source::new(
                "backend",
                "backend-6d5f7c9b8-x2k4c",
                Some("6d5f7c9b8"),
                "api",
                2,
            )),
            time: Some(time.parse().unwrap()),
            message: message.to_string(),
        }
    }

    fn print(printer: Printer, line: &Line) -> String {
        let mut out = Vec::new();
        printer.write(&mut out, line).unwrap();
        String::from_utf8(out).unwrap()
    }

    const PLAIN: Printer = Printer {
        format: Format::Text,
        timestamps: false,
        colour: false,
    };

    #[test]
    fn text_lines_carry_component_short_pod_and_container() {
        let l = line("2025-05-01T12:00:00.5Z", "started");
        assert_eq!(print(PLAIN, &l), "backend/6d5f7c9b8-x2k4c/api started\n");
    }

    #[test]
    fn timestamps_come_after_the_prefix_with_nine_digits() {
        let l = line("2025-05-01T12:00:00.5Z", "started");
        let printer = Printer {
            timestamps: true,
            ..PLAIN
        };
        assert_eq!(
            print(printer, &l),
            "backend/6d5f7c9b8-x2k4c/api 2025-05-01T12:00:00.500000000Z started\n"
        );
    }

    #[test]
    fn colour_wraps_only_the_prefix() {
        let l = line("2025-05-01T12:00:00Z", "x");
        let printer = Printer {
            colour: true,
            ..PLAIN
        };
        assert_eq!(
            print(printer, &l),
            "\x1b[34mbackend/6d5f7c9b8-x2k4c/api\x1b[0m x\n"
        );
    }

    #[test]
    fn json_lines_hold_every_field_and_escape_the_message() {
        let l = line("2025-05-01T12:00:00Z", "say \"hi\"");
        let printer = Printer {
            format: Format::Json,
            ..PLAIN
        };
        let value: serde_json::Value = serde_json::from_str(&print(printer, &l)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "time": "2025-05-01T12:00:00.000000000Z",
                "component": "backend",
                "pod": "backend-6d5f7c9b8-x2k4c",
                "container": "api",
                "message": "say \"hi\"",
            })
        );
    }

    #[test]
    fn pods_outside_a_replica_set_keep_their_name() {
        assert_eq!(short_pod_name("standalone", None), "standalone");
        assert_eq!(short_pod_name("web-abc-x", Some("zzz")), "web-abc-x");
    }
}
