/* cat PATH...: writes each file to stdout, through stdio's buffered reads. */
#include "corpus.h"

int main(int argc, char **argv) {
    int status = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            status = fail("cat", "open", argv[i]);
            continue;
        }
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
        if (ferror(f)) status = fail("cat", "read", argv[i]);
        fclose(f);
    }
    return status;
}
