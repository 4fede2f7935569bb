/* random: 32 bytes from getentropy(3), in hex. */
#include "corpus.h"
#include <unistd.h>

int main(void) {
    unsigned char buf[32];
    if (getentropy(buf, sizeof buf) != 0) return fail("random", "getentropy", "32");
    for (size_t i = 0; i < sizeof buf; i++) printf("%02x", buf[i]);
    putchar('\n');
    return 0;
}
