/* bytes PATH: reads a file with open/read and prints its length and every byte in hex, 32 a
 * line, so that a test can check binary content (NUL, 0xFF, CR LF) byte for byte. */
#include "corpus.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bytes PATH\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return fail("bytes", "open", argv[1]);
    unsigned char buf[1000];
    unsigned long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++, total++) {
            printf("%02x", buf[i]);
            if (total % 32 == 31) putchar('\n');
        }
    }
    if (n < 0) return fail("bytes", "read", argv[1]);
    if (total % 32 != 0) putchar('\n');
    printf("%lu bytes\n", total);
    close(fd);
    return 0;
}
