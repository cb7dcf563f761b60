/*
 * Reset handler and vector table shared by every board.
 *
 * The linker script (ld/common.ld) provides the section boundaries. On
 * boards whose code runs from RAM (stm32h743: ITCM) .text is copied from its
 * flash load address before main; elsewhere the copy is empty. Static
 * constructors (C++ globals, __attribute__((constructor))) run after .data
 * and .bss are set up, before main.
 */
#include <stdint.h>
#include "simcore_abi.h"

extern uint32_t __text_load[], __text_start[], __text_end[];
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

/* Static constructors, in the order to run them: ld/common.ld places
 * .preinit_array right before .init_array (and checks it). */
typedef void (*init_fn)(void);
extern const init_fn __preinit_array_start[], __init_array_end[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);

/* The reset path runs before .text is at its run address, so everything it
 * calls lives in .text.reset, and GCC must not turn the loops into calls to
 * memcpy/memset (which live in .text). */
#define RESET_CODE __attribute__((section(".text.reset"), optimize("no-tree-loop-distribute-patterns")))
/* Code run once at reset is built for size (-Os): its bytes count in every
 * firmware's flash, and -O2 turns the .bss loop into 30 bytes of trip-count
 * set-up. */
#define RESET_CODE_SMALL                                                           \
    __attribute__((section(".text.reset"), optimize("Os", "no-tree-loop-distribute-patterns")))

RESET_CODE __attribute__((noinline)) static void copy_words(uint32_t *dst, const uint32_t *src,
                                                            const uint32_t *end)
{
    while (dst < end) {
        *dst++ = *src++;
    }
}

/* What newlib's __libc_init_array does, less its call of _init (empty without
 * crti.o, which -nostartfiles leaves out), in a third of its size: a C program
 * without constructors pays about 30 bytes of flash. A function of its own, so
 * its frame is gone before main runs (the stack peak stays main's). */
RESET_CODE_SMALL __attribute__((noinline)) static void run_constructors(void)
{
    for (const init_fn *f = __preinit_array_start; f < __init_array_end; ++f) {
        (*f)();
    }
}

RESET_CODE_SMALL __attribute__((noreturn, used)) void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* Grant full access to CP10/CP11 before any floating-point instruction;
     * the FPU is off at reset on real M33/M7 silicon (unicorn ignores this). */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    if (__text_start != __text_load) {
        copy_words(__text_start, __text_load, __text_end);
    }
    copy_words(__data_start, __data_load, __data_end);
    for (uint32_t *p = __bss_start; p < __bss_end; ++p) {
        *p = 0u;
    }
    /* After the copy: the constructors live in .text, which may run from a TCM. */
    run_constructors();
    done(main());
}

/* The handle __cxa_atexit records with each C++ global destructor (normally
 * from crtbegin.o, left out by -nostartfiles). Global destructors run only if
 * the program calls exit(); returning from main stops at done() at once. */
__attribute__((weak)) void *__dso_handle = 0;

__attribute__((section(".text.reset"), used)) void Default_Handler(void)
{
    /* An unexpected exception: stop where a debugger (or simcore) sees it. */
    __asm volatile("bkpt 0x01");
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) void (*const simcore_vectors[16])(void) = {
    (void (*)(void))__stack_top, /* initial SP */
    Reset_Handler,               /* reset */
    Default_Handler,             /* NMI */
    Default_Handler,             /* HardFault */
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0,
    Default_Handler,             /* SVCall */
    0, 0,
    Default_Handler,             /* PendSV */
    Default_Handler,             /* SysTick */
};
