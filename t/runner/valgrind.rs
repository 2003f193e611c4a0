//! `TEST_NGINX_USE_VALGRIND`: nginx runs under valgrind's memcheck, as with
//! Test::Nginx (daemon off, the block's own master_process setting, the
//! same default options), and each block's errors are read back from
//! valgrind's XML output (one file per process, in the block's logs/).
//!
//! An error is attributed to our module when the first frame of its stack
//! that is not in libc, the dynamic loader or valgrind's own preload (the
//! `memcpy`/`malloc` wrappers) is in our `.so`; a leak, when any frame of
//! its allocation stack is (memory we had OpenSSL or nginx allocate is
//! ours to free). Those fail the block; the others are reported as notes
//! and counted, so nginx's and LuaJIT's own noise does not hide ours but
//! does not fail us either.

use std::fs;
use std::path::{Path, PathBuf};

/// Options as Test::Nginx uses them when the variable is a number.
const DEFAULT_OPTS: &[&str] = &[
    "--tool=memcheck",
    "--leak-check=full",
    "--keep-debuginfo=yes",
    "--show-possibly-lost=no",
    "--num-callers=100",
    "--gen-suppressions=all",
];

/// Objects whose frames are skipped when attributing an error: they are
/// called by everyone.
const GENERIC_OBJS: &[&str] = &["vgpreload_", "/libc.so", "/libc-", "/ld-linux", "/libgcc_s"];

