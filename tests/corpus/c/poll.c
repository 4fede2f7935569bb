/* poll PATH: opens a file and waits for it to be readable, first with poll(2) (wasi-libc turns
 * it into one poll_oneoff call), then with poll_oneoff itself (an fd_read subscription), then
 * reads it. Prints what each wait reported and the file's first line. */
#include "corpus.h"
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: poll PATH\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return fail("poll", "open", argv[1]);

    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    int ready = poll(&p, 1, 5000);
    if (ready < 0) return fail("poll", "poll", argv[1]);
    printf("poll: %d ready%s\n", ready, (p.revents & POLLIN) ? ", POLLIN" : "");

    __wasi_subscription_t sub;
    memset(&sub, 0, sizeof sub);
    sub.userdata = 42;
    sub.u.tag = __WASI_EVENTTYPE_FD_READ;
    sub.u.u.fd_read.file_descriptor = (__wasi_fd_t)fd;
    __wasi_event_t ev;
    memset(&ev, 0, sizeof ev);
    __wasi_size_t n = 0;
    __wasi_errno_t err = __wasi_poll_oneoff(&sub, &ev, 1, &n);
    if (err != 0) {
        errno = err;
        return fail("poll", "poll_oneoff", argv[1]);
    }
    printf("poll_oneoff: %u event(s), userdata %llu, type %s, error %s\n", (unsigned)n,
           (unsigned long long)ev.userdata, ev.type == __WASI_EVENTTYPE_FD_READ ? "fd_read" : "?",
           errname(ev.error));

    char line[256];
    ssize_t got = read(fd, line, sizeof line - 1);
    if (got < 0) return fail("poll", "read", argv[1]);
    line[got] = '\0';
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    printf("first line: %s\n", line);
    close(fd);
    return 0;
}
