//! The interactive flow on a terminal: hidden input with confirmation, an
//! offer to generate values, and Ctrl-C that cancels before anything is
//! written. The terminal's own line editing and signals are off while a
//! value is typed, so that Ctrl-C arrives as a byte the flow can act on
//! and the terminal is always restored.

use std::collections::VecDeque;
use std::io::{IsTerminal as _, Write as _};

use rustix::stdio::stdin;
use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

use crate::project::{KeyFormat, SecretKey};

use super::error::Error;
use super::validate;
use super::value::Value;

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;
const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;

/// How many failed tries (mismatch or invalid) a key gets.
const TRIES: usize = 3;

pub struct Terminal {
    pending: VecDeque<u8>,
}

/// Restores the terminal's modes, whichever way the read ends.
struct ModeGuard {
    saved: Termios,
}

/// The modes to restore while a read has changed them, for
/// [`restore_terminal`]: a process that ends on a signal runs no destructor.
static CHANGED: std::sync::Mutex<Option<Termios>> = std::sync::Mutex::new(None);

impl ModeGuard {
    fn new(saved: Termios) -> ModeGuard {
        *CHANGED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved.clone());
        ModeGuard { saved }
    }
}

impl Drop for ModeGuard {
    fn drop(&mut self) {
        CHANGED.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = termios::tcsetattr(stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Gives the terminal its modes back if a read has them changed now.
pub fn restore_terminal() {
    if let Some(saved) = CHANGED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = termios::tcsetattr(stdin(), OptionalActions::Now, &saved);
        // The prompt's line stays unfinished otherwise.
        eprintln!();
    }
}

/// What the user chose for one key.
pub enum Answer {
    Keep,
    Skip,
    Typed(Value),
    Generated(Value),
}

impl Terminal {
    /// A terminal when stdin is one.
    pub fn detect() -> Option<Terminal> {
        std::io::stdin().is_terminal().then(|| Terminal {
            pending: VecDeque::new(),
        })
    }

    pub fn say(&mut self, line: &str) {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "{line}");
        let _ = err.flush();
    }

    /// Asks for one key: keeps the current value (when `existing` and the user
    /// says so), generates one, or reads it hidden twice and validates it.
    pub fn ask(
        &mut self,
        spec: &SecretKey,
        existing: Option<&Value>,
        ask_replace: bool,
    ) -> Result<Answer, Error> {
        let key = &spec.name;
        self.say(&describe(spec));
        if let (Some(current), true) = (existing, ask_replace) {
            let question = format!(
                "  {key} is already set ({} bytes, {}). Replace it?",
                current.len(),
                current.fingerprint()
            );
            if !self.yes_no(&question, false)? {
                return Ok(Answer::Keep);
            }
        }
        if let Some(n) = spec.generate_bytes {
            let question = format!("  Generate a random value ({n} random bytes, base64url)?");
            if self.yes_no(&question, true)? {
                return Value::generate(n)
                    .map(Answer::Generated)
                    .map_err(Error::Terminal);
            }
        }
        let mut failures = 0;
        while failures < TRIES {
            let value = self.hidden(&format!("  {key} (input hidden): "))?;
            if value.is_empty() && !spec.required {
                return Ok(Answer::Skip);
            }
            let verdict = validate::value(Some(spec), &value);
            if let Some(reason) = verdict.error {
                self.say(&format!("  {key} {reason}; try again"));
                failures += 1;
                continue;
            }
            let again = self.hidden(&format!("  {key} again to confirm: "))?;
            if again != value {
                self.say("  the two values differ; try again");
                failures += 1;
                continue;
            }
            if let Some(warning) = verdict.warning {
                self.say(&format!("  warning: {key} {warning}"));
            }
            return Ok(Answer::Typed(value));
        }
        Err(Error::Attempts { key: key.clone() })
    }

    fn yes_no(&mut self, question: &str, default: bool) -> Result<bool, Error> {
        let choices = if default { "[Y/n]" } else { "[y/N]" };
        loop {
            let answer = self.line(&format!("{question} {choices} "), true)?;
            match answer
                .text()
                .map(|s| s.trim().to_ascii_lowercase())
                .as_deref()
            {
                Some("") => return Ok(default),
                Some("y" | "yes") => return Ok(true),
                Some("n" | "no") => return Ok(false),
                _ => self.say("  please answer y or n"),
            }
        }
    }

    fn hidden(&mut self, prompt: &str) -> Result<Value, Error> {
        self.line(prompt, false)
    }

    /// Reads one line byte by byte with canonical mode and signals off.
    /// `echo` shows what is typed (answers) or nothing at all (values).
    fn line(&mut self, prompt: &str, echo: bool) -> Result<Value, Error> {
        let saved = termios::tcgetattr(stdin()).map_err(|e| Error::Terminal(e.into()))?;
        let mut raw = saved.clone();
        // Echo is ours, not the terminal's: without canonical mode it would show Enter as `^J`.
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ISIG | LocalModes::ECHO);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        let _guard = ModeGuard::new(saved);
        termios::tcsetattr(stdin(), OptionalActions::Now, &raw)
            .map_err(|e| Error::Terminal(e.into()))?;
        // Only now that echo is off: keys typed as soon as the prompt shows stay hidden.
        let mut err = std::io::stderr();
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
        let mut buf = Vec::new();
        let result = loop {
            let Some(b) = self.next_byte()? else {
                break Err(Error::Cancelled);
            };
            match b {
                b'\n' | b'\r' => break Ok(Value::new(std::mem::take(&mut buf))),
                CTRL_C => break Err(Error::Cancelled),
                CTRL_D if buf.is_empty() => break Err(Error::Cancelled),
                CTRL_U => buf.clear(),
                BACKSPACE | DELETE => {
                    if echo && !buf.is_empty() {
                        let _ = write!(err, "\x08 \x08");
                    }
                    pop_char(&mut buf);
                }
                _ => {
                    if echo {
                        let _ = err.write_all(&[b]);
                    }
                    buf.push(b);
                }
            }
            let _ = err.flush();
        };
        let _ = writeln!(err);
        result
    }

    /// Reads in chunks so that a pasted value is fast; what follows the end
    /// of a line waits for the next prompt.
    fn next_byte(&mut self) -> Result<Option<u8>, Error> {
        if let Some(b) = self.pending.pop_front() {
            return Ok(Some(b));
        }
        let mut chunk = [0u8; 4096];
        loop {
            match rustix::io::read(stdin(), &mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    self.pending.extend(&chunk[..n]);
                    return Ok(self.pending.pop_front());
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::Terminal(e.into())),
            }
        }
    }
}

/// Removes the last UTF-8 character, continuation bytes included.
fn pop_char(buf: &mut Vec<u8>) {
    while let Some(b) = buf.pop() {
        if b & 0b1100_0000 != 0b1000_0000 {
            break;
        }
    }
}

fn describe(spec: &SecretKey) -> String {
    let format = match spec.format {
        KeyFormat::Opaque => "",
        KeyFormat::PostgresUrl => ", a PostgreSQL URL",
        KeyFormat::ApiKey => ", an API key",
    };
    let required = if spec.required {
        "required"
    } else {
        "optional, Enter skips it"
    };
    format!("{} ({required}{format})", spec.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backspace_removes_a_whole_character() {
        let mut buf = "aé".as_bytes().to_vec();
        pop_char(&mut buf);
        assert_eq!(buf, b"a");
        pop_char(&mut buf);
        pop_char(&mut buf);
        assert!(buf.is_empty());
    }
}
