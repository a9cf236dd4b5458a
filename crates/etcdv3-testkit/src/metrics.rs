//! A member's Prometheus metrics: fetching `/metrics` over plain HTTP, and summing samples.
//!
//! Every member listens on a plain-HTTP metrics URL (`--listen-metrics-urls`), also in TLS
//! clusters, so one small HTTP/1.0 client serves every mode. HTTP/1.0 with
//! `Connection: close` means the server sends the body unchunked and closes the connection
//! after it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::error::{Error, ErrorKind};

/// `GET /metrics` on `127.0.0.1:port`: the body of a 200 answer, within `limit`.
pub(crate) async fn fetch(port: u16, limit: Duration) -> Result<String, Error> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let failed = |what: &str| Error::new(ErrorKind::Rpc, format!("GET {url}: {what}"));
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| failed("connecting failed").source(e))?;
        let request = format!(
            "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: text/plain\r\n\
             Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| failed("sending the request failed").source(e))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| failed("reading the response failed").source(e))?;
        parse_response(&raw).map_err(|reason| failed(&reason))
    };
    match timeout(limit, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("GET {url}: no complete answer within {limit:?}"),
        )),
    }
}

/// The body of a complete HTTP/1.x response, if its status is 200 and the body is plain
/// UTF-8 text of the announced length.
fn parse_response(raw: &[u8]) -> Result<String, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    if status != 200 {
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]);
        return Err(format!("answered {status_line:?}: {shown}"));
    }
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" | "content-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Err(format!("unexpected {name}: {value}"));
            }
            "content-length" => {
                let expected: usize = value
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?;
                if body.len() != expected {
                    return Err(format!(
                        "body has {} bytes, Content-Length says {expected}",
                        body.len()
                    ));
                }
            }
            _ => {}
        }
    }
    String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8".to_owned())
}

/// Which samples [`Selector::sum`] adds up: a metric name, and labels the samples must have.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selector {
    name: String,
    labels: Vec<(String, String)>,
}

impl Selector {
    /// Parses `name` or `name{label="value",...}`.
    pub(crate) fn parse(text: &str) -> Result<Selector, String> {
        let series = parse_series(text)?;
        let rest = series.rest.trim();
        if !rest.is_empty() {
            return Err(format!("unexpected {rest:?} after the selector"));
        }
        Ok(Selector {
            name: series.name.to_owned(),
            labels: series.labels,
        })
    }

    /// The sum of the values of every sample named like the selector whose labels include
    /// all of the selector's; `None` when no sample matches. Comment lines (`# HELP`,
    /// `# TYPE`) are skipped; a matching line that does not parse is an error.
    pub(crate) fn sum(&self, exposition: &str) -> Result<Option<f64>, String> {
        let mut total = None;
        for line in exposition.lines() {
            let Some(after_name) = line.strip_prefix(self.name.as_str()) else {
                continue;
            };
            if !(after_name.is_empty() || after_name.starts_with(['{', ' ', '\t'])) {
                // Another metric whose name starts with ours, e.g. `x_total` for `x`.
                continue;
            }
            let series = parse_series(line).map_err(|e| format!("line {line:?}: {e}"))?;
            if !self.labels.iter().all(|l| series.labels.contains(l)) {
                continue;
            }
            let value = series
                .rest
                .split_whitespace()
                .next()
                .ok_or("no value")
                .and_then(|v| v.parse::<f64>().map_err(|_| "bad value"))
                .map_err(|e| format!("line {line:?}: {e}"))?;
            total = Some(total.unwrap_or(0.0) + value);
        }
        Ok(total)
    }
}

/// A parsed `name{label="value",...}` and the text after it.
struct Series<'a> {
    name: &'a str,
    /// Label names and unescaped values, in the order given.
    labels: Vec<(String, String)>,
    /// What follows the series: a sample's value (and timestamp).
    rest: &'a str,
}