pub struct Valgrind {
    /// valgrind's options, ahead of the nginx command.
    opts: Vec<String>,
    /// File name of our module, to recognise its frames.
    our_obj: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Frame {
    pub obj: String,
    pub func: String,
    pub file: String,
    pub line: String,
}

#[derive(Debug, Default, Clone)]
pub struct VgError {
    pub kind: String,
    pub what: String,
    /// The error's stack (for a leak: where the block was allocated).
    pub frames: Vec<Frame>,
    /// Further stacks ("Address ... was alloc'd at"), with their header.
    pub aux: Vec<(String, Vec<Frame>)>,
    /// What `--gen-suppressions=all` proposes for it.
    pub suppression: Option<String>,
}

impl Valgrind {
    /// From `TEST_NGINX_USE_VALGRIND`: a number means the default options,
    /// anything else is the options themselves. The suppression file is
    /// used when it exists.
    pub fn from_env(value: &str, module: Option<&Path>, suppressions: &Path) -> Valgrind {
        let mut opts: Vec<String> = if value.trim().chars().all(|c| c.is_ascii_digit()) {
            DEFAULT_OPTS.iter().map(|s| s.to_string()).collect()
        } else {
            value.split_whitespace().map(str::to_string).collect()
        };
        if suppressions.is_file() {
            opts.push(format!("--suppressions={}", suppressions.display()));
        }
        Valgrind {
            opts,
            our_obj: module
                .and_then(|m| m.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        }
    }

    /// The command line that runs `binary` under valgrind, writing its
    /// reports into `logs`.
    pub fn wrap(&self, binary: &Path, logs: &Path) -> (PathBuf, Vec<String>) {
        let mut args = self.opts.clone();
        args.push("--xml=yes".into());
        args.push(format!("--xml-file={}/valgrind.%p.xml", logs.display()));
        // plain-text messages (not errors) go to a file, not the client
        args.push(format!("--log-file={}/valgrind.%p.log", logs.display()));
        args.push(binary.display().to_string());
        (PathBuf::from("valgrind"), args)
    }

    /// Every error reported by the processes of one block.
    pub fn collect(&self, logs: &Path) -> Vec<VgError> {
        let mut files: Vec<PathBuf> = fs::read_dir(logs)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        let n = p
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        n.starts_with("valgrind.") && n.ends_with(".xml")
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .flat_map(|f| parse_xml(&String::from_utf8_lossy(&fs::read(f).unwrap_or_default())))
            .collect()
    }

    /// Whether the error belongs to our module (see the module comment).
    pub fn ours(&self, e: &VgError) -> bool {
        let Some(obj) = &self.our_obj else {
            return false;
        };
        let in_ours = |f: &&Frame| f.obj.ends_with(&format!("/{}", obj)) || f.obj == *obj;
        if e.kind.starts_with("Leak_") {
            // The stack is where the block was allocated: whoever asked
            // for it (through OpenSSL, nginx's pools...) owns it.
            return e.frames.iter().any(|f| in_ours(&f));
        }
        e.frames
            .iter()
            .find(|f| !GENERIC_OBJS.iter().any(|g| f.obj.contains(g)))
            .is_some_and(|f| in_ours(&f))
    }
}

impl VgError {
    /// A readable report: what, where (at most `max` frames per stack) and
    /// the suppression valgrind proposes.
    pub fn render(&self, max: usize) -> String {
        let mut s = format!("{}: {}\n", self.kind, self.what);
        let frames = |s: &mut String, fs: &[Frame]| {
            for (i, f) in fs.iter().take(max).enumerate() {
                let at = if f.file.is_empty() {
                    format!("in {}", f.obj)
                } else {
                    format!("{}:{}", f.file, f.line)
                };
                let func = if f.func.is_empty() { "???" } else { &f.func };
                s.push_str(&format!(
                    "   {} {} ({})\n",
                    if i == 0 { "at" } else { "by" },
                    func,
                    at
                ));
            }
            if fs.len() > max {
                s.push_str(&format!("   ... {} more frames\n", fs.len() - max));
            }
        };
        frames(&mut s, &self.frames);
        for (head, fs) in &self.aux {
            s.push_str(&format!(" {}\n", head));
            frames(&mut s, fs);
        }
        if let Some(sup) = &self.suppression {
            s.push_str(" suppression:\n");
            s.push_str(sup.trim_end());
            s.push('\n');
        }
        s
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The contents of the first `<tag>...</tag>` in `s`.
fn element<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{}>", tag);
    let close = format!("</{}>", tag);
    let a = s.find(&open)? + open.len();
    let b = s[a..].find(&close)? + a;
    Some(&s[a..b])
}

/// Every `<tag>...</tag>` in `s`, in order (not nested in themselves).
fn elements<'a>(s: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{}>", tag);
    let close = format!("</{}>", tag);
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(a) = rest.find(&open) {
        let body = &rest[a + open.len()..];
        let Some(b) = body.find(&close) else { break };
        out.push(&body[..b]);
        rest = &body[b + close.len()..];
    }
    out
}

fn text(s: &str, tag: &str) -> String {
    element(s, tag).map(|t| unescape(t.trim())).unwrap_or_default()
}

fn frames(stack: &str) -> Vec<Frame> {
    elements(stack, "frame")
        .into_iter()
        .map(|f| Frame {
            obj: text(f, "obj"),
            func: text(f, "fn"),
            file: text(f, "file"),
            line: text(f, "line"),
        })
        .collect()
}

/// The `<error>`s of one valgrind XML file. A file cut short (a process
/// killed before it finished) yields the errors that were complete. (A
/// worker writes into its master's file: valgrind names the XML file once,
/// at start, so errors are not told apart by process.)
pub fn parse_xml(xml: &str) -> Vec<VgError> {
    elements(xml, "error")
        .into_iter()
        .map(|e| {
            let what = element(e, "what")
                .map(|w| unescape(w.trim()))
                .or_else(|| element(e, "xwhat").map(|x| text(x, "text")))
                .unwrap_or_default();
            // stacks and the auxwhat lines that head the later ones, in order
            let stacks = elements(e, "stack");
            let auxwhats: Vec<String> = elements(e, "auxwhat")
                .into_iter()
                .map(|a| unescape(a.trim()))
                .collect();
            let aux = stacks
                .iter()
                .skip(1)
                .enumerate()
                .map(|(i, s)| (auxwhats.get(i).cloned().unwrap_or_default(), frames(s)))
                .collect();
            let suppression = element(e, "suppression").map(|s| {
                let raw = element(s, "rawtext").unwrap_or(s);
                let raw = raw.trim();
                let raw = raw
                    .strip_prefix("<![CDATA[")
                    .and_then(|r| r.strip_suffix("]]>"))
                    .unwrap_or(raw);
                raw.trim().to_string()
            });
            VgError {
                kind: text(e, "kind"),
                what,
                frames: stacks.first().map(|s| frames(s)).unwrap_or_default(),
                aux,
                suppression,
            }
        })
        .collect()
}
