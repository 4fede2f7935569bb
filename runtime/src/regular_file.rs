//! Reading a file the user named (a manifest, a module) without blocking on what is not a file.

use std::fs::FileType;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
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
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", describe(meta.file_type())),
        ));
    }
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
