/* A vendor-style startup for rdimon programs: set up .data and .bss (ld
 * symbols of firmware_builds/ld/common.ld), then exit(main()), as newlib's
 * crt0 does. (newlib's rdimon-crt0.o itself does not copy .data from flash: it
 * expects a debugger to have loaded it.) */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
int main(void);
void Reset_Handler(void);

void Reset_Handler(void)
{
    const uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *p = __bss_start; p < __bss_end; ++p) {
        *p = 0u;
    }
    exit(main());
}

__attribute__((section(".vectors"), used)) void (*const vectors[2])(void) = {
    (void (*)(void))__stack_top,
    Reset_Handler,
};