/// Parses the series at the start of `text`. The labels and the braces are optional.
fn parse_series(text: &str) -> Result<Series<'_>, String> {
    let text = text.trim_start();
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err("no metric name".to_owned());
    }
    let Some(mut rest) = text[name_end..].trim_start().strip_prefix('{') else {
        return Ok(Series {
            name,
            labels: Vec::new(),
            rest: &text[name_end..],
        });
    };
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(Series {
                name,
                labels,
                rest: after,
            });
        }
        let (label, after) = rest
            .split_once('=')
            .ok_or("a label without '=' or a missing '}'")?;
        let label = label.trim();
        if label.is_empty() || label.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            return Err(format!("bad label name {label:?}"));
        }
        let quoted = after
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {label} is not quoted"))?;
        let unterminated = || format!("the value of label {label} is not terminated");
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next().ok_or_else(unterminated)? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or_else(unterminated)? {
                    (_, 'n') => value.push('\n'),
                    (_, c) => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((label.to_owned(), value));
        rest = quoted[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {label}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP grpc_server_handled_total Total number of RPCs completed on the server.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 7
grpc_server_handled_total{grpc_code="NotFound",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 2
grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3
etcd_server_has_leader 1
etcd_server_has_leader_changes 4
etcd_debugging_mvcc_watcher_total 0
odd{path="a \"quoted\", {braced} \\ value\nx"} 1.5
big +Inf
"#;

    fn sum(selector: &str) -> Option<f64> {
        Selector::parse(selector)
            .expect("selector")
            .sum(EXPOSITION)
            .expect("sum")
    }

    #[test]
    fn sums_samples_with_all_selected_labels() {
        assert_eq!(sum("grpc_server_handled_total"), Some(12.0));
        assert_eq!(
            sum(r#"grpc_server_handled_total{grpc_method="Range"}"#),
            Some(9.0)
        );
        assert_eq!(
            sum(r#"grpc_server_handled_total{grpc_method="Range",grpc_code="OK"}"#),
            Some(7.0)
        );
        assert_eq!(sum(r#"grpc_server_handled_total{grpc_method="Txn"}"#), None);
        assert_eq!(sum("grpc_server_handled_total{}"), Some(12.0));
    }

    #[test]
    fn a_name_does_not_match_longer_names() {
        assert_eq!(sum("etcd_server_has_leader"), Some(1.0));
        assert_eq!(sum("etcd_server_has_leader_changes"), Some(4.0));
        assert_eq!(sum("etcd_server_has"), None);
        assert_eq!(sum("etcd_debugging_mvcc_watcher_total"), Some(0.0));
        assert_eq!(sum("no_such_metric"), None);
    }

    #[test]
    fn label_values_are_unescaped() {
        assert_eq!(
            sum(r#"odd{path="a \"quoted\", {braced} \\ value\nx"}"#),
            Some(1.5)
        );
        assert_eq!(sum(r#"odd{path="a"}"#), None);
        assert_eq!(sum("big"), Some(f64::INFINITY));
    }

    #[test]
    fn bad_selectors_are_rejected() {
        for bad in [
            "",
            "{a=\"b\"}",
            "name{a=b}",
            "name{a=\"b\"",
            "name{a=\"b}",
            "name{a}",
            "name{a=\"b\" c=\"d\"}",
            "name{a-b=\"c\"}",
            "name extra",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_matching_line_that_does_not_parse_is_an_error() {
        let selector = Selector::parse("x").expect("selector");
        assert!(selector.sum("x{a=\"b\"\n").is_err());
        assert!(selector.sum("x notanumber\n").is_err());
        assert!(selector.sum("x\t\n").is_err());
        assert!(selector.sum("x\n").is_err());
        // Lines of other metrics are not parsed at all.
        assert_eq!(selector.sum("y{{{ garbage\nx 2\n"), Ok(Some(2.0)));
    }

    #[test]
    fn response_body_of_a_200() {
        let raw =
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\na 1\r\n";
        assert_eq!(parse_response(raw).as_deref(), Ok("a 1\r\n"));
        let no_length = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\na 1\n";
        assert_eq!(parse_response(no_length).as_deref(), Ok("a 1\n"));
        let empty = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(parse_response(empty).as_deref(), Ok(""));
    }

    #[test]
    fn response_errors() {
        let cases: [&[u8]; 7] = [
            b"",
            b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n",
            b"HTTP/1.0 404 Not Found\r\n\r\n404 page not found\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\ntruncated",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na 1\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ];
        for raw in cases {
            assert!(
                parse_response(raw).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(raw)
            );
        }
        let not_found =
            parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n404 page not found\n").expect_err("404");
        assert!(not_found.contains("404 page not found"), "{not_found}");
    }
}
