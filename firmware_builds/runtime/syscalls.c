/* The newlib system calls simcore firmware needs: console writes go to
 * semihosting, the heap grows from __heap_start up to __heap_end. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "simcore_abi.h"

extern char __heap_start[], __heap_end[];
static char *heap_top = __heap_start;

/* simcore hooks _sbrk by symbol to measure the heap peak. */
__attribute__((noinline, used)) void *_sbrk(ptrdiff_t increment)
{
    char *old = heap_top;
    if (increment > __heap_end - heap_top || increment < __heap_start - heap_top) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_top += increment;
    return old;
}

int _write(int fd, const char *buf, int len)
{
    return simcore_write(fd, buf, (uint32_t)len);
}

int _read(int fd, char *buf, int len) { (void)fd; (void)buf; (void)len; return 0; }
int _close(int fd) { (void)fd; return -1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _isatty(int fd) { return fd <= 2; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int code) { done(code); }
