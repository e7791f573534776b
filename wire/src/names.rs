//! Strings numbered in order of first use: the names a rollup set refers to by index, and
//! the agent's series labels, which are renumbered into them.

use std::collections::HashMap;

use compact_str::CompactString;

/// Strings and their numbers (0, 1, 2 … in order of first use).
#[derive(Debug, Clone, Default)]
pub struct Names {
    list: Vec<CompactString>,
    index: HashMap<CompactString, u32>,
}

impl Names {
    /// The number of `s`, given one if it has none.
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    /// The number of `s`, if it has one.
    pub fn find(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }

    /// String number `i`.
    pub fn get(&self, i: u32) -> Option<&CompactString> {
        self.list.get(i as usize)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The strings in number order; the numbering starts again.
    pub fn take(&mut self) -> Vec<CompactString> {
        self.index.clear();
        std::mem::take(&mut self.list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_numbered_once_in_order_of_first_use() {
        let mut n = Names::default();
        assert_eq!((n.id("a"), n.id("b"), n.id("a")), (0, 1, 0));
        assert_eq!((n.find("b"), n.find("c")), (Some(1), None));
        assert_eq!(n.get(1).map(CompactString::as_str), Some("b"));
        assert_eq!(n.take(), vec!["a", "b"]);
        assert!(n.is_empty());
        assert_eq!(n.id("c"), 0, "numbering starts again");
    }
}
