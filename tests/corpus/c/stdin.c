/* stdin: reads standard input to its end and prints how many bytes and lines it held, then the
 * input with each lower-case ASCII letter made upper case. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return 1;
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            char *bigger = realloc(buf, cap);
            if (!bigger) return 1;
            buf = bigger;
        }
    }
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    printf("%zu bytes, %zu lines\n", len, lines);
    for (size_t i = 0; i < len; i++) putchar(toupper((unsigned char)buf[i]));
    return 0;
}
