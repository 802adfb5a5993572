//! Framing: where a request begins and ends in the byte stream, within
//! limits, fed in whatever pieces the socket delivers.

use std::fmt;

use std::mem;

use zeroize::{Zeroize, Zeroizing};

use super::error::RequestError;
use super::request::{Operation, Request, SetParser};

/// Bounds on a request, so a client cannot make the daemon buffer without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The longest line of a set request, its newline included. The default,
    /// 64 KiB, is wireguard-go's (`bufio.MaxScanTokenSize`); the longest line
    /// `wg` sends is under 100 bytes.
    pub max_line_len: usize,
    /// The longest request, its first line and blank line included. The
    /// default, 64 MiB, holds a `wg setconf` of well over 100 000 peers
    /// (wireguard-go accepts 65 536) at about 300 bytes each; wireguard-go has
    /// no such limit.
    pub max_request_len: usize,
}

impl Limits {
    /// [`Limits::max_line_len`] by default: 64 KiB.
    pub(crate) const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024;
    /// [`Limits::max_request_len`] by default: 64 MiB.
    pub(crate) const DEFAULT_MAX_REQUEST_LEN: usize = 64 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_len: Self::DEFAULT_MAX_LINE_LEN,
            max_request_len: Self::DEFAULT_MAX_REQUEST_LEN,
        }
    }
}

/// The first lines of the operations, newline included: `wg`'s two, and
/// sentrymesh's own `get_status=1` (`docs/status.md`) and `reload=1`, which
/// `wg` never sends.
const GET: &[u8] = b"get=1\n";
const SET: &[u8] = b"set=1\n";
const STATUS: &[u8] = b"get_status=1\n";
const RELOAD: &[u8] = b"reload=1\n";

/// Bytes held for a partial line before the buffer grows. A line holding a
/// key (under 100 bytes) never makes it grow, so no copy of a key is left
/// behind in freed memory.
const LINE_CAPACITY: usize = 4096;

/// Splits a byte stream into requests, without doing any I/O: the caller
/// reads the socket, hands the bytes to [`handle_input`](Self::handle_input)
/// and takes each request from [`poll_request`](Self::poll_request).
///
/// One connection may carry several requests, one after the other, as with
/// wireguard-go. A request that fails on a line of its own (an unknown key, a
/// bad value) is still read to its blank line, so the next one can follow;
/// after an error that loses the framing (an over-long line, the end of the
/// input, an unknown first line) the decoder is closed, and
/// [`is_closed`](Self::is_closed) tells the caller to close the connection
/// once the reply, if any, is sent.
pub(crate) struct RequestDecoder {
    limits: Limits,
    state: State,
    /// The partial line; zeroed after each line, as it may hold a key.
    line: Zeroizing<Vec<u8>>,
    /// Bytes of the current request's whole lines so far.
    request_len: usize,
    ready: Option<Result<Request, RequestError>>,
    closed: bool,
}

enum State {
    /// Reading the first line.
    Operation,
    /// After `get=1\n`, `get_status=1\n` or `reload=1\n` (the operation),
    /// expecting the blank line.
    BlankLine(Operation),
    /// After `set=1\n`, reading lines up to the blank one.
    SetBody(Box<SetParser>),
}

