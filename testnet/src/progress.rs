//! What `sentrymesh-testnet` shows while it builds: how many hosts'
//! daemons started, then of the pairs of hosts the roles require to peer
//! (the peerings) how many have a live session at both ends and answer
//! pings both ways, and how many hosts are ready, each as "N of M".
//!
//! On a terminal it is one line, rewritten in place (`\r`) as the figures
//! change, and ended when the stage is over. Anywhere else (a file, a
//! pipe, CI's log) each change is a line of its own, at most one a second
//! but always the last of a stage, so a log shows the way the mesh formed
//! without a line per poll:
//!
//! ```text
//! hosts started: 1 of 9
//! hosts started: 9 of 9
//! sessions: 0 of 21; pings: 0 of 21; ready: 0 of 9
//! sessions: 15 of 21; pings: 12 of 21; ready: 4 of 9
//! sessions: 21 of 21; pings: 21 of 21; ready: 9 of 9
//! ```
//!
//! (Short, so that the line of a 200-host testnet fits a terminal of 80
//! columns: a line that wraps cannot be rewritten in place.)

use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// The shortest time between two lines off a terminal.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(1);

/// How far the testnet got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The daemons are starting: `started` of `hosts`.
    Starting {
        /// Daemons started.
        started: usize,
        /// Hosts in the testnet.
        hosts: usize,
    },
    /// The mesh is forming.
    Forming {
        /// Peerings with a live session at both ends.
        sessions: usize,
        /// Peerings whose pings were answered both ways.
        pings: usize,
        /// Peerings: pairs of hosts the roles require to peer.
        peerings: usize,
        /// Hosts whose daemon reported ready.
        ready: usize,
        /// Hosts in the testnet.
        hosts: usize,
    },
}

impl Stage {
    /// Whether the stage is over: every daemon started, or every peering
    /// with its sessions and its pings and every host ready.
    pub fn is_complete(&self) -> bool {
        match *self {
            Stage::Starting { started, hosts } => started >= hosts,
            Stage::Forming {
                sessions,
                pings,
                peerings,
                ready,
                hosts,
            } => sessions >= peerings && pings >= peerings && ready >= hosts,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Starting { started, hosts } => write!(f, "hosts started: {started} of {hosts}"),
            Stage::Forming {
                sessions,
                pings,
                peerings,
                ready,
                hosts,
            } => write!(
                f,
                "sessions: {sessions} of {peerings}; pings: {pings} of {peerings}; ready: {ready} \
                 of {hosts}"
            ),
        }
    }
}

/// Shows [`Stage`]s on `out`; see the [module](self).
#[derive(Debug)]
pub struct Progress<W: Write> {
    out: W,
    terminal: bool,
    /// The text last shown.
    shown: Option<String>,
    /// When the last line was written (off a terminal).
    written_at: Option<Instant>,
    /// A stage not shown yet (off a terminal, held back by the interval).
    pending: Option<String>,
}

impl<W: Write> Progress<W> {
    /// Progress on `out`, a `terminal` or not.
    pub fn new(out: W, terminal: bool) -> Self {
        Self {
            out,
            terminal,
            shown: None,
            written_at: None,
            pending: None,
        }
    }

    /// Shows `stage` as of `now`, if it changed.
    ///
    /// # Errors
    ///
    /// When `out` cannot be written.
    pub fn show(&mut self, now: Instant, stage: Stage) -> io::Result<()> {
        let text = stage.to_string();
        if self.shown.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        if self.terminal {
            let previous = self.shown.as_ref().map_or(0, String::len);
            let pad = previous.saturating_sub(text.len());
            write!(self.out, "\r{text}{:pad$}", "")?;
            self.out.flush()?;
            self.shown = Some(text);
            return Ok(());
        }
        let due = self
            .written_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PLAIN_INTERVAL);
        if due || stage.is_complete() {
            writeln!(self.out, "{text}")?;
            self.shown = Some(text);
            self.written_at = Some(now);
            self.pending = None;
        } else {
            self.pending = Some(text);
        }
        Ok(())
    }

    /// Ends the stage: on a terminal the line, elsewhere with the last
    /// figures if they were held back. The next stage starts afresh.
    ///
    /// # Errors
    ///
    /// When `out` cannot be written.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.terminal {
            if self.shown.is_some() {
                writeln!(self.out)?;
            }
        } else if let Some(text) = self.pending.take() {
            writeln!(self.out, "{text}")?;
        }
        self.out.flush()?;
        self.shown = None;
        self.written_at = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forming(live: usize, ready: usize) -> Stage {
        Stage::Forming {
            sessions: live,
            pings: live,
            peerings: 42,
            ready,
            hosts: 9,
        }
    }

    #[test]
    fn off_a_terminal_each_change_is_a_line_at_most_a_second_apart() {
        let start = Instant::now();
        let at = |millis: u64| start + Duration::from_millis(millis);
        let mut progress = Progress::new(Vec::new(), false);
        for (millis, started) in [(0, 1), (10, 2), (20, 9)] {
            progress
                .show(at(millis), Stage::Starting { started, hosts: 9 })
                .expect("written");
        }
        progress.finish().expect("written");
        progress.show(at(30), forming(0, 0)).expect("written");
        progress.show(at(30), forming(0, 0)).expect("written");
        progress.show(at(500), forming(10, 1)).expect("written");
        progress.show(at(1100), forming(30, 4)).expect("written");
        progress.show(at(1200), forming(40, 8)).expect("written");
        progress.finish().expect("written");
        assert_eq!(
            String::from_utf8(progress.out).expect("UTF-8"),
            "hosts started: 1 of 9\n\
             hosts started: 9 of 9\n\
             sessions: 0 of 42; pings: 0 of 42; ready: 0 of 9\n\
             sessions: 30 of 42; pings: 30 of 42; ready: 4 of 9\n\
             sessions: 40 of 42; pings: 40 of 42; ready: 8 of 9\n"
        );
    }

    #[test]
    fn off_a_terminal_the_end_of_a_stage_is_never_held_back() {
        let now = Instant::now();
        let mut progress = Progress::new(Vec::new(), false);
        progress.show(now, forming(0, 0)).expect("written");
        progress.show(now, forming(42, 9)).expect("written");
        progress.finish().expect("written");
        assert_eq!(
            String::from_utf8(progress.out).expect("UTF-8"),
            "sessions: 0 of 42; pings: 0 of 42; ready: 0 of 9\n\
             sessions: 42 of 42; pings: 42 of 42; ready: 9 of 9\n"
        );
    }

    #[test]
    fn on_a_terminal_one_line_is_rewritten_in_place() {
        let now = Instant::now();
        let mut progress = Progress::new(Vec::new(), true);
        progress.show(now, forming(10, 1)).expect("written");
        progress.show(now, forming(9, 1)).expect("written");
        progress.show(now, forming(9, 1)).expect("written");
        progress.finish().expect("written");
        assert_eq!(
            String::from_utf8(progress.out).expect("UTF-8"),
            "\rsessions: 10 of 42; pings: 10 of 42; ready: 1 of 9\
             \rsessions: 9 of 42; pings: 9 of 42; ready: 1 of 9  \n"
        );
    }
}
