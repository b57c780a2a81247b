//! The limited `wasi:filesystem/types` host: each call is wasmtime-wasi's
//! own (`WasiFilesystemCtxView`'s synchronous implementation), with the
//! plugin's limits checked before it and its usage counted after it.

use super::disk::growth;
use super::streams::{CountedInput, CountedOutput, Mode};
use super::{Exceeded, FsGuard, LimitedStore};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::streams;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

/// wasmtime-wasi's filesystem view with the store's [`FsGuard`] beside it.
pub struct FsView<'a> {
    fs: WasiFilesystemCtxView<'a>,
    guard: &'a mut FsGuard,
}

struct LimitedFs;

impl HasData for LimitedFs {
    type Data<'a> = FsView<'a>;
}

fn view<T: LimitedStore>(host: &mut T) -> FsView<'_> {
    let (fs, guard) = host.files();
    FsView { fs, guard }
}

/// Links the limited `wasi:filesystem/types` over wasmtime-wasi's own
/// (call after `wasmtime_wasi::p2::add_to_linker_sync`).
pub fn add_to_linker<T: LimitedStore>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = fs::add_to_linker::<T, LimitedFs>(linker, view);
    linker.allow_shadowing(false);
    linked
}

/// A second handle on a borrowed resource, to pass it on twice.
fn again<T: 'static>(r: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(r.rep())
}

/// Whether a plugin may open an entry of this type: not a FIFO, socket or
/// device, whose `open(2)` can block without bound.
fn openable(t: fs::DescriptorType) -> bool {
    matches!(
        t,
        fs::DescriptorType::RegularFile
            | fs::DescriptorType::Directory
            | fs::DescriptorType::SymbolicLink
    )
}

fn trap(e: Exceeded) -> FsError {
    FsError::trap(wasmtime::Error::from(e))
}

/// Path flags that do not follow a final symbolic link.
fn no_follow() -> fs::PathFlags {
    fs::PathFlags::empty()
}

