//! The little HTTP the metrics endpoint speaks: one `GET /metrics` per
//! connection, answered and closed. Anything else gets its status code and
//! nothing more; a request head that is too long or malformed is refused.

/// The longest request head read.
pub(super) const MAX_HEAD_LEN: usize = 8 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET /metrics` (or `HEAD`, answered without a body).
    Metrics {
        /// The method was `HEAD`.
        head_only: bool,
    },
    /// Another path: 404.
    NotFound,
    /// Another method: 405.
    MethodNotAllowed,
    /// Not an HTTP/1 request line: 400.
    BadRequest,
}

/// Whether `bytes` hold a whole request head (up to the blank line).
pub(super) fn head_complete(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|window| window == b"\r\n\r\n")
        || bytes.windows(2).any(|window| window == b"\n\n")
}

/// Routes a request by its request line.
pub(super) fn route(head: &[u8]) -> Route {
    let Some(line) = head.split(|&byte| byte == b'\n').next() else {
        return Route::BadRequest;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut words = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    if path == "/metrics" {
        Route::Metrics { head_only }
    } else {
        Route::NotFound
    }
}

/// A whole response: status line, headers, and `body` unless `head_only`.
pub(super) fn response(status: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever a client sends, routing it gives an answer.
        #[test]
        fn any_bytes_are_routed_without_panicking(head in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = route(&head);
            let _ = head_complete(&head);
        }

        /// A request line with a path other than /metrics is not the metrics.
        #[test]
        fn other_paths_are_not_found(path in "/[a-z0-9/._-]{0,40}") {
            prop_assume!(path != "/metrics");
            let request = format!("GET {path} HTTP/1.1\r\n\r\n");
            prop_assert_eq!(route(request.as_bytes()), Route::NotFound);
        }
    }

    #[test]
    fn requests_are_routed_by_method_and_path() {
        let cases: [(&[u8], Route); 9] = [
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                Route::Metrics { head_only: false },
            ),
            (
                b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n",
                Route::Metrics { head_only: false },
            ),
            (
                b"HEAD /metrics HTTP/1.1\r\n\r\n",
                Route::Metrics { head_only: true },
            ),
            (b"GET / HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Route::MethodNotAllowed),
            (b"GET /metrics\r\n\r\n", Route::BadRequest),
            (b"GET metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
            (b"\xff\xfe /metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
        ];
        for (request, expected) in cases {
            assert_eq!(
                route(request),
                expected,
                "{}",
                String::from_utf8_lossy(request)
            );
        }
    }

    #[test]
    fn a_head_ends_at_the_blank_line() {
        assert!(!head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"));
        assert!(head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(head_complete(b"GET /metrics HTTP/1.0\n\n"));
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let ok = String::from_utf8(response("200 OK", "text/plain", "a 1\n", false)).unwrap();
        assert_eq!(
            ok,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\
             Connection: close\r\n\r\na 1\n"
        );
        let head = response("200 OK", "text/plain", "a 1\n", true);
        assert!(head.ends_with(b"Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let refused =
            String::from_utf8(response("405 Method Not Allowed", "text/plain", "", false)).unwrap();
        assert!(refused.contains("\r\nAllow: GET, HEAD\r\n"), "{refused}");
    }
}
