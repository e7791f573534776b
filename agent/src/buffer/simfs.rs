//! A simulated filesystem for the buffer's tests: it keeps, for every file and for the
//! directory, what is durable (fsynced) apart from what is only written, so that
//! `crash()` can lose unsynced data the way a power cut does — including a torn prefix of
//! the last writes — and it can run out of space (ENOSPC, with a partial write).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::fs::Fs;

#[derive(Debug, Clone, Default)]
struct File {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    /// Current directory entries: path → file id.
    names: BTreeMap<PathBuf, usize>,
    /// Entries as of the last directory fsync.
    durable_names: BTreeMap<PathBuf, usize>,
    files: Vec<File>,
    /// Bytes the disk holds at most (sum of file sizes); `None` is unlimited.
    capacity: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct SimFs {
    state: Mutex<State>,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

impl State {
    fn used(&self) -> u64 {
        self.names
            .values()
            .map(|id| self.files[*id].data.len() as u64)
            .sum()
    }

    fn file(&mut self, path: &Path) -> io::Result<&mut File> {
        let id = *self.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(&mut self.files[id])
    }
}

impl SimFs {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// A power cut: every file keeps its durable bytes plus a random prefix of what was
    /// appended since (a torn write), and the directory goes back to its last fsync.
    pub(super) fn crash(&self, rng: &mut impl FnMut(usize) -> usize) {
        let mut s = self.lock();
        s.names = s.durable_names.clone();
        for f in &mut s.files {
            if f.data.starts_with(&f.durable) {
                let extra = f.data.len() - f.durable.len();
                let keep = f.durable.len() + rng(extra + 1);
                f.data.truncate(keep);
            } else {
                f.data = f.durable.clone();
            }
            f.durable = f.data.clone();
        }
    }

    /// Flips one bit of a file (damage after the fact).
    pub(super) fn flip(&self, path: &Path, offset: usize) {
        let mut s = self.lock();
        if let Ok(f) = s.file(path) {
            if offset < f.data.len() {
                f.data[offset] ^= 0x10;
                f.durable = f.data.clone();
            }
        }
    }

    pub(super) fn file_len(&self, path: &Path) -> Option<usize> {
        let mut s = self.lock();
        s.file(path).ok().map(|f| f.data.len())
    }

    pub(super) fn names(&self) -> Vec<PathBuf> {
        self.lock().names.keys().cloned().collect()
    }

    /// Replaces a file's whole content, durably.
    pub(super) fn put(&self, path: &Path, data: &[u8]) {
        let mut s = self.lock();
        let id = s.files.len();
        s.files.push(File {
            data: data.to_vec(),
            durable: data.to_vec(),
        });
        s.names.insert(path.to_owned(), id);
        s.durable_names.insert(path.to_owned(), id);
    }

    /// Removes a file durably (a segment lost by other means).
    pub(super) fn delete(&self, path: &Path) {
        let mut s = self.lock();
        s.names.remove(path);
        s.durable_names.remove(path);
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(String, u64)>> {
        let s = self.lock();
        Ok(s.names
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .filter_map(|(p, id)| {
                let name = p.file_name()?.to_str()?.to_owned();
                Some((name, s.files[*id].data.len() as u64))
            })
            .collect())
    }

    fn read_exact_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut s = self.lock();
        let f = s.file(path)?;
        let start = offset as usize;
        let end = start + buf.len();
        if end > f.data.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
        }
        buf.copy_from_slice(&f.data[start..end]);
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = self.lock();
        Ok(s.file(path)?.data.clone())
    }

    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        let room = s.capacity.map(|c| c.saturating_sub(s.used()));
        if !s.names.contains_key(path) {
            let id = s.files.len();
            s.files.push(File::default());
            s.names.insert(path.to_owned(), id);
        }
        let f = s.file(path)?;
        match room {
            Some(room) if (room as usize) < data.len() => {
                // A partial write, then the error: what a full disk does.
                f.data.extend_from_slice(&data[..room as usize]);
                Err(enospc())
            }
            _ => {
                f.data.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.lock();
        s.file(path)?.data.truncate(len as usize);
        Ok(())
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let f = s.file(path)?;
        f.durable = f.data.clone();
        Ok(())
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        let room = s.capacity.map(|c| c.saturating_sub(s.used()));
        if room.is_some_and(|r| (r as usize) < data.len()) {
            return Err(enospc());
        }
        let id = s.files.len();
        s.files.push(File {
            data: data.to_vec(),
            durable: Vec::new(),
        });
        s.names.insert(path.to_owned(), id);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let id = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_owned(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.durable_names = s.names.clone();
        Ok(())
    }
}