impl FsView<'_> {
    /// The open file behind `fd`, if it is a file.
    fn file(&self, fd: &Resource<Descriptor>) -> Option<Arc<std::fs::File>> {
        match self.fs.table.get(fd).ok()? {
            Descriptor::File(f) => Some(f.file.clone()),
            Descriptor::Dir(_) => None,
        }
    }

    fn file_size(&self, fd: &Resource<Descriptor>) -> u64 {
        self.file(fd)
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len())
    }

    /// The open file or directory behind `fd`.
    fn handle(&self, fd: &Resource<Descriptor>) -> Option<Arc<std::fs::File>> {
        match self.fs.table.get(fd).ok()? {
            Descriptor::File(f) => Some(f.file.clone()),
            Descriptor::Dir(d) => Some(d.dir.clone()),
        }
    }

    /// Refuses, as `access`, a path under `fd` that lies in another
    /// plugin's folder (see `hidden.rs`); free when nothing is hidden.
    fn check_hidden(
        &mut self,
        fd: &Resource<Descriptor>,
        flags: fs::PathFlags,
        path: &str,
    ) -> FsResult<()> {
        if self.is_hidden(fd, flags, path)? {
            let access = wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode::Access;
            return Err(access.into());
        }
        Ok(())
    }

    /// Whether a path under `fd` lies in another plugin's folder.
    fn is_hidden(
        &mut self,
        fd: &Resource<Descriptor>,
        flags: fs::PathFlags,
        path: &str,
    ) -> FsResult<bool> {
        let Some(hidden) = self.guard.hidden.clone() else {
            return Ok(false);
        };
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (if parent.is_empty() { "/" } else { parent }, name),
            None => (".", path),
        };
        let (dir, name) = if matches!(name, "" | "." | "..") {
            (path, ".")
        } else {
            (parent, name)
        };
        let follow = fs::PathFlags::SYMLINK_FOLLOW;
        // wasmtime-wasi checks for a directory only after open(2), which
        // blocks on a FIFO: what is opened must be a directory first.
        let stat = fs::HostDescriptor::stat_at(&mut self.fs, again(fd), follow, dir.into())?;
        if stat.type_ != fs::DescriptorType::Directory {
            let not_dir = wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode::NotDirectory;
            return Err(not_dir.into());
        }
        // An error here (a folder that cannot be listed) is the call's:
        // nothing is left unchecked.
        let opened = fs::HostDescriptor::open_at(
            &mut self.fs,
            again(fd),
            follow,
            dir.into(),
            fs::OpenFlags::DIRECTORY,
            fs::DescriptorFlags::READ,
        )?;
        let hides = match self.handle(&opened) {
            Some(dir) => hidden.hides_entry(&dir, name, flags.contains(follow)),
            None => true,
        };
        fs::HostDescriptor::drop(&mut self.fs, opened).map_err(FsError::trap)?;
        Ok(hides)
    }

    /// What identifies the file behind `fd`.
    fn id_of(&mut self, fd: &Resource<Descriptor>) -> Option<super::fds::FileId> {
        self.file(fd)?;
        let h = fs::HostDescriptor::metadata_hash(&mut self.fs, again(fd)).ok()?;
        Some((h.lower, h.upper))
    }

    /// The size and identity of what `path` names under `dir`, if it exists.
    fn entry(
        &mut self,
        dir: &Resource<Descriptor>,
        flags: fs::PathFlags,
        path: &str,
    ) -> Option<(fs::DescriptorStat, super::fds::FileId)> {
        let stat =
            fs::HostDescriptor::stat_at(&mut self.fs, again(dir), flags, path.into()).ok()?;
        let h = fs::HostDescriptor::metadata_hash_at(&mut self.fs, again(dir), flags, path.into())
            .ok()?;
        Some((stat, (h.lower, h.upper)))
    }

    /// Gives back what removing the entry `entry` frees: one entry, and its
    /// bytes unless the plugin still holds the file open.
    fn removed(&mut self, entry: Option<(fs::DescriptorStat, super::fds::FileId)>) {
        let Some((stat, id)) = entry else { return };
        self.guard.disk.remove_entry();
        if stat.type_ != fs::DescriptorType::Directory && !self.guard.files.holds(id) {
            self.guard.disk.shrink(stat.size);
        }
    }

    /// Takes a descriptor slot for a stream on `fd`.
    fn stream_slot(&mut self, fd: &Resource<Descriptor>) -> FsResult<Option<super::fds::FileId>> {
        self.guard.files.acquire().map_err(trap)?;
        let id = self.id_of(fd);
        if let Some(id) = id {
            self.guard.files.on_file(id);
        }
        Ok(id)
    }

    /// Replaces the output stream wasmtime put in the table with a counted one.
    fn counted_output(
        &mut self,
        fd: &Resource<Descriptor>,
        made: FsResult<Resource<DynOutputStream>>,
        mode: Mode,
    ) -> FsResult<Resource<DynOutputStream>> {
        let made = made?;
        let inner = self.fs.table.delete(made)?;
        let Some(file) = self.file(fd) else {
            let bad = wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode::BadDescriptor;
            return Err(bad.into());
        };
        let id = self.stream_slot(fd)?;
        let stream = CountedOutput::new(
            inner,
            file,
            mode,
            self.guard.disk.clone(),
            self.guard.files.clone(),
            id,
        );
        Ok(self.fs.table.push(Box::new(stream) as DynOutputStream)?)
    }
}

impl fs::Host for FsView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<fs::ErrorCode> {
        fs::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<streams::Error>,
    ) -> wasmtime::Result<Option<fs::ErrorCode>> {
        fs::Host::filesystem_error_code(&mut self.fs, err)
    }
}