impl RequestDecoder {
    /// A decoder at the start of a connection.
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Operation,
            line: Zeroizing::new(Vec::with_capacity(LINE_CAPACITY.min(limits.max_line_len))),
            request_len: 0,
            ready: None,
            closed: false,
        }
    }

    /// Takes bytes from the connection and returns how many it used.
    ///
    /// It stops after the last byte of a request (or at an error) until
    /// [`poll_request`](Self::poll_request) takes the result, so a caller
    /// holding more bytes feeds the rest after polling; it uses nothing once
    /// closed.
    pub(crate) fn handle_input(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        while self.ready.is_none() && !self.closed {
            let Some(rest) = input.get(used..).filter(|rest| !rest.is_empty()) else {
                break;
            };
            used += match self.state {
                State::Operation => self.handle_operation_byte(rest),
                State::BlankLine(operation) => self.handle_blank_line(rest, operation),
                State::SetBody(_) => self.handle_set_bytes(rest),
            };
        }
        used
    }

    /// Notes that the connection has no more input: a request cut short is an
    /// error ([`RequestError::Truncated`]); the decoder is closed.
    pub(crate) fn handle_eof(&mut self) {
        if self.closed {
            return;
        }
        match self.state {
            State::Operation if self.line.is_empty() => {
                self.closed = true;
                self.clear_line();
            }
            State::Operation => self.fail(RequestError::Truncated { operation: None }),
            State::BlankLine(operation) => self.fail(RequestError::Truncated {
                operation: Some(operation),
            }),
            State::SetBody(_) => self.fail(RequestError::Truncated {
                operation: Some(Operation::Set),
            }),
        }
    }

    /// The next whole request, or why it was refused; answer each before
    /// feeding more input.
    pub(crate) fn poll_request(&mut self) -> Option<Result<Request, RequestError>> {
        self.ready.take()
    }

    /// Whether the connection is done: it ended, or an error lost the
    /// framing. Send the reply to the last request polled, if it has one,
    /// then close.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    fn handle_operation_byte(&mut self, rest: &[u8]) -> usize {
        let Some(&byte) = rest.first() else { return 0 };
        self.line.push(byte);
        self.request_len += 1;
        if self.line.as_slice() == GET {
            self.start(State::BlankLine(Operation::Get));
        } else if self.line.as_slice() == STATUS {
            self.start(State::BlankLine(Operation::Status));
        } else if self.line.as_slice() == RELOAD {
            self.start(State::BlankLine(Operation::Reload));
        } else if self.line.as_slice() == SET {
            self.start(State::SetBody(Box::new(SetParser::new())));
        } else if ![GET, SET, STATUS, RELOAD]
            .iter()
            .any(|first| first.starts_with(&self.line))
        {
            // wireguard-go reads the whole line first; the answer is the
            // same (none, and the connection closed), only sooner.
            self.fail(RequestError::UnknownOperation);
        }
        1
    }

    /// The byte after `get=1\n`, `get_status=1\n` or `reload=1\n`
    /// (`operation`).
    fn handle_blank_line(&mut self, rest: &[u8], operation: Operation) -> usize {
        let Some(&byte) = rest.first() else { return 0 };
        // As in wireguard-go, one byte is read: a wrong one is an error and
        // the bytes after it are read as the next request.
        self.finish(match (byte, operation) {
            (b'\n', Operation::Reload) => Ok(Request::Reload),
            (b'\n', Operation::Status) => Ok(Request::Status),
            (b'\n', Operation::Get | Operation::Set) => Ok(Request::Get),
            _ => Err(RequestError::NotTerminated { operation }),
        });
        1
    }

    fn handle_set_bytes(&mut self, rest: &[u8]) -> usize {
        let newline = rest.iter().position(|&b| b == b'\n');
        let take = newline.map_or(rest.len(), |at| at + 1);
        let line_len = self.line.len() + take;
        // A whole line may fill the limit, its newline included; a partial
        // one must leave room for its newline.
        if line_len > self.limits.max_line_len
            || (newline.is_none() && line_len >= self.limits.max_line_len)
        {
            let line = match &self.state {
                State::SetBody(parser) => parser.next_line(),
                _ => 0,
            };
            let limit = self.limits.max_line_len;
            self.fail(RequestError::LineTooLong { line, limit });
            return 0;
        }
        // Whole lines count towards the request's limit (a partial one is
        // bounded by the line limit), so the error does not depend on how
        // the input was cut.
        if newline.is_some() && self.request_len + line_len > self.limits.max_request_len {
            let limit = self.limits.max_request_len;
            self.fail(RequestError::RequestTooLong { limit });
            return 0;
        }
        // `take` is at most `rest.len()`: the newline's index plus one, or
        // the whole.
        self.line.extend_from_slice(&rest[..take]);
        if newline.is_some() {
            self.request_len += line_len;
            self.handle_set_line();
        }
        take
    }

    fn handle_set_line(&mut self) {
        let mut text: &[u8] = &self.line;
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            if let State::SetBody(parser) = mem::replace(&mut self.state, State::Operation) {
                self.finish(parser.finish().map(Request::Set));
            }
        } else if let State::SetBody(parser) = &mut self.state {
            parser.handle_line(text);
        }
        self.clear_line();
    }

    /// Zeroes the bytes of the partial line and empties it. Only its
    /// length needs it: every byte past it was zeroed when the line that
    /// held it ended, or never written (zeroing the whole capacity of the
    /// buffer, 4 KiB, at every line of a request cost more than reading
    /// the line).
    fn clear_line(&mut self) {
        self.line.as_mut_slice().zeroize();
        self.line.clear();
    }

    fn start(&mut self, state: State) {
        self.state = state;
        self.clear_line();
    }

    /// Ends a request whose framing is intact: the next byte begins another.
    fn finish(&mut self, result: Result<Request, RequestError>) {
        self.state = State::Operation;
        self.clear_line();
        self.request_len = 0;
        self.ready = Some(result);
    }

    /// Ends the connection with `error`, or with an earlier error of the same
    /// set request: wireguard-go stops reading at its first bad line, so that
    /// is the one it answers.
    fn fail(&mut self, error: RequestError) {
        let error = match mem::replace(&mut self.state, State::Operation) {
            State::SetBody(parser) => parser.into_error().unwrap_or(error),
            State::Operation | State::BlankLine(_) => error,
        };
        self.clear_line();
        self.ready = Some(Err(error));
        self.closed = true;
    }
}

