//! Streaming SOAP response parsing: a small tree (`Tree`, a tape of elements; `Node` views
//! one) for one element at a time, built from quick-xml events so that a 70 MB
//! RetrievePropertiesEx answer never has to be held whole.
//!
//! The caller picks a *split depth*: every complete element at that depth is handed to a
//! sink and then dropped (depth 0 is `Envelope`, 1 `Body`, 2 the `…Response`, 3 each
//! `returnval`, 4 each child of a `returnval` such as one `objects`). A SOAP `Fault` under
//! `Body` is always collected whole and returned as an error.
//!
//! Names are matched by local name, ignoring prefixes: vcsim writes the schema-instance
//! prefix as `XMLSchema-instance:type`, real vCenter as `xsi:type`. The `type` attribute
//! *with* a prefix is the XML Schema type (`xsi_type`); the unprefixed `type` attribute
//! is a managed object reference's type (`moref_type`).
//!
//! Bounds: nesting deeper than [`MAX_DEPTH`] is an error (this also keeps `Drop` of a
//! hostile tree shallow); so is a text node or tag longer than [`MAX_RUN_BYTES`] (the
//! reader buffers one whole, so without it an endless text node grew to the answer's
//! byte cap); total size is bounded by the transport's byte cap.

use std::borrow::Cow;
use std::io::{BufRead, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::error::VsphereError;

/// Longest run of bytes between two markup delimiters (`<` or `>`): one text node or one
/// tag. Real ones are far smaller (a VM's notes, a certificate in PEM).
pub const MAX_RUN_BYTES: usize = 8 << 20;

/// A reader that fails once `MAX_RUN_BYTES` pass without a `<` or `>`: what quick-xml
/// would otherwise collect into one event, however long.
struct RunCap<R> {
    inner: R,
    run: usize,
    over: bool,
}

/// The mark of `RunCap`'s refusal.
#[derive(Debug)]
struct RunTooLong;

impl std::fmt::Display for RunTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a text node or tag longer than {MAX_RUN_BYTES} bytes")
    }
}

impl std::error::Error for RunTooLong {}

impl<R: BufRead> Read for RunCap<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for RunCap<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.over {
            return Err(std::io::Error::other(RunTooLong));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let taken = &buf[..amt.min(buf.len())];
            // The reader consumes up to a delimiter: most of the time the last byte is one.
            self.run = match taken.last() {
                Some(b'<' | b'>') => 0,
                _ => match memchr::memrchr2(b'<', b'>', taken) {
                    Some(at) => taken.len() - at - 1,
                    None => self.run + taken.len(),
                },
            };
            self.over = self.run > MAX_RUN_BYTES;
        }
        self.inner.consume(amt);
    }
}

/// Deepest element nesting accepted. vSphere data nests about 15 levels at most.
pub const MAX_DEPTH: usize = 64;

mod tree;
use tree::TreeBuilder;
pub use tree::{Children, Node, Tree};

/// Parses a SOAP response from `input`, giving every element at `split_depth` to `sink`.
/// Returns `Ok(())` for a well-formed, complete response; a SOAP fault becomes
/// `VsphereError` via `super::fault`.
pub fn parse_response<R: BufRead>(
    input: R,
    method: &'static str,
    split_depth: usize,
    sink: impl FnMut(Tree) -> Result<(), VsphereError>,
) -> Result<(), VsphereError> {
    parse_response_pruned(input, method, split_depth, &[], sink)
}