impl fs::HostDirectoryEntryStream for FsView<'_> {
    fn read_directory_entry(
        &mut self,
        stream: Resource<fs::DirectoryEntryStream>,
    ) -> FsResult<Option<fs::DirectoryEntry>> {
        fs::HostDirectoryEntryStream::read_directory_entry(&mut self.fs, stream)
    }

    fn drop(&mut self, stream: Resource<fs::DirectoryEntryStream>) -> wasmtime::Result<()> {
        if self.guard.counted.remove(&stream.rep()).is_some() {
            self.guard.files.release(None);
        }
        fs::HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

impl fs::HostDescriptor for FsView<'_> {
    fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: fs::Filesize,
        len: fs::Filesize,
        advice: fs::Advice,
    ) -> FsResult<()> {
        fs::HostDescriptor::advise(&mut self.fs, fd, offset, len, advice)
    }

    /// A no-op that succeeds: an fsync blocks the training thread for as
    /// long as the disk takes, where no deadline reaches, and a plugin's
    /// files reach the disk with the host's own writes anyway.
    fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.table.get(&fd)?;
        Ok(())
    }

    fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<fs::DescriptorFlags> {
        fs::HostDescriptor::get_flags(&mut self.fs, fd)
    }

    fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<fs::DescriptorType> {
        fs::HostDescriptor::get_type(&mut self.fs, fd)
    }

    fn set_size(&mut self, fd: Resource<Descriptor>, size: fs::Filesize) -> FsResult<()> {
        let before = self.file_size(&fd);
        let added = size.saturating_sub(before);
        self.guard.disk.grow(added).map_err(trap)?;
        match fs::HostDescriptor::set_size(&mut self.fs, fd, size) {
            Ok(()) => {
                self.guard.disk.shrink(before.saturating_sub(size));
                Ok(())
            }
            Err(e) => {
                self.guard.disk.shrink(added);
                Err(e)
            }
        }
    }

    fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        fs::HostDescriptor::set_times(&mut self.fs, fd, atim, mtim)
    }

    fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: fs::Filesize,
        offset: fs::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        fs::HostDescriptor::read(&mut self.fs, fd, len, offset)
    }

    fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: fs::Filesize,
    ) -> FsResult<fs::Filesize> {
        let before = self.file_size(&fd);
        let added = growth(before, offset, buf.len() as u64);
        self.guard.disk.grow(added).map_err(trap)?;
        let written = fs::HostDescriptor::write(&mut self.fs, again(&fd), buf, offset);
        // Count what the file really grew by (a short or failed write).
        let grew = self.file_size(&fd).saturating_sub(before);
        self.guard.disk.shrink(added.saturating_sub(grew));
        written
    }

    fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<fs::DirectoryEntryStream>> {
        // A listing holds the whole directory in host memory, as a `DIR*`
        // holds a descriptor: it counts as an open file.
        self.guard.files.acquire().map_err(trap)?;
        match fs::HostDescriptor::read_directory(&mut self.fs, fd) {
            Ok(listing) => {
                self.guard.counted.insert(listing.rep(), None);
                Ok(listing)
            }
            Err(e) => {
                self.guard.files.release(None);
                Err(e)
            }
        }
    }

    /// A no-op that succeeds, as [`sync_data`](Self::sync_data).
    fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.table.get(&fd)?;
        Ok(())
    }

    fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.guard.disk.check_entry().map_err(trap)?;
        fs::HostDescriptor::create_directory_at(&mut self.fs, fd, path)?;
        self.guard.disk.add_entry();
        Ok(())
    }

    fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<fs::DescriptorStat> {
        fs::HostDescriptor::stat(&mut self.fs, fd)
    }

    fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::DescriptorStat> {
        self.check_hidden(&fd, path_flags, &path)?;
        fs::HostDescriptor::stat_at(&mut self.fs, fd, path_flags, path)
    }

    fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        fs::HostDescriptor::set_times_at(&mut self.fs, fd, path_flags, path, atim, mtim)
    }

    /// Refused: a second name for a file would let a plugin unlink one name,
    /// get the file's bytes back from its quota, and keep them under the other.
    fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        _old_path_flags: fs::PathFlags,
        _old_path: String,
        _new_descriptor: Resource<Descriptor>,
        _new_path: String,
    ) -> FsResult<()> {
        self.fs.table.get(&fd)?;
        let refused = wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode::NotPermitted;
        Err(refused.into())
    }

    fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
        oflags: fs::OpenFlags,
        flags: fs::DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        // Before anything that tells whether the path exists.
        self.check_hidden(&fd, path_flags, &path)?;
        let creates = oflags.contains(fs::OpenFlags::CREATE);
        let truncates = oflags.contains(fs::OpenFlags::TRUNCATE);
        let existing = self.entry(&fd, path_flags, &path);
        // Opening a FIFO or a device blocks in open(2) on the training
        // thread, where no deadline reaches (a FIFO in a granted directory
        // hung the run): only files, directories and links are opened.
        if let Some((stat, _)) = &existing {
            if !openable(stat.type_) {
                let access = wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode::Access;
                return Err(access.into());
            }
        }
        let new_entry = creates && existing.is_none();
        if new_entry {
            self.guard.disk.check_entry().map_err(trap)?;
        }
        self.guard.files.acquire().map_err(trap)?;
        // Synchronous writes would block the training thread on the disk, as
        // `sync` would: files are opened without them.
        let flags = flags
            & !(fs::DescriptorFlags::FILE_INTEGRITY_SYNC
                | fs::DescriptorFlags::DATA_INTEGRITY_SYNC
                | fs::DescriptorFlags::REQUESTED_WRITE_SYNC);
        let opened = fs::HostDescriptor::open_at(&mut self.fs, fd, path_flags, path, oflags, flags);
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.guard.files.release(None);
                return Err(e);
            }
        };
        if let Some(hidden) = &self.guard.hidden {
            if self.handle(&opened).is_none_or(|f| hidden.hides_open(&f)) {
                fs::HostDescriptor::drop(&mut self.fs, opened).map_err(FsError::trap)?;
                self.guard.files.release(None);
                let access = wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode::Access;
                return Err(access.into());
            }
        }
        if new_entry {
            self.guard.disk.add_entry();
        }
        if let (true, Some((stat, _))) = (truncates, existing) {
            if stat.type_ == fs::DescriptorType::RegularFile {
                self.guard.disk.shrink(stat.size);
            }
        }
        let id = self.id_of(&opened);
        if let Some(id) = id {
            self.guard.files.on_file(id);
        }
        self.guard.counted.insert(opened.rep(), id);
        Ok(opened)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        if let Some(id) = self.guard.counted.remove(&fd.rep()) {
            self.guard.files.release(id);
        }
        fs::HostDescriptor::drop(&mut self.fs, fd)
    }

    fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        self.check_hidden(&fd, fs::PathFlags::empty(), &path)?;
        fs::HostDescriptor::readlink_at(&mut self.fs, fd, path)
    }

    fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let entry = self.entry(&fd, no_follow(), &path);
        fs::HostDescriptor::remove_directory_at(&mut self.fs, fd, path)?;
        self.removed(entry);
        Ok(())
    }

    fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        // What the new name already names is replaced, so freed.
        let replaced = self.entry(&new_fd, no_follow(), &new_path);
        let same = self
            .entry(&fd, no_follow(), &old_path)
            .zip(replaced)
            .is_some_and(|((_, a), (_, b))| a == b);
        fs::HostDescriptor::rename_at(&mut self.fs, fd, old_path, new_fd, new_path)?;
        if !same {
            self.removed(replaced);
        }
        Ok(())
    }

    fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let size = src_path.len() as u64;
        self.guard.disk.check_entry().map_err(trap)?;
        self.guard.disk.grow(size).map_err(trap)?;
        match fs::HostDescriptor::symlink_at(&mut self.fs, fd, src_path, dest_path) {
            Ok(()) => {
                self.guard.disk.add_entry();
                Ok(())
            }
            Err(e) => {
                self.guard.disk.shrink(size);
                Err(e)
            }
        }
    }

    fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let entry = self.entry(&fd, no_follow(), &path);
        fs::HostDescriptor::unlink_file_at(&mut self.fs, fd, path)?;
        self.removed(entry);
        Ok(())
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: fs::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        let made = fs::HostDescriptor::read_via_stream(&mut self.fs, again(&fd), offset)?;
        let inner = self.fs.table.delete(made)?;
        let id = self.stream_slot(&fd)?;
        let stream = CountedInput::new(inner, self.guard.files.clone(), id);
        Ok(self.fs.table.push(Box::new(stream) as DynInputStream)?)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: fs::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let made = fs::HostDescriptor::write_via_stream(&mut self.fs, again(&fd), offset);
        self.counted_output(&fd, made, Mode::At(offset))
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let made = fs::HostDescriptor::append_via_stream(&mut self.fs, again(&fd));
        self.counted_output(&fd, made, Mode::Append)
    }

    fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        fs::HostDescriptor::is_same_object(&mut self.fs, a, b)
    }

    fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<fs::MetadataHashValue> {
        fs::HostDescriptor::metadata_hash(&mut self.fs, fd)
    }

    fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::MetadataHashValue> {
        // wasi-libc asks for the hash of each entry it lists (its inode
        // number): a hidden entry gets one made of its name alone, which
        // tells nothing, so that listing output_dir does not stop at
        // `plugins`.
        if self.is_hidden(&fd, path_flags, &path)? {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            path.hash(&mut h);
            return Ok(fs::MetadataHashValue {
                lower: h.finish(),
                upper: 0x7472_6169_6e62_6f78,
            });
        }
        fs::HostDescriptor::metadata_hash_at(&mut self.fs, fd, path_flags, path)
    }
}
