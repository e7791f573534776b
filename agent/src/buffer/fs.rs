//! The few filesystem operations the buffer uses, behind a trait so that tests can swap in
//! a filesystem that loses unsynced data, tears writes and runs out of space
//! (`simfs.rs`). `StdFs` is the real one; it keeps the segment being appended to open.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Filesystem operations, by path. All are synchronous: the buffer runs on a blocking
/// thread.
pub trait Fs: Send + Sync + std::fmt::Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names and sizes of the regular files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<(String, u64)>>;
    fn read_exact_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The whole file (small files only: the cursor).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Appends to `path`, creating it if missing. On error part of `data` may be written.
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// fsync of the file's data.
    fn sync(&self, path: &Path) -> io::Result<()>;
    /// Creates or replaces `path` with `data` (not synced).
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// fsync of a directory, so that creations, renames and removals in it are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Debug, Default)]
pub struct StdFs {
    /// The file last appended to, kept open: appends go to one segment at a time.
    appending: Mutex<Option<(PathBuf, File)>>,
    /// The file last read from, kept open: the shipper reads one segment front to back.
    reading: Mutex<Option<(PathBuf, File)>>,
}

impl StdFs {
    fn with_cached<T>(
        slot: &Mutex<Option<(PathBuf, File)>>,
        path: &Path,
        open: impl FnOnce() -> io::Result<File>,
        f: impl FnOnce(&mut File) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|(p, _)| p != path) {
            *guard = Some((path.to_owned(), open()?));
        }
        match guard.as_mut() {
            Some((_, file)) => f(file),
            None => Err(io::Error::other("file cache empty")),
        }
    }

    /// Forgets cached handles of `path` (it is being removed or renamed).
    fn forget(&self, path: &Path) {
        for slot in [&self.appending, &self.reading] {
            let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
            if guard.as_ref().is_some_and(|(p, _)| p == path) {
                *guard = None;
            }
        }
    }
}

impl Fs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    out.push((name.to_owned(), meta.len()));
                }
            }
        }
        Ok(out)
    }

    fn read_exact_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        Self::with_cached(
            &self.reading,
            path,
            || File::open(path),
            |f| f.read_exact_at(buf, offset),
        )
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        Self::with_cached(
            &self.appending,
            path,
            || OpenOptions::new().create(true).append(true).open(path),
            |f| f.write_all(data),
        )
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        OpenOptions::new().write(true).open(path)?.set_len(len)
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        // fsync flushes the inode's dirty pages whichever descriptor asks; reuse the
        // appending one when it is this file.
        let guard = self.appending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, f)) = guard.as_ref() {
            if p == path {
                return f.sync_data();
            }
        }
        drop(guard);
        File::open(path)?.sync_data()
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::write(path, data)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.forget(path);
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
