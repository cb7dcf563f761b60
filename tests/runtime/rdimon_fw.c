/* A program linked with newlib's rdimon (--specs=rdimon.specs) instead of
 * simcore's syscalls: console and exit go through newlib's semihosting code.
 * EXIT_CODE is the status; with RETURN_FROM_MAIN main returns it to the
 * startup code, otherwise main calls exit(). */
#include <stdio.h>
#include <stdlib.h>

extern void initialise_monitor_handles(void);

int main(void)
{
    initialise_monitor_handles(); /* newlib's crt0 does this; simcore's startup does not */
    printf("exiting %d\n", EXIT_CODE);
    fprintf(stderr, "on stderr\n");
#ifdef RETURN_FROM_MAIN
    return EXIT_CODE;
#else
    exit(EXIT_CODE);
#endif
}
