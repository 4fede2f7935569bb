/* mutate STEP...: runs file-changing steps in order, printing `ok STEP ARGS` for each that
 * worked and `mutate: STEP PATH: ENAME` on stderr for each that failed (and going on); exits 1
 * if any failed. Steps:
 *   create PATH TEXT   a new file (O_CREAT|O_EXCL) holding TEXT
 *   write PATH TEXT    an existing file truncated to TEXT (no O_CREAT)
 *   append PATH TEXT   TEXT added at the end (O_APPEND)
 *   rename FROM TO     rename(2)
 *   rm PATH            unlink(2)
 *   mkdir PATH         mkdir(2), mode 0755
 *   rmdir PATH         rmdir(2) */
#include "corpus.h"
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int put(const char *path, int flags, const char *text, const char *step) {
    int fd = open(path, flags, 0644);
    if (fd < 0) return fail("mutate", step, path);
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    if (n < 0 || (size_t)n != len) {
        int status = fail("mutate", step, path);
        close(fd);
        return status;
    }
    if (close(fd) != 0) return fail("mutate", step, path);
    return 0;
}

int main(int argc, char **argv) {
    int status = 0;
    int i = 1;
    while (i < argc) {
        const char *step = argv[i];
        int want = strcmp(step, "rm") == 0 || strcmp(step, "mkdir") == 0 ||
                           strcmp(step, "rmdir") == 0
                       ? 1
                       : 2;
        if (i + want >= argc) {
            fprintf(stderr, "mutate: %s needs %d argument(s)\n", step, want);
            return 2;
        }
        const char *a = argv[i + 1];
        const char *b = want == 2 ? argv[i + 2] : "";
        int failed;
        if (strcmp(step, "create") == 0)
            failed = put(a, O_WRONLY | O_CREAT | O_EXCL, b, step);
        else if (strcmp(step, "write") == 0)
            failed = put(a, O_WRONLY | O_TRUNC, b, step);
        else if (strcmp(step, "append") == 0)
            failed = put(a, O_WRONLY | O_APPEND, b, step);
        else if (strcmp(step, "rename") == 0)
            failed = rename(a, b) != 0 ? fail("mutate", step, a) : 0;
        else if (strcmp(step, "rm") == 0)
            failed = unlink(a) != 0 ? fail("mutate", step, a) : 0;
        else if (strcmp(step, "mkdir") == 0)
            failed = mkdir(a, 0755) != 0 ? fail("mutate", step, a) : 0;
        else if (strcmp(step, "rmdir") == 0)
            failed = rmdir(a) != 0 ? fail("mutate", step, a) : 0;
        else {
            fprintf(stderr, "mutate: unknown step %s\n", step);
            return 2;
        }
        if (!failed) printf("ok %s %s%s%s\n", step, a, want == 2 ? " " : "", want == 2 ? b : "");
        status |= failed;
        i += 1 + want;
    }
    return status;
}