impl fmt::Debug for RequestDecoder {
    /// Shows where the decoder is, not the partial line (it may hold a key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Operation => "Operation",
            State::BlankLine(_) => "BlankLine",
            State::SetBody(_) => "SetBody",
        };
        f.debug_struct("RequestDecoder")
            .field("limits", &self.limits)
            .field("state", &state)
            .field("partial_line_len", &self.line.len())
            .field("request_len", &self.request_len)
            .field("ready", &self.ready.is_some())
            .field("closed", &self.closed)
            .finish()
    }
}

/// Test helper: the first request in `input`, with the default [`Limits`]
/// (bytes after its blank line are ignored).
#[cfg(test)]
impl Request {
    pub(crate) fn parse(input: &[u8]) -> Result<Self, RequestError> {
        let mut decoder = RequestDecoder::new(Limits::default());
        decoder.handle_input(input);
        if let Some(result) = decoder.poll_request() {
            return result;
        }
        decoder.handle_eof();
        decoder
            .poll_request()
            .unwrap_or(Err(RequestError::Truncated { operation: None }))
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::control::uapi::Errno;
    use crate::control::uapi::request::Section;
    use crate::dataplane::change::ConfigChange;

    /// Feeds `input` in pieces of `piece` bytes, polling after each, and
    /// returns every result and whether the decoder closed.
    fn decode(
        input: &[u8],
        piece: usize,
        limits: Limits,
    ) -> (Vec<Result<Request, RequestError>>, bool) {
        let mut decoder = RequestDecoder::new(limits);
        let mut results = Vec::new();
        for mut chunk in input.chunks(piece.max(1)) {
            loop {
                let used = decoder.handle_input(chunk);
                chunk = &chunk[used..];
                match decoder.poll_request() {
                    Some(result) => results.push(result),
                    None => break,
                }
            }
            assert!(chunk.is_empty() || decoder.is_closed());
        }
        decoder.handle_eof();
        results.extend(decoder.poll_request());
        (results, decoder.is_closed())
    }

    fn summary(
        results: &[Result<Request, RequestError>],
    ) -> Vec<Result<&'static str, RequestError>> {
        results
            .iter()
            .map(|result| match result {
                Ok(Request::Get) => Ok("get"),
                Ok(Request::Set(_)) => Ok("set"),
                Ok(Request::Reload) => Ok("reload"),
                Ok(Request::Status) => Ok("get_status"),
                Err(error) => Err(error.clone()),
            })
            .collect()
    }

    #[test]
    fn get_status_is_framed_like_get() {
        // Between wg's requests, whole or a byte at a time; not confused
        // with get=1, whose first bytes it shares.
        for piece in [1, 64] {
            let (results, _) = decode(b"get_status=1\n\nget=1\n\n", piece, Limits::default());
            assert_eq!(summary(&results), [Ok("get_status"), Ok("get")]);
        }
        let (results, closed) = decode(b"get_stat=1\n\n", 64, Limits::default());
        assert_eq!(summary(&results), [Err(RequestError::UnknownOperation)]);
        assert!(closed);
        let (results, _) = decode(b"get_status=1\n", 64, Limits::default());
        assert_eq!(
            summary(&results),
            [Err(RequestError::Truncated {
                operation: Some(Operation::Status)
            })]
        );
    }

