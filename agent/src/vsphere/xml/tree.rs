//! One parsed element with everything inside it, as a tape: a flat vector of elements
//! (names, types and text as spans of one string, children as links) instead of one
//! allocated node per element. A 10,000-VM answer is 3 million elements; building,
//! moving and freeing a node for each was most of the parser's cost. `Node` is a
//! borrowed view of one element with the tree-walking helpers the mappers use.

/// A byte range of a tree's strings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

/// One element: its strings and its links (0 is "none": the root is no one's child).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Elem {
    name: Span,
    xsi_type: Option<Span>,
    moref_type: Option<Span>,
    text: Span,
    first_child: u32,
    next_sibling: u32,
}

/// An element and its descendants. Element 0 is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    elems: Vec<Elem>,
    strings: String,
}

impl Tree {
    /// How much this tree holds: elements and string bytes.
    pub(super) fn size(&self) -> (usize, usize) {
        (self.elems.len(), self.strings.len())
    }

    /// The root element.
    pub fn root(&self) -> Node<'_> {
        Node { tree: self, at: 0 }
    }

    fn str(&self, s: Span) -> &str {
        let start = s.start as usize;
        self.strings
            .get(start..start + s.len as usize)
            .unwrap_or_default()
    }
}

/// A tree being parsed. Its strings are the answer's bytes as they come; they are checked
/// to be UTF-8 once, whole, by `finish` (one pass over a few kilobytes instead of a check
/// per name and text).
#[derive(Debug, Default)]
pub(super) struct TreeBuilder {
    elems: Vec<Elem>,
    bytes: Vec<u8>,
}

impl TreeBuilder {
    /// An empty tree with room for `size` (elements, string bytes): consecutive objects
    /// of an answer are alike.
    pub(super) fn with_room(size: (usize, usize)) -> Self {
        Self {
            elems: Vec::with_capacity(size.0),
            bytes: Vec::with_capacity(size.1),
        }
    }

    fn span(&mut self, s: &[u8]) -> Span {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    /// Adds an element named `name` as the last child of `parent` (after `prev`, its
    /// current last child), or as the root; returns its index.
    pub(super) fn open(&mut self, name: &[u8], parent: Option<(u32, Option<u32>)>) -> u32 {
        let name = self.span(name);
        let at = self.elems.len() as u32;
        self.elems.push(Elem {
            name,
            ..Elem::default()
        });
        match parent {
            Some((_, Some(prev))) => self.elems[prev as usize].next_sibling = at,
            Some((p, None)) => self.elems[p as usize].first_child = at,
            None => {}
        }
        at
    }

    pub(super) fn set_xsi_type(&mut self, at: u32, t: &str) {
        let s = self.span(t.as_bytes());
        self.elems[at as usize].xsi_type = Some(s);
    }

    pub(super) fn set_moref_type(&mut self, at: u32, t: &str) {
        let s = self.span(t.as_bytes());
        self.elems[at as usize].moref_type = Some(s);
    }

    /// Appends character data to element `at`'s text. Text split around a child element
    /// (mixed content, rare in SOAP) is moved to the end first so that it stays one span.
    pub(super) fn push_text(&mut self, at: u32, s: &[u8]) {
        let end = self.bytes.len() as u32;
        let text = self.elems[at as usize].text;
        let start = if text.len == 0 {
            end
        } else if text.start + text.len != end {
            let old = text.start as usize..(text.start + text.len) as usize;
            self.bytes.extend_from_within(old);
            end
        } else {
            text.start
        };
        self.bytes.extend_from_slice(s);
        self.elems[at as usize].text = Span {
            start,
            len: text.len + s.len() as u32,
        };
    }

    /// The tree, its strings checked to be UTF-8.
    pub(super) fn finish(self) -> Result<Tree, String> {
        let strings = String::from_utf8(self.bytes)
            .map_err(|e| format!("text or name is not UTF-8: {}", e.utf8_error()))?;
        Ok(Tree {
            elems: self.elems,
            strings,
        })
    }
}

/// One element of a tree, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    tree: &'a Tree,
    at: u32,
}