/// As [`parse_response`], but elements whose `xsi:type` is in `prune` are skipped with
/// everything inside them (still checked for well-formedness, never built): the caller
/// knows it will not look at them, e.g. a VM's keyboard and video card.
pub fn parse_response_pruned<R: BufRead>(
    input: R,
    method: &'static str,
    split_depth: usize,
    prune: &[&str],
    mut sink: impl FnMut(Tree) -> Result<(), VsphereError>,
) -> Result<(), VsphereError> {
    let mut reader = Reader::from_reader(RunCap {
        inner: input,
        run: 0,
        over: false,
    });
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut st = State {
        method,
        split_depth,
        ..State::default()
    };
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(method, e))?;
        match event {
            Event::Start(e) => st.start(&e, prune)?,
            Event::Empty(e) => {
                st.start(&e, prune)?;
                st.end(&mut sink)?;
            }
            Event::End(_) => st.end(&mut sink)?,
            Event::Text(t) => {
                if let Some(top) = st.top() {
                    st.tree.push_text(top, &t);
                }
            }
            Event::CData(t) => {
                if let Some(top) = st.top() {
                    st.tree.push_text(top, &t);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = st.top() {
                    let mut chars = [0; 4];
                    let text = reference(&r, &mut chars).map_err(|e| st_malformed(method, e))?;
                    st.tree.push_text(top, text.as_bytes());
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !st.seen_envelope {
        return Err(VsphereError::NotSoap {
            method,
            reason: "no XML element in the response".into(),
        });
    }
    if !st.finished {
        return Err(VsphereError::Truncated { method });
    }
    Ok(())
}

fn st_malformed(method: &'static str, reason: String) -> VsphereError {
    VsphereError::Malformed { method, reason }
}

/// Where the parser is in the envelope.
#[derive(Default)]
struct State {
    method: &'static str,
    split_depth: usize,
    depth: usize,
    /// The element being collected.
    tree: TreeBuilder,
    /// Its open elements, each with its last child so far: `stack[0]` is the root.
    stack: Vec<(u32, Option<u32>)>,
    /// (elements, string bytes) of the last tree handed over.
    last_size: (usize, usize),
    /// Depth of the element being collected, if any.
    collect_from: Option<usize>,
    /// Depth of a pruned element being skipped, if any.
    skip_from: Option<usize>,
    in_body: bool,
    fault: bool,
    seen_envelope: bool,
    finished: bool,
}

impl State {
    /// The open element text goes to, unless a pruned element is being skipped.
    fn top(&self) -> Option<u32> {
        self.stack
            .last()
            .filter(|_| self.skip_from.is_none())
            .map(|t| t.0)
    }

    fn malformed(&self, reason: impl Into<String>) -> VsphereError {
        st_malformed(self.method, reason.into())
    }

    fn start(&mut self, e: &BytesStart<'_>, prune: &[&str]) -> Result<(), VsphereError> {
        if self.finished {
            return Err(self.malformed("content after the end of the envelope"));
        }
        let local = e.local_name();
        let name = local.as_ref();
        match self.depth {
            0 => {
                if name != b"Envelope" {
                    return Err(VsphereError::NotSoap {
                        method: self.method,
                        reason: format!(
                            "root element is {:?}, not Envelope",
                            String::from_utf8_lossy(name)
                        ),
                    });
                }
                self.seen_envelope = true;
            }
            1 => self.in_body = name == b"Body",
            2 if self.in_body && name == b"Fault" => {
                self.fault = true;
                self.collect_from = Some(2);
            }
            _ => {}
        }
        if self.collect_from.is_none() && self.in_body && self.depth == self.split_depth {
            self.collect_from = Some(self.depth);
        }
        if self.collect_from.is_some() && self.skip_from.is_none() {
            let (name, types) = start_tag(e).map_err(|r| self.malformed(r))?;
            let xsi = types.xsi.as_deref().map(local_type);
            if xsi.is_some_and(|t| prune.contains(&t)) {
                self.skip_from = Some(self.depth);
            } else {
                if self.stack.is_empty() {
                    // Consecutive elements are alike: start with the room the last took.
                    self.tree = TreeBuilder::with_room(self.last_size);
                }
                let parent = self.stack.last().copied();
                let at = self.tree.open(name, parent);
                if let Some(t) = xsi {
                    self.tree.set_xsi_type(at, t);
                }
                if let Some(t) = types.moref {
                    self.tree.set_moref_type(at, &t);
                }
                if let Some(p) = self.stack.last_mut() {
                    p.1 = Some(at);
                }
                self.stack.push((at, None));
            }
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.malformed(format!("elements nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn end(
        &mut self,
        sink: &mut impl FnMut(Tree) -> Result<(), VsphereError>,
    ) -> Result<(), VsphereError> {
        self.depth = match self.depth.checked_sub(1) {
            Some(d) => d,
            None => return Err(self.malformed("unbalanced end tag")),
        };
        if let Some(skip) = self.skip_from {
            if self.depth == skip {
                self.skip_from = None;
            }
            return Ok(());
        }
        if let Some(from) = self.collect_from {
            if self.depth >= from {
                if self.stack.pop().is_none() {
                    return Err(self.malformed("unbalanced end tag"));
                }
                if self.stack.is_empty() {
                    self.collect_from = None;
                    let tree = std::mem::take(&mut self.tree)
                        .finish()
                        .map_err(|r| self.malformed(r))?;
                    if self.fault {
                        return Err(super::fault::from_fault_node(self.method, tree.root()));
                    }
                    self.last_size = tree.size();
                    sink(tree)?;
                }
            }
        }
        if self.depth == 1 {
            self.in_body = false;
        }
        if self.depth == 0 {
            self.finished = true;
        }
        Ok(())
    }
}

/// The local part of an `xsi:type` value: `xsd:int` → `int`; `VirtualDisk` stays.
fn local_type(t: &str) -> &str {
    t.rsplit_once(':').map_or(t, |(_, local)| local)
}

/// The `type` attributes of a start tag, unescaped.
#[derive(Default)]
struct Types<'a> {
    /// `xsi:type` as written (`xsd:int`); `local_type` gives its local part.
    xsi: Option<Cow<'a, str>>,
    /// The unprefixed `type`: a managed object reference's type.
    moref: Option<Cow<'a, str>>,
}

/// A start tag's local name and `type` attributes.
fn start_tag<'a>(e: &'a BytesStart<'_>) -> Result<(&'a [u8], Types<'a>), String> {
    // Checked to be UTF-8 with the rest of its tree.
    let name = e.local_name().into_inner();
    let mut types = Types::default();
    // Most elements carry no `type` attribute: skip attribute parsing for them.
    let raw = e.attributes_raw();
    static TYPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("type"));
    if raw.is_empty() || TYPE.find(raw).is_none() {
        return Ok((name, types));
    }
    for attr in Attributes(raw) {
        let (key, raw_value) = attr?;
        let (prefixed, local) = match key.iter().rposition(|c| *c == b':') {
            Some(at) => (true, &key[at + 1..]),
            None => (false, key),
        };
        if local != b"type" {
            continue;
        }
        let value = std::str::from_utf8(raw_value)
            .map_err(|_| "attribute value is not UTF-8".to_string())?;
        let value =
            quick_xml::escape::unescape(value).map_err(|err| format!("attribute value: {err}"))?;
        if prefixed {
            types.xsi = Some(value);
        } else {
            types.moref = Some(value);
        }
    }
    Ok((name, types))
}

/// The `name="value"` pairs of a start tag's attribute bytes (after the element name),
/// values still escaped. A small tokenizer of our own: quick-xml's general attribute
/// iterator was a tenth of the parse, and only `type` attributes are wanted.
struct Attributes<'a>(&'a [u8]);

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), String>;

    /// One forward pass over the name and delimiters, which are short (a general search
    /// per delimiter cost more than the bytes it skipped); memchr for the value.
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
        let skip_space = |mut i: usize| {
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            i
        };
        let mut i = skip_space(0);
        if i == b.len() {
            return None;
        }
        let key_start = i;
        while i < b.len() && !is_space(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let key = &b[key_start..i];
        // Whatever goes wrong, nothing after it is read.
        self.0 = &[];
        i = skip_space(i);
        if b.get(i) != Some(&b'=') {
            return Some(Err(format!(
                "attribute {:?} has no value",
                String::from_utf8_lossy(key)
            )));
        }
        i = skip_space(i + 1);
        let quote = match b.get(i) {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => {
                return Some(Err(format!(
                    "attribute {:?} value is not quoted",
                    String::from_utf8_lossy(key)
                )))
            }
        };
        let value_start = i + 1;
        // Values can be long (vcsim declares the schema-instance namespace on every
        // typed element): memchr for them.
        let Some(len) = memchr::memchr(quote, &b[value_start..]) else {
            return Some(Err(format!(
                "attribute {:?} value is not closed",
                String::from_utf8_lossy(key)
            )));
        };
        self.0 = &b[value_start + len + 1..];
        Some(Ok((key, &b[value_start..value_start + len])))
    }
}

