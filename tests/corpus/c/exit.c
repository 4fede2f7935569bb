/* exit CODE | trap: exits with CODE (through exit(3), after printing a line that must reach
 * stdout), or executes `unreachable` (what abort() does in wasi-libc). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: exit CODE|trap\n");
        return 2;
    }
    if (strcmp(argv[1], "trap") == 0) {
        printf("about to trap\n");
        fflush(stdout);
        __builtin_trap();
    }
    printf("exiting with %s\n", argv[1]);
    exit(atoi(argv[1]));
}
