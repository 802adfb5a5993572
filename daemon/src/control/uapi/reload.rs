//! The answer to `reload=1`, sentrymesh's own request on the UAPI socket:
//! `sentrymesh reload` asks `sentrymesh up` to re-read its config file and
//! waits for what the daemon made of it.
//!
//! ```text
//!   "reload=1\n\n"                  ──────────▶  Request::Reload
//!   "reloaded=peers: +1 -0; …\n"
//!   "errno=0\n\n"                   ◀──────────  write_reload_answer(Ok(summary))
//!
//!   "refused=sm0.toml:4:8: …\n"     (one line of the reason a line)
//!   "errno=-22\n\n"                 ◀──────────  write_reload_answer(Err(reason))
//! ```
//!
//! A daemon that cannot reload (`sentrymesh wg`, configured with `wg`)
//! answers with a refusal too; wireguard-go closes the connection without an
//! answer, which the reader reports as [`ReloadAnswerError::Truncated`].

use std::io::{BufRead, Read as _};

use super::errno::Errno;
use super::response::write_status;

/// The longest answer line read; a reason is a handful of config
/// diagnostics.
const MAX_LINE_LEN: usize = 64 * 1024;

/// What the daemon answered to `reload=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadAnswer {
    /// The config was applied; what changed, in one line.
    Reloaded(String),
    /// The config was refused and nothing changed; why, one line a line.
    Refused(String),
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadAnswerError {
    /// Reading failed.
    #[error("reading the answer: {0}")]
    Io(#[from] std::io::Error),
    /// The connection closed before the `errno=` line: the daemon does not
    /// take `reload=1` (a WireGuard other than sentrymesh), or it stopped.
    #[error("the connection closed without an answer")]
    Truncated,
    /// A line is not one of an answer to `reload=1`.
    #[error("a malformed answer line")]
    Malformed,
}

/// Appends the answer to `reload=1` to `out`: `reloaded=SUMMARY` and
/// `errno=0`, or one `refused=LINE` for each line of the reason and
/// `errno=-22` (`EINVAL`). Control characters in the text become spaces, so
/// no text can end the answer early.
pub(crate) fn write_reload_answer(result: Result<&str, &str>, out: &mut Vec<u8>) {
    let (key, text) = match result {
        Ok(summary) => ("reloaded", summary),
        Err(reason) => ("refused", reason),
    };
    for line in text.lines() {
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.extend_from_slice(clean.as_bytes());
        out.push(b'\n');
    }
    write_status(result.map(drop).map_err(|_| Errno::EINVAL), out);
}

/// Reads the answer to `reload=1` up to its `errno=` line.
///
/// # Errors
///
/// As [`ReloadAnswerError`] says.
pub(crate) fn read_reload_answer(
    mut answer: impl BufRead,
) -> Result<ReloadAnswer, ReloadAnswerError> {
    let mut reloaded: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = answer
            .by_ref()
            .take(MAX_LINE_LEN as u64)
            .read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            return Err(ReloadAnswerError::Truncated);
        }
        let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
        let (key, value) = text.split_once('=').ok_or(ReloadAnswerError::Malformed)?;
        match key {
            "reloaded" => reloaded.push(value.to_owned()),
            "refused" => refused.push(value.to_owned()),
            "errno" => {
                let errno: i64 = value.parse().map_err(|_| ReloadAnswerError::Malformed)?;
                return Ok(match errno {
                    0 => ReloadAnswer::Reloaded(reloaded.join("\n")),
                    _ if refused.is_empty() => {
                        ReloadAnswer::Refused(format!("the daemon answered errno {errno}"))
                    }
                    _ => ReloadAnswer::Refused(refused.join("\n")),
                });
            }
            _ => return Err(ReloadAnswerError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(result: Result<&str, &str>) -> ReloadAnswer {
        let mut out = Vec::new();
        write_reload_answer(result, &mut out);
        assert!(out.ends_with(b"\n\n"), "{out:?}");
        read_reload_answer(&out[..]).unwrap()
    }

    #[test]
    fn answers_carry_the_summary_or_every_line_of_the_reason() {
        assert_eq!(
            round_trip(Ok("peers: +1 -0")),
            ReloadAnswer::Reloaded("peers: +1 -0".to_owned())
        );
        let reason = "sm0.toml:3:9: interface.mtu: 70000 is out of range\nsm0.toml:9:1: two";
        assert_eq!(
            round_trip(Err(reason)),
            ReloadAnswer::Refused(reason.to_owned())
        );
        let mut out = Vec::new();
        write_reload_answer(Err("x"), &mut out);
        assert_eq!(out, b"refused=x\nerrno=-22\n\n");
    }

    #[test]
    fn text_cannot_end_the_answer_early() {
        let mut out = Vec::new();
        write_reload_answer(Err("a\rerrno=0\u{0}"), &mut out);
        assert_eq!(out, b"refused=a errno=0 \nerrno=-22\n\n");
    }

    #[test]
    fn a_closed_connection_or_a_foreign_line_is_an_error() {
        assert!(matches!(
            read_reload_answer(&b""[..]),
            Err(ReloadAnswerError::Truncated)
        ));
        assert!(matches!(
            read_reload_answer(&b"reloaded=x\n"[..]),
            Err(ReloadAnswerError::Truncated)
        ));
        assert!(matches!(
            read_reload_answer(&b"private_key=00\nerrno=0\n\n"[..]),
            Err(ReloadAnswerError::Malformed)
        ));
        assert_eq!(
            read_reload_answer(&b"errno=-22\n\n"[..]).unwrap(),
            ReloadAnswer::Refused("the daemon answered errno -22".to_owned())
        );
    }
}
