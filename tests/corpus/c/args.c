/* args ARG...: prints argc, then each argument (argv[0] included) in brackets, one a line. */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("argc %d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d] [%s]\n", i, argv[i]);
    return 0;
}