    #[test]
    fn get_needs_its_blank_line() {
        assert!(matches!(Request::parse(b"get=1\n\n"), Ok(Request::Get)));
        let error = Request::parse(b"get=1\nx").unwrap_err();
        assert_eq!(
            error,
            RequestError::NotTerminated {
                operation: Operation::Get
            }
        );
        assert_eq!(error.errno(), Some(Errno::EINVAL));
        let error = Request::parse(b"get=1\n").unwrap_err();
        assert_eq!(
            error,
            RequestError::Truncated {
                operation: Some(Operation::Get)
            }
        );
        assert_eq!(error.errno(), None);
    }

    #[test]
    fn reload_is_a_request_of_its_own() {
        for piece in [1, 4, 100] {
            let (results, closed) = decode(
                b"reload=1\n\nget=1\n\nreload=1\nx",
                piece,
                Limits::default(),
            );
            assert_eq!(
                summary(&results),
                [
                    Ok("reload"),
                    Ok("get"),
                    Err(RequestError::NotTerminated {
                        operation: Operation::Reload
                    })
                ]
            );
            assert!(closed, "closed by the end of input");
        }
        assert_eq!(
            Request::parse(b"reload=1\n").unwrap_err(),
            RequestError::Truncated {
                operation: Some(Operation::Reload)
            }
        );
    }

    #[test]
    fn a_bad_get_terminator_is_answered_and_the_next_byte_starts_over() {
        // wireguard-go reads one byte after "get=1\n", answers EINVAL, and
        // reads its next operation from the byte after.
        for piece in [1, 3, 100] {
            let (results, closed) = decode(b"get=1\nxget=1\n\n", piece, Limits::default());
            assert_eq!(
                summary(&results),
                [
                    Err(RequestError::NotTerminated {
                        operation: Operation::Get
                    }),
                    Ok("get")
                ]
            );
            assert!(closed, "closed by the end of input");
        }
    }

    #[test]
    fn unknown_operations_close_without_a_reply() {
        for input in [
            &b"GET=1\n"[..],
            b"set=2\n",
            b"get=1 \n",
            b"\n",
            b"errno=0\n",
            b"get=11\n\n",
            b"reload=2\n",
        ] {
            let (results, closed) = decode(input, 1, Limits::default());
            assert_eq!(
                summary(&results),
                [Err(RequestError::UnknownOperation)],
                "{input:?}"
            );
            assert!(closed);
            assert_eq!(RequestError::UnknownOperation.errno(), None);
        }
    }

    #[test]
    fn the_end_of_input_inside_a_request_is_an_error() {
        let cases: &[(&[u8], Option<Operation>, Option<Errno>)] = &[
            (b"se", None, None),
            (b"get=1\n", Some(Operation::Get), None),
            (b"set=1\n", Some(Operation::Set), Some(Errno::EPROTO)),
            (
                b"set=1\nlisten_port=1\n",
                Some(Operation::Set),
                Some(Errno::EPROTO),
            ),
            (
                b"set=1\nlisten_port=1",
                Some(Operation::Set),
                Some(Errno::EPROTO),
            ),
        ];
        for &(input, operation, errno) in cases {
            let error = Request::parse(input).unwrap_err();
            assert_eq!(error, RequestError::Truncated { operation }, "{input:?}");
            assert_eq!(error.errno(), errno, "{input:?}");
        }
        assert_eq!(
            Request::parse(b"").unwrap_err(),
            RequestError::Truncated { operation: None }
        );
    }

    #[test]
    fn a_clean_end_between_requests_is_not_an_error() {
        let (results, closed) = decode(b"get=1\n\nset=1\n\n", 2, Limits::default());
        assert_eq!(summary(&results), [Ok("get"), Ok("set")]);
        assert!(closed);
    }

    #[test]
    fn a_bad_line_fails_its_request_only() {
        let input = b"set=1\nbogus=1\nlisten_port=1\n\nget=1\n\n";
        for piece in [1, 5, 1000] {
            let mut decoder = RequestDecoder::new(Limits::default());
            let used = decoder.handle_input(&input[..]);
            let first = decoder.poll_request().unwrap().unwrap_err();
            assert_eq!(
                first,
                RequestError::UnknownKey {
                    line: 2,
                    section: Section::Device,
                    misplaced: None
                }
            );
            assert!(!decoder.is_closed());
            let (rest, _) = decode(&input[used..], piece, Limits::default());
            assert_eq!(summary(&rest), [Ok("get")]);
        }
    }

