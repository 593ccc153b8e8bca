//! The one place that writes to stdout: batches from every container, as
//! they arrive or, for `--timestamps` without `--follow`, merged by time.

use std::future::Future;
use std::io::{self, BufWriter, Write};

use tokio::sync::mpsc;

use super::format::{Line, Printer};

/// Why printing ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every reader finished, or stdout was closed (`| head`), which ends
    /// printing quietly as it does for other command-line tools.
    Done,
    /// `stop` fired (Ctrl-C, SIGTERM, SIGHUP).
    Stopped,
}

/// Prints until every sender is gone, stdout is closed, or `stop` fires.
pub async fn print(
    mut lines: mpsc::Receiver<Vec<Line>>,
    printer: Printer,
    by_time: bool,
    stop: impl Future<Output = ()>,
) -> io::Result<Ending> {
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout());
    let mut stop = std::pin::pin!(stop);
    let mut all = Vec::new();
    loop {
        let batch = tokio::select! {
            batch = lines.recv() => batch,
            () = &mut stop => return quietly(out.flush()).map(|_| Ending::Stopped),
        };
        let Some(batch) = batch else { break };
        if by_time {
            all.extend(batch);
            continue;
        }
        let written = write(&mut out, printer, &batch).and_then(|()| {
            // Everything already waiting goes out before one flush: fast in bulk, live when following.
            while let Ok(batch) = lines.try_recv() {
                write(&mut out, printer, &batch)?;
            }
            out.flush()
        });
        if quietly(written)? {
            return Ok(Ending::Done);
        }
    }
    // Stable, so lines of one container with equal timestamps keep their order.
    all.sort_by_key(|l: &Line| l.time);
    let written = write(&mut out, printer, &all).and_then(|()| out.flush());
    quietly(written).map(|_| Ending::Done)
}

fn write(out: &mut impl Write, printer: Printer, lines: &[Line]) -> io::Result<()> {
    lines.iter().try_for_each(|l| printer.write(out, l))
}

/// `Ok(true)` when the reader went away.
fn quietly(result: io::Result<()>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e),
    }
}
