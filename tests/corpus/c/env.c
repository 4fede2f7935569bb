/* env NAME...: prints `NAME=VALUE` or `NAME is not set` for each name, then how many variables
 * the environment holds in all. */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *v = getenv(argv[i]);
        if (v)
            printf("%s=%s\n", argv[i], v);
        else
            printf("%s is not set\n", argv[i]);
    }
    int count = 0;
    for (char **e = environ; e && *e; e++) count++;
    printf("%d variable(s)\n", count);
    return 0;
}