/// The text of a character or entity reference (`&#233;`, `&amp;`).
fn reference<'b>(
    r: &quick_xml::events::BytesRef<'_>,
    chars: &'b mut [u8; 4],
) -> Result<&'b str, String> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c.encode_utf8(chars)),
            _ => Err("invalid character reference".into()),
        };
    }
    let name = r.decode().map_err(|e| format!("entity: {e}"))?;
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(s) => Ok(s),
        None => Err(format!("unknown entity &{name};")),
    }
}

fn xml_error(method: &'static str, e: quick_xml::Error) -> VsphereError {
    if let quick_xml::Error::Io(io) = &e {
        if let Some(inner) = io
            .get_ref()
            .and_then(|r| r.downcast_ref::<super::transport::BodyError>())
        {
            return inner.clone().into_vsphere(method);
        }
        if let Some(run) = io.get_ref().and_then(|r| r.downcast_ref::<RunTooLong>()) {
            return VsphereError::Malformed {
                method,
                reason: run.to_string(),
            };
        }
        return VsphereError::Malformed {
            method,
            reason: format!("reading body: {io}"),
        };
    }
    if matches!(e, quick_xml::Error::Syntax(_)) {
        // An unclosed tag or comment at the end of input is a cut-off answer.
        return VsphereError::Truncated { method };
    }
    VsphereError::Malformed {
        method,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
