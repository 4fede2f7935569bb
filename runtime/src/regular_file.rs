//! Reading and writing files the user named (a manifest, a module, an audit log, LEARNED)
//! without blocking on what is not a file and without following a link someone left there.

use std::fs::FileType;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Reads the whole of `path`, which must be a regular file.
///
/// The file is opened with `O_NONBLOCK` and its type checked on the open descriptor (not on
/// the path, which could be swapped in between), so naming something that is not a file fails
/// at once instead of blocking: opening a FIFO for reading otherwise waits for a writer and
/// reading it waits for data, a terminal waits for a line, and a device such as `/dev/zero`
/// never ends. `O_NONBLOCK` changes nothing for a regular file. The buffer is reserved
/// fallibly, so a huge (say, sparse) file is an error rather than an abort.
///
/// # Ambient Authority
/// Opens `path` in the host filesystem.
///
/// # Errors
/// The file cannot be opened or read, it is not a regular file (`InvalidInput`, saying what
/// it is), or it is too large to hold in memory (`OutOfMemory`).
pub fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_regular_file(path)?;
    let meta = file.metadata()?;
    let mut bytes = Vec::new();
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    bytes.try_reserve_exact(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("{} bytes: too large to read into memory", meta.len()),
        )
    })?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens `path` for reading, which must be a regular file: as [`read_regular_file`] opens it
/// (`O_NONBLOCK`, the type checked on the open descriptor), for a reader that reads it piece
/// by piece, such as `warden check --against` over a large audit log.
///
/// # Ambient Authority
/// Opens `path` in the host filesystem.
///
/// # Errors
/// The file cannot be opened, or it is not a regular file (`InvalidInput`, saying what it
/// is).
pub fn open_regular_file(path: &Path) -> io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    regular(file)
}

/// Opens `path` for appending, creating it with mode 0600 if it is missing: for audit logs.
///
/// The last component is never followed if it is a symbolic link (`O_NOFOLLOW`: a link left
/// where the log goes could point the records, or the truncation of a fresh log, anywhere),
/// and the open descriptor must be a regular file: a FIFO, device, socket or folder is refused
/// at once (`O_NONBLOCK` keeps the open of a FIFO from waiting for a reader).
///
/// # Ambient Authority
/// Opens or creates `path` in the host filesystem.
///
/// # Errors
/// The file cannot be opened or created, `path` is a symbolic link, or it is not a regular
/// file (`InvalidInput`, saying what it is).
pub fn open_append_private(path: &Path) -> io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| not_through_links(path, e))?;
    regular(file)
}

/// Checks that `path` can be replaced by a regular file warden writes: it is missing or a
/// regular file; a symbolic link, FIFO, device, socket or folder is refused. For outputs
/// checked before the work that produces them (LEARNED), so that a bad path costs no run.
///
/// # Ambient Authority
/// Looks at `path` in the host filesystem (without following a link).
///
/// # Errors
/// `path` exists and is not a regular file (`InvalidInput`, saying what it is).
pub fn check_output_path(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a symbolic link: warden does not write through links",
        )),
        Ok(m) if !m.is_file() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", describe(m.file_type())),
        )),
        Ok(_) => Ok(()),
    }
}

/// Replaces `path` with `bytes`, mode 0600: written to a new temporary file in the same
/// folder (created exclusively, so nothing left there is opened), flushed to disk, then
/// renamed over `path`. A reader sees the old file or the new one, never half of one, and a
/// symbolic link at `path` is replaced, not followed. `path` is checked first with
/// [`check_output_path`].
///
/// # Ambient Authority
/// Creates and renames files in `path`'s folder of the host filesystem.
///
/// # Errors
/// `path` is not a regular file, or the temporary file cannot be created, written or renamed.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    check_output_path(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".warden-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The errors of an `O_NOFOLLOW | O_NONBLOCK` open for writing, said as what they mean:
/// `ELOOP` for a symbolic link, `ENXIO` for a FIFO without a reader (or a device without
/// its driver), `EISDIR` for a folder.
fn not_through_links(path: &Path, e: io::Error) -> io::Error {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return e;
    };
    let t = meta.file_type();
    match e.raw_os_error() {
        Some(libc::ELOOP) if t.is_symlink() => io::Error::new(
            io::ErrorKind::InvalidInput,
            "a symbolic link: warden does not write through links",
        ),
        Some(libc::ENXIO | libc::EISDIR) if !t.is_file() => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", describe(t)),
        ),
        _ => e,
    }
}

/// `file` if it is a regular file; otherwise `InvalidInput`, saying what it is. Checked on
/// the open descriptor, not on the path, which could be swapped in between.
fn regular(file: std::fs::File) -> io::Result<std::fs::File> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", describe(meta.file_type())),
        ));
    }
    Ok(file)
}

/// What a file that is not a regular file is, for an error message ("a FIFO (named pipe)",
/// "a directory", …); shared by every check that refuses one.
pub(crate) fn describe(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(read_regular_file(&p).unwrap(), b"abc");
    }

    #[test]
    fn refuses_what_is_not_a_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_regular_file(dir.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "a directory, not a regular file");
        let e = read_regular_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "a character device, not a regular file");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_regular_file(&fifo).unwrap_err();
        assert_eq!(e.to_string(), "a FIFO (named pipe), not a regular file");
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = read_regular_file(&sock).unwrap_err();
        // A socket cannot be opened at all (ENXIO); either way, no read and no wait.
        assert!(
            e.kind() == io::ErrorKind::InvalidInput || e.raw_os_error() == Some(libc::ENXIO),
            "{e}"
        );
    }
}
