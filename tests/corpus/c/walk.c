/* walk DIR: walks a tree depth first, entries of each folder in name order, printing each path
 * relative to DIR: `d PATH/` for a folder, `f PATH SIZE` for a file. */
#include "corpus.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(const char *root, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return fail("walk", "opendir", path);
    char *names[1024];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < 1024) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof names[0], by_name);
    int status = 0;
    for (size_t i = 0; i < count; i++) {
        char child[4096], full[4096];
        snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        snprintf(full, sizeof full, "%s/%s", root, child);
        struct stat st;
        if (lstat(full, &st) != 0) {
            status = fail("walk", "stat", full);
        } else if (S_ISDIR(st.st_mode)) {
            printf("d %s/\n", child);
            status |= walk(root, child);
        } else {
            printf("f %s %lld\n", child, (long long)st.st_size);
        }
        free(names[i]);
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: walk DIR\n");
        return 2;
    }
    return walk(argv[1], "");
}