    #[test]
    fn lines_may_fill_the_limit_but_not_exceed_it() {
        let limits = Limits {
            max_line_len: 16,
            ..Limits::default()
        };
        for piece in [1, 4, 100] {
            // 16 bytes with the newline.
            let (results, _) = decode(b"set=1\nlisten_port=123\n\n", piece, limits);
            assert!(matches!(
                &results[..],
                [Ok(Request::Set(ConfigChange {
                    listen_port: Some(123),
                    ..
                }))]
            ));
            let (results, closed) = decode(b"set=1\nlisten_port=1234\n\n", piece, limits);
            let error = RequestError::LineTooLong { line: 2, limit: 16 };
            assert_eq!(summary(&results), [Err(error.clone())], "piece {piece}");
            assert!(closed);
            assert_eq!(error.errno(), Some(Errno::EIO));
            // Without a newline yet, 16 bytes already cannot fit one.
            let (results, _) = decode(b"set=1\nlisten_port=1234", piece, limits);
            assert_eq!(summary(&results), [Err(error)], "piece {piece}");
        }
    }

    #[test]
    fn the_default_line_limit_is_wireguard_gos() {
        let line = |len: usize| format!("set=1\nx={}\n\n", "y".repeat(len - 3));
        let fits = Request::parse(line(64 * 1024).as_bytes()).unwrap_err();
        assert!(matches!(fits, RequestError::UnknownKey { .. }));
        let too_long = Request::parse(line(64 * 1024 + 1).as_bytes()).unwrap_err();
        assert_eq!(
            too_long,
            RequestError::LineTooLong {
                line: 2,
                limit: 64 * 1024
            }
        );
    }

    #[test]
    fn requests_are_bounded() {
        let input = b"set=1\nlisten_port=1\n\n";
        let limits = |max_request_len| Limits {
            max_request_len,
            ..Limits::default()
        };
        let (results, _) = decode(input, 3, limits(input.len()));
        assert_eq!(summary(&results), [Ok("set")]);
        let (results, closed) = decode(input, 3, limits(input.len() - 1));
        let error = RequestError::RequestTooLong {
            limit: input.len() - 1,
        };
        assert_eq!(summary(&results), [Err(error.clone())]);
        assert!(closed);
        assert_eq!(error.errno(), Some(Errno::EIO));
        // The count starts again with each request.
        let (results, _) = decode(&[&input[..], &input[..]].concat(), 7, limits(input.len()));
        assert_eq!(summary(&results), [Ok("set"), Ok("set")]);
    }

    #[test]
    fn an_earlier_bad_line_outranks_a_later_framing_error() {
        let limits = Limits {
            max_line_len: 32,
            ..Limits::default()
        };
        let input = format!("set=1\nbogus=1\n{}\n\n", "z".repeat(100));
        let (results, closed) = decode(input.as_bytes(), 8, limits);
        let expected = RequestError::UnknownKey {
            line: 2,
            section: Section::Device,
            misplaced: None,
        };
        assert_eq!(summary(&results), [Err(expected.clone())]);
        assert!(closed, "the framing is lost all the same");
        let (results, _) = decode(b"set=1\nbogus=1\n", 8, limits);
        assert_eq!(summary(&results), [Err(expected)]);
    }

    #[test]
    fn input_stops_at_a_finished_request_until_it_is_polled() {
        let mut decoder = RequestDecoder::new(Limits::default());
        let input = b"get=1\n\nget=1\n\n";
        assert_eq!(decoder.handle_input(input), 7);
        assert_eq!(decoder.handle_input(&input[7..]), 0);
        assert!(matches!(decoder.poll_request(), Some(Ok(Request::Get))));
        assert_eq!(decoder.handle_input(&input[7..]), 7);
        assert!(matches!(decoder.poll_request(), Some(Ok(Request::Get))));
        assert!(decoder.poll_request().is_none());
        assert!(!decoder.is_closed());
    }

    #[test]
    fn debug_does_not_show_the_partial_line() {
        let secret = "c0ffee".repeat(10);
        let mut decoder = RequestDecoder::new(Limits::default());
        decoder.handle_input(format!("set=1\nprivate_key={secret}").as_bytes());
        let printed = format!("{decoder:?}");
        assert!(
            !printed.contains("c0ffee") && !printed.contains("192, 255"),
            "{printed}"
        );
        assert!(printed.contains("SetBody"));
    }
}