impl<'a> Node<'a> {
    fn elem(self) -> &'a Elem {
        &self.tree.elems[self.at as usize]
    }

    /// Local element name (`VirtualDevice`, `val`, …).
    pub fn name(self) -> &'a str {
        self.tree.str(self.elem().name)
    }

    /// Local part of the `xsi:type` attribute (`VirtualDisk`, `xsd:int` → `int`).
    pub fn xsi_type(self) -> Option<&'a str> {
        self.elem().xsi_type.map(|s| self.tree.str(s))
    }

    /// The unprefixed `type` attribute: the type of a managed object reference.
    pub fn moref_type(self) -> Option<&'a str> {
        self.elem().moref_type.map(|s| self.tree.str(s))
    }

    /// Character data directly inside this element, entities resolved.
    pub fn text(self) -> &'a str {
        self.tree.str(self.elem().text)
    }

    /// Child elements in document order.
    pub fn children(self) -> Children<'a> {
        Children {
            tree: self.tree,
            next: self.elem().first_child,
        }
    }

    /// Whether this element's local name is `name`: lengths first, then bytes (the
    /// mappers look children up by name thousands of times per VM).
    pub fn is(self, name: &str) -> bool {
        let span = self.elem().name;
        let start = span.start as usize;
        span.len as usize == name.len()
            && self.tree.strings.as_bytes().get(start..start + name.len()) == Some(name.as_bytes())
    }

    /// The first child with this local name.
    pub fn child(self, name: &str) -> Option<Node<'a>> {
        self.children().find(|c| c.is(name))
    }

    /// All children with this local name.
    pub fn children_named(self, name: &'a str) -> impl Iterator<Item = Node<'a>> + 'a {
        self.children().filter(move |c| c.is(name))
    }

    /// Follows a `/`-separated path of child names.
    pub fn at(self, path: &str) -> Option<Node<'a>> {
        path.split('/').try_fold(self, |n, part| n.child(part))
    }

    /// Text at a path, if the element exists.
    pub fn text_at(self, path: &str) -> Option<&'a str> {
        self.at(path).map(Node::text)
    }

    /// This element's text parsed as `T`; `None` if unparsable.
    pub fn parse<T: std::str::FromStr>(self) -> Option<T> {
        self.text().trim().parse().ok()
    }

    /// This element's text as an `xsd:boolean` (`true`/`false`/`1`/`0`).
    pub fn as_bool(self) -> Option<bool> {
        match self.text().trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }

    /// Text at a path parsed as `T`; `None` if absent or unparsable.
    pub fn parse_at<T: std::str::FromStr>(self, path: &str) -> Option<T> {
        self.at(path)?.parse()
    }

    /// Boolean text at a path.
    pub fn bool_at(self, path: &str) -> Option<bool> {
        self.at(path)?.as_bool()
    }

    /// The type name vSphere means: `xsi:type` if present, else the element name.
    pub fn type_name(self) -> &'a str {
        self.xsi_type().unwrap_or_else(|| self.name())
    }

    /// This element's index in its tree (to find it again from an owner of the tree).
    pub fn index(self) -> u32 {
        self.at
    }

    /// Element `index` of the same tree as `self`.
    pub fn in_tree(tree: &'a Tree, index: u32) -> Option<Node<'a>> {
        ((index as usize) < tree.elems.len()).then_some(Node { tree, at: index })
    }
}

/// The children of an element.
#[derive(Debug, Clone)]
pub struct Children<'a> {
    tree: &'a Tree,
    next: u32,
}

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        if self.next == 0 {
            return None;
        }
        let n = Node {
            tree: self.tree,
            at: self.next,
        };
        self.next = self.tree.elems[self.next as usize].next_sibling;
        Some(n)
    }
}
