//! An open window's samples, 8 bytes each, and their merge by series when it closes.

/// An open window's samples: `(series id, raw value)` in fixed-size chunks, 8 bytes a
/// sample. Chunks instead of one growing vector: no doubling, so no moment where a 10,000-VM
/// window exists twice. Raw values are integers that f32 holds exactly up to 2^24, and to
/// 7 significant digits beyond (a 6 TB host's memory in KB is off by a few hundred KB).
#[derive(Debug, Default)]
pub(super) struct Samples {
    chunks: Vec<Vec<(u32, f32)>>,
    pub(super) len: usize,
}

const CHUNK: usize = 32 * 1024;

impl Samples {
    pub(super) fn push(&mut self, id: u32, raw: i64) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push((id, raw as f32)),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push((id, raw as f32));
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunks.iter().flat_map(|c| c.iter().map(|(id, _)| *id))
    }

    /// Calls `f` once per series id, in id order, with that id's values: each chunk is
    /// sorted in place and the chunks are merged, so no second copy of the window exists.
    pub(super) fn for_each_series(mut self, mut f: impl FnMut(u32, &[f32])) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        for c in &mut self.chunks {
            c.sort_unstable_by_key(|(id, _)| *id);
        }
        let mut heads: BinaryHeap<Reverse<(u32, usize, usize)>> = self
            .chunks
            .iter()
            .enumerate()
            .filter_map(|(ci, c)| c.first().map(|(id, _)| Reverse((*id, ci, 0))))
            .collect();
        let mut current: Option<u32> = None;
        let mut values: Vec<f32> = Vec::with_capacity(32);
        while let Some(Reverse((id, ci, pos))) = heads.pop() {
            if current != Some(id) {
                if let Some(prev) = current {
                    f(prev, &values);
                }
                values.clear();
                current = Some(id);
            }
            let chunk = &self.chunks[ci];
            let mut p = pos;
            while p < chunk.len() && chunk[p].0 == id {
                values.push(chunk[p].1);
                p += 1;
            }
            if let Some((next, _)) = chunk.get(p) {
                heads.push(Reverse((*next, ci, p)));
            }
        }
        if let Some(prev) = current {
            f(prev, &values);
        }
    }
}
