//! Managed object references and the `ObjectContent` of a property retrieval: an object
//! with its property values (as `Node`s) and the properties vCenter could not read.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::xml::{Node, Tree};

/// A managed object reference: type and server-side id (`VirtualMachine` / `vm-42`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MoRef {
    /// Managed object type.
    #[serde(rename = "type")]
    pub kind: CompactString,
    /// Id, unique within one vCenter.
    pub value: CompactString,
}

impl MoRef {
    pub fn new(kind: impl Into<CompactString>, value: impl Into<CompactString>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// Reads a reference from an element such as `<obj type="Folder">group-d1</obj>`.
    pub fn from_node(node: Node<'_>) -> Option<Self> {
        let kind = CompactString::from(node.moref_type()?);
        let value = node.text().trim();
        if value.is_empty() {
            return None;
        }
        Some(Self {
            kind,
            value: CompactString::new(value),
        })
    }
}

impl fmt::Display for MoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// One object of a RetrievePropertiesEx answer: its `objects` element's tree, and where
/// each property value is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectContent {
    pub obj: MoRef,
    tree: Tree,
    /// `(path, element of its val)` pairs, in answer order.
    props: Vec<(CompactString, u32)>,
    /// `(path, fault type)` for properties that could not be read.
    pub missing: Vec<(String, String)>,
}

impl ObjectContent {
    /// Converts an `objects` element.
    pub fn from_tree(tree: Tree) -> Result<Self, String> {
        let mut obj = None;
        let mut props = Vec::new();
        let mut missing = Vec::new();
        for child in tree.root().children() {
            match child.name() {
                "obj" => obj = MoRef::from_node(child),
                "propSet" => {
                    let mut name = None;
                    let mut val = None;
                    for c in child.children() {
                        match c.name() {
                            "name" => name = Some(CompactString::from(c.text())),
                            "val" => val = Some(c.index()),
                            _ => {}
                        }
                    }
                    if let (Some(n), Some(v)) = (name, val) {
                        props.push((n, v));
                    }
                }
                "missingSet" => {
                    let path = child.text_at("path").unwrap_or("").to_owned();
                    let fault = child
                        .at("fault/fault")
                        .map(|f| f.type_name().to_owned())
                        .unwrap_or_else(|| "Unknown".to_owned());
                    missing.push((path, fault));
                }
                _ => {}
            }
        }
        let obj = obj.ok_or_else(|| "objects element without a valid obj reference".to_string())?;
        Ok(Self {
            obj,
            tree,
            props,
            missing,
        })
    }

    /// The value of a property path, if it was returned.
    pub fn get(&self, path: &str) -> Option<Node<'_>> {
        let (_, at) = self.props.iter().find(|(p, _)| p == path)?;
        Node::in_tree(&self.tree, *at)
    }

    /// Text of a property.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.get(path).map(Node::text)
    }

    /// A property parsed as `T`.
    pub fn parse<T: std::str::FromStr>(&self, path: &str) -> Option<T> {
        self.get(path)?.parse()
    }

    /// A boolean property.
    pub fn bool(&self, path: &str) -> Option<bool> {
        self.get(path)?.as_bool()
    }

    /// A managed object reference property.
    pub fn moref(&self, path: &str) -> Option<MoRef> {
        self.get(path).and_then(MoRef::from_node)
    }

    /// An array-of-references property (`ArrayOfManagedObjectReference`).
    pub fn morefs(&self, path: &str) -> Vec<MoRef> {
        self.get(path)
            .map(|n| n.children().filter_map(MoRef::from_node).collect())
            .unwrap_or_default()
    }

    /// True when vCenter said the session is gone (vcsim reports this in `missingSet`).
    pub fn not_authenticated(&self) -> bool {
        self.missing.iter().any(|(_, f)| f == "NotAuthenticated")
    }
}
