//! Streaming SOAP response parsing: a small owned tree (`Node`) for one element at a time,
//! built from quick-xml events so that a 70 MB RetrievePropertiesEx answer never has to be
//! held whole.
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

use std::io::{BufRead, Read};

use compact_str::CompactString;
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

/// One XML element with its text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// Local element name (`VirtualDevice`, `val`, …).
    pub name: CompactString,
    /// Local part of the `xsi:type` attribute (`VirtualDisk`, `xsd:int` → `int`).
    pub xsi_type: Option<CompactString>,
    /// The unprefixed `type` attribute: the type of a managed object reference.
    pub moref_type: Option<CompactString>,
    /// Character data directly inside this element, entities resolved. Names and values
    /// are `CompactString`s: most are short and then need no heap allocation, which is
    /// most of the parser's cost otherwise.
    pub text: CompactString,
    /// Child elements in document order.
    pub children: Vec<Node>,
}

impl Node {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a `/`-separated path of child names.
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('/').try_fold(self, |n, part| n.child(part))
    }

    /// Text at a path, if the element exists.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|n| n.text.as_str())
    }

    /// This element's text parsed as `T`; `None` if unparsable.
    pub fn parse<T: std::str::FromStr>(&self) -> Option<T> {
        self.text.trim().parse().ok()
    }

    /// This element's text as an `xsd:boolean` (`true`/`false`/`1`/`0`).
    pub fn as_bool(&self) -> Option<bool> {
        match self.text.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }

    /// Text at a path parsed as `T`; `None` if absent or unparsable.
    pub fn parse_at<T: std::str::FromStr>(&self, path: &str) -> Option<T> {
        self.at(path)?.parse()
    }

    /// Boolean text at a path.
    pub fn bool_at(&self, path: &str) -> Option<bool> {
        self.at(path)?.as_bool()
    }

    /// The type name vSphere means: `xsi:type` if present, else the element name.
    pub fn type_name(&self) -> &str {
        self.xsi_type.as_deref().unwrap_or(&self.name)
    }
}

/// Parses a SOAP response from `input`, giving every element at `split_depth` to `sink`.
/// Returns `Ok(())` for a well-formed, complete response; a SOAP fault becomes
/// `VsphereError` via `super::fault`.
pub fn parse_response<R: BufRead>(
    input: R,
    method: &'static str,
    split_depth: usize,
    sink: impl FnMut(Node) -> Result<(), VsphereError>,
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
    mut sink: impl FnMut(Node) -> Result<(), VsphereError>,
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
                if let Some(top) = st.stack.last_mut().filter(|_| st.skip_from.is_none()) {
                    let s = t
                        .decode()
                        .map_err(|e| st_malformed(method, format!("text: {e}")))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = st.stack.last_mut().filter(|_| st.skip_from.is_none()) {
                    let s = t
                        .decode()
                        .map_err(|e| st_malformed(method, format!("cdata: {e}")))?;
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = st.stack.last_mut().filter(|_| st.skip_from.is_none()) {
                    push_reference(top, &r).map_err(|e| st_malformed(method, e))?;
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
    /// Elements under construction: `stack[0]` is the element being collected.
    stack: Vec<Node>,
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
            let node = start_node(e).map_err(|r| self.malformed(r))?;
            if node.xsi_type.as_deref().is_some_and(|t| prune.contains(&t)) {
                self.skip_from = Some(self.depth);
            } else {
                self.stack.push(node);
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
        sink: &mut impl FnMut(Node) -> Result<(), VsphereError>,
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
                let node = match self.stack.pop() {
                    Some(n) => n,
                    None => return Err(self.malformed("unbalanced end tag")),
                };
                match self.stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => {
                        self.collect_from = None;
                        if self.fault {
                            return Err(super::fault::from_fault_node(self.method, &node));
                        }
                        sink(node)?;
                    }
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

fn start_node(e: &BytesStart<'_>) -> Result<Node, String> {
    let name = std::str::from_utf8(e.local_name().into_inner())
        .map_err(|_| "element name is not UTF-8".to_string())?;
    let mut node = Node {
        name: CompactString::new(name),
        ..Node::default()
    };
    // Most elements carry no `type` attribute: skip attribute parsing for them. Duplicate
    // checks cost a scan per attribute and buy nothing here.
    if memchr::memmem::find(e.attributes_raw(), b"type").is_none() {
        return Ok(node);
    }
    for attr in Attributes(e.attributes_raw()) {
        let (key, raw_value) = attr?;
        let (prefixed, local) = match memchr::memrchr(b':', key) {
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
            // `xsd:int` → `int`, `VirtualDisk` stays.
            let local = value.rsplit_once(':').map_or(&*value, |(_, l)| l);
            node.xsi_type = Some(CompactString::new(local));
        } else {
            node.moref_type = Some(CompactString::new(&value));
        }
    }
    Ok(node)
}

/// The `name="value"` pairs of a start tag's attribute bytes (after the element name),
/// values still escaped. A small tokenizer of our own: quick-xml's general attribute
/// iterator was a tenth of the parse, and only `type` attributes are wanted.
struct Attributes<'a>(&'a [u8]);

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let rest = self.0;
        let start = rest.iter().position(|b| !is_space(b))?;
        let rest = &rest[start..];
        let Some(eq) = memchr::memchr(b'=', rest) else {
            self.0 = &[];
            return Some(Err(format!(
                "attribute {:?} has no value",
                String::from_utf8_lossy(rest)
            )));
        };
        let key = rest[..eq].trim_ascii_end();
        let after = rest[eq + 1..].trim_ascii_start();
        let quote = match after.first() {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => {
                self.0 = &[];
                return Some(Err(format!(
                    "attribute {:?} value is not quoted",
                    String::from_utf8_lossy(key)
                )));
            }
        };
        let Some(end) = memchr::memchr(quote, &after[1..]) else {
            self.0 = &[];
            return Some(Err(format!(
                "attribute {:?} value is not closed",
                String::from_utf8_lossy(key)
            )));
        };
        self.0 = &after[end + 2..];
        if key.is_empty() || key.iter().any(is_space) {
            self.0 = &[];
            return Some(Err("malformed attribute name".into()));
        }
        Some(Ok((key, &after[1..end + 1])))
    }
}

fn push_reference(top: &mut Node, r: &quick_xml::events::BytesRef<'_>) -> Result<(), String> {
    if r.is_char_ref() {
        match r.resolve_char_ref() {
            Ok(Some(c)) => top.text.push(c),
            _ => return Err("invalid character reference".into()),
        }
        return Ok(());
    }
    let name = r.decode().map_err(|e| format!("entity: {e}"))?;
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(s) => top.text.push_str(s),
        None => return Err(format!("unknown entity &{name};")),
    }
    Ok(())
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
