/* ls DIR: lists a folder's entries (without . and ..) in name order, each with its type and,
 * for files, its size: `f NAME SIZE` or `d NAME`. */
#include "corpus.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: ls DIR\n");
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) return fail("ls", "opendir", argv[1]);
    char *names[1024];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < 1024) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        names[count++] = strdup(e->d_name);
    }
    qsort(names, count, sizeof names[0], by_name);
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            return fail("ls", "stat", names[i]);
        if (S_ISDIR(st.st_mode))
            printf("d %s\n", names[i]);
        else
            printf("f %s %lld\n", names[i], (long long)st.st_size);
    }
    closedir(d);
    return 0;
}
