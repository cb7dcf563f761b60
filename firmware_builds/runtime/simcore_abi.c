/* The harness hooks of simcore_abi.h and the semihosting console. */
#include "simcore_abi.h"

#define SYS_OPEN 0x01u
#define SYS_WRITE 0x05u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* The empty bodies are the point: simcore hooks these addresses. The asm
 * barrier keeps GCC from merging identical functions or dropping calls. */
__attribute__((noinline, used)) void simcore_trace(uint32_t layer_id, const void *ptr,
                                                   uint32_t nbytes)
{
    __asm volatile("" : : "r"(layer_id), "r"(ptr), "r"(nbytes) : "memory");
}

__attribute__((noinline, used)) void simcore_layer(uint32_t layer_id)
{
    __asm volatile("" : : "r"(layer_id) : "memory");
}

__attribute__((noinline, used)) void simcore_sample_begin(uint32_t index)
{
    __asm volatile("" : : "r"(index) : "memory");
}

__attribute__((noinline, used)) void simcore_sample_end(uint32_t index)
{
    __asm volatile("" : : "r"(index) : "memory");
}

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Semihosting has no fixed stdout/stderr handles: a host hands them out when
 * the special file ":tt" is opened, mode 4 ("w") for stdout and 8 ("a") for
 * stderr, as newlib's rdimon does. */
static int console_handle(int fd)
{
    static int handles[2] = {-1, -1};
    int *h = &handles[fd == 2 ? 1 : 0];
    if (*h < 0) {
        uint32_t block[3] = {(uint32_t)":tt", fd == 2 ? 8u : 4u, 3u};
        *h = (int)semihost(SYS_OPEN, block);
    }
    return *h;
}

int simcore_write(int fd, const void *buf, uint32_t len)
{
    uint32_t block[3] = {(uint32_t)console_handle(fd), (uint32_t)buf, len};
    /* SYS_WRITE returns the number of bytes NOT written. */
    return (int)(len - semihost(SYS_WRITE, block));
}

/* simcore stops when the PC reaches `done`; on hardware a debugger sees the
 * semihosting exit, and without one the core parks here. */
__attribute__((noinline, used, noreturn)) void done(int code)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}
