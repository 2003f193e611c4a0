//! A block's `--- tcp_*` and `--- udp_*` sections: the mock backends of
//! one repetition, and the check of what nginx sent them.

use crate::mock::{self, Mock};
use crate::pattern::Regex;
use crate::report::{self, Failure};
use crate::sections::BlockEval;
use crate::value::Value;

/// Starts the block's tcp and udp backends.
pub fn start(ev: &BlockEval) -> Result<Vec<(&'static str, Mock)>, Failure> {
    let mut out = Vec::new();
    for kind in ["tcp", "udp"] {
        let sec = |s: &str| format!("{}_{}", kind, s);
        let Some(target) = ev.text(&sec("listen")) else {
            continue;
        };
        let replies = match ev.get(&sec("reply")) {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().map(Value::to_bytes).collect(),
            Some(Value::Code) => {
                return Err(Failure::new(
                    sec("reply"),
                    "Perl subs as replies are not supported",
                ));
            }
            Some(v) => vec![v.to_bytes()],
        };
        let query_len = match ev.text(&sec("query_len")) {
            Some(t) => t.trim().parse().ok(),
            None => ev
                .get(&sec("query"))
                .filter(|q| !matches!(q, Value::Regex(_)))
                .map(|q| q.to_bytes().len()),
        };
        let spec = mock::Spec {
            target: target.trim().to_string(),
            replies,
            query_len,
            reply_delay: ev.time(&sec("reply_delay"))?,
            no_close: ev.block.has(&sec("no_close")),
            shutdown: ev.text(&sec("shutdown")).and_then(|t| t.trim().parse().ok()),
            shutdown_delay: ev.time(&sec("shutdown_delay"))?,
        };
        let m = if kind == "tcp" {
            Mock::tcp(spec)
        } else {
            Mock::udp(spec)
        };
        out.push((kind, m.map_err(|msg| Failure::new(sec("listen"), msg))?));
    }
    Ok(out)
}

/// Stops the backends of repetition `rep` and checks their queries.
pub fn finish(ev: &mut BlockEval, mocks: &mut Vec<(&'static str, Mock)>, rep: usize) {
    for (kind, m) in mocks.drain(..) {
        let got = m.finish();
        let check = format!("{}_query (repetition {})", kind, rep + 1);
        match ev.get(&format!("{}_query", kind)) {
            Some(Value::Regex(p)) => {
                match Regex::new(&p.src, &p.flags).and_then(|re| Ok((re.is_match(&got)?, re))) {
                    Ok((true, _)) => {}
                    Ok((false, re)) => ev.failures.push(Failure::new(
                        check,
                        format!(
                            "does not match /{}/\n  got: {}",
                            re.as_str(),
                            report::clip(&got, 2000)
                        ),
                    )),
                    Err(err) => ev.failures.push(Failure::new(check, err)),
                }
            }
            Some(v) => {
                let want = v.to_bytes();
                if want != got {
                    ev.failures
                        .push(Failure::new(check, report::mismatch(&want, &got)));
                }
            }
            None => {}
        }
        if let Some(len) = ev.text(&format!("{}_query_len", kind))
            && len.trim().parse::<usize>().ok() != Some(got.len())
        {
            ev.failures.push(Failure::new(
                format!("{}_query_len (repetition {})", kind, rep + 1),
                format!("expected {} bytes, got {}", len.trim(), got.len()),
            ));
        }
    }
}
