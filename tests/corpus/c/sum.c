/* sum PATH: reads a (large) file in 64 KiB chunks and prints its size as read, its size as
 * lseek sees it, and its FNV-1a 64-bit hash. */
#include "corpus.h"
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

static unsigned char buf[65536];

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: sum PATH\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return fail("sum", "open", argv[1]);
    uint64_t hash = 0xcbf29ce484222325ULL;
    unsigned long long size = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            hash ^= buf[i];
            hash *= 0x100000001b3ULL;
        }
        size += (unsigned long long)n;
    }
    if (n < 0) return fail("sum", "read", argv[1]);
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) return fail("sum", "lseek", argv[1]);
    printf("read %llu bytes, lseek end %lld, fnv1a64 %016llx\n", size, (long long)end,
           (unsigned long long)hash);
    close(fd);
    return 0;
}
