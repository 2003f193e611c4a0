//! A block's requests (request, raw_request, pipelined_requests,
//! more_headers) as packets to send, and the responses that come back,
//! split and checked.

use crate::check::{self, At, Expect};
use crate::http::{self, Packet, Response};
use crate::report::{self, Failure};
use crate::sections::BlockEval;
use crate::value::Value;

pub struct Req {
    pub packets: Vec<Packet>,
    pub head: bool,
}

/// The requests of a block, and the number of pipelined requests when
/// they share one connection.  `host` is the Host header's default.
pub fn build(ev: &BlockEval, host: &str) -> Result<(Vec<Req>, Option<usize>), Failure> {
    let more = ev.get("more_headers");
    let headers_for = |i: usize| -> Result<(Vec<u8>, bool), Failure> {
        match &more {
            None => Ok((Vec::new(), false)),
            Some(Value::Array(items)) => match items.get(i) {
                Some(v) => Ok(http::format_more_headers(&v.to_bytes())),
                None => Err(Failure::new(
                    "more_headers",
                    format!("--- more_headers lacks data for request {}", i + 1),
                )),
            },
            Some(v) => Ok(http::format_more_headers(&v.to_bytes())),
        }
    };
    let build = |packets: Vec<Packet>, i: usize, conn: &str| -> Result<Req, Failure> {
        let (h, chunked) = headers_for(i)?;
        let (packets, head) =
            http::build_request(&packets, &h, chunked, conn, host).map_err(|m| Failure::new("request", m))?;
        Ok(Req { packets, head })
    };
    if let Some(raw) = ev.get("raw_request") {
        let packets = to_packets(&raw).map_err(|m| Failure::new("raw_request", m))?;
        let all: Vec<u8> = packets.iter().flat_map(|p| p.data.clone()).collect();
        let head = http::strip_request_comments(&all).starts_with(b"HEAD ");
        return Ok((vec![Req { packets, head }], None));
    }
    if let Some(p) = ev.get("pipelined_requests") {
        let Value::Array(items) = p else {
            return Err(Failure::new(
                "pipelined_requests",
                "must be an array (eval [...])",
            ));
        };
        let mut data = Vec::new();
        let mut head = false;
        for (i, it) in items.iter().enumerate() {
            let conn = if i + 1 == items.len() {
                "close"
            } else {
                "keep-alive"
            };
            let r = build(vec![Packet::new(it.to_bytes())], i, conn)?;
            head |= r.head;
            data.extend(r.packets.into_iter().flat_map(|p| p.data));
        }
        let req = Req {
            packets: vec![Packet::new(data)],
            head,
        };
        return Ok((vec![req], Some(items.len())));
    }
    let req = ev
        .get("request")
        .ok_or_else(|| Failure::new("request", "the block has no --- request section"))?;
    let one = |v: &Value, i: usize| -> Result<Req, Failure> {
        match v {
            Value::Array(_) => build(to_packets(v).map_err(|m| Failure::new("request", m))?, i, "close"),
            v => build(
                vec![Packet::new(http::strip_request_comments(&v.to_bytes()).to_vec())],
                i,
                "close",
            ),
        }
    };
    match &req {
        Value::Array(items) => {
            let reqs = items
                .iter()
                .enumerate()
                .map(|(i, v)| one(v, i))
                .collect::<Result<Vec<_>, _>>()?;
            if reqs.is_empty() {
                return Err(Failure::new("request", "empty request array"));
            }
            Ok((reqs, None))
        }
        v => Ok((vec![one(v, 0)?], None)),
    }
}

/// A string, or an array of strings and {value => ..., delay_before => ...}
/// hashes, as packets.
fn to_packets(v: &Value) -> Result<Vec<Packet>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|it| match it {
                Value::Hash(pairs) => {
                    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    Ok(Packet {
                        data: get("value").map(|v| v.to_bytes()).unwrap_or_default(),
                        delay: get("delay_before").map(|d| d.to_num()),
                    })
                }
                Value::Array(_) => Err("nested arrays are not valid request packets".to_string()),
                v => Ok(Packet::new(v.to_bytes())),
            })
            .collect(),
        v => Ok(vec![Packet::new(v.to_bytes())]),
    }
}

/// How to read what came back for one request.
pub struct Exchange {
    pub head: bool,
    pub http09: bool,
    /// The number of responses on a pipelined connection.
    pub pipelined: Option<usize>,
    /// Repetition and request.
    pub at: At,
}

/// Splits the bytes received for one request into responses and checks
/// each; parsing oddities become notes.
pub fn check_responses(
    e: &Expect,
    data: &[u8],
    x: &Exchange,
    failures: &mut Vec<Failure>,
    notes: &mut Vec<String>,
) {
    if x.http09 {
        let r = Response {
            status: Some(200),
            body: data.to_vec(),
            ..Response::default()
        };
        failures.extend(check::check_response(e, &r, &x.at));
        return;
    }
    let mut rest = data.to_vec();
    for i in 0..x.pipelined.unwrap_or(1) {
        let at = At {
            req: if x.pipelined.is_some() { i } else { x.at.req },
            ..x.at
        };
        match http::parse_response(&rest, x.head) {
            Ok((r, left)) => {
                notes.extend(r.warnings.iter().cloned());
                failures.extend(check::check_response(e, &r, &at));
                rest = left;
            }
            Err(msg) => {
                failures.push(Failure::new(at.tag("response"), msg));
                return;
            }
        }
    }
    if !rest.is_empty() && x.pipelined.is_none() {
        notes.push(format!(
            "unexpected extra bytes after the response: {}",
            report::clip(&rest, 100)
        ));
    }
}
