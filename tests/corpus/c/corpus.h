/* Shared by the C corpus programs (tests/corpus/c): the name of an errno value, and one way
 * of reporting a failed call, so that tests can match `NAME: OP TARGET: ENAME` on stderr. */
#ifndef CORPUS_H
#define CORPUS_H

#include <errno.h>
#include <stdio.h>

/* The symbolic name of an errno value as wasi-libc numbers them (they differ from Linux's). */
static const char *errname(int e) {
    switch (e) {
    case 0: return "OK";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case EISDIR: return "EISDIR";
    case ENOENT: return "ENOENT";
    case ENOSYS: return "ENOSYS";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    case ENOTDIR: return "ENOTDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENOTSUP: return "ENOTSUP";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case EXDEV: return "EXDEV";
    default: return "E?";
    }
}

/* Reports that `op` on `target` failed with the current errno; returns 1, the exit code. */
static int fail(const char *prog, const char *op, const char *target) {
    int e = errno;
    fprintf(stderr, "%s: %s %s: %s\n", prog, op, target, errname(e));
    return 1;
}

#endif
