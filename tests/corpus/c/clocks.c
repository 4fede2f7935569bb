/* clocks: prints the wall clock (seconds since the epoch, and the UTC date), then reads the
 * monotonic clock around a stretch of work and a 20 ms nanosleep and says whether it moved. */
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec wall, m0, m1, m2;
    if (clock_gettime(CLOCK_REALTIME, &wall) != 0) return 1;
    struct tm utc;
    gmtime_r(&wall.tv_sec, &utc);
    printf("wall %lld %04d-%02d-%02d\n", (long long)wall.tv_sec, utc.tm_year + 1900,
           utc.tm_mon + 1, utc.tm_mday);

    if (clock_gettime(CLOCK_MONOTONIC, &m0) != 0) return 1;
    volatile unsigned long sink = 0;
    for (unsigned long i = 0; i < 5000000; i++) sink += i;
    if (sink == 1) return 1; /* never: keeps the loop */
    if (clock_gettime(CLOCK_MONOTONIC, &m1) != 0) return 1;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    if (nanosleep(&pause, NULL) != 0) return 1;
    if (clock_gettime(CLOCK_MONOTONIC, &m2) != 0) return 1;
    long long ns0 = (long long)m0.tv_sec * 1000000000LL + m0.tv_nsec;
    long long ns1 = (long long)m1.tv_sec * 1000000000LL + m1.tv_nsec;
    long long ns2 = (long long)m2.tv_sec * 1000000000LL + m2.tv_nsec;
    printf("monotonic start %lld\n", ns0);
    printf("monotonic over work: %s\n", ns1 > ns0 ? "advanced" : "frozen");
    printf("monotonic over 20 ms sleep: %s\n", ns2 - ns1 >= 20000000LL ? "advanced 20 ms or more"
                                               : ns2 > ns1             ? "advanced less than 20 ms"
                                                                       : "frozen");
    return 0;
}
