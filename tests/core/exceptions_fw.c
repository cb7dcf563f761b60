/*
 * Exceptions as vendor SDKs use them, in C on the project's runtime
 * (tests/core/test_exceptions.py builds it for each board):
 * - the vector table copied to RAM and SCB->VTOR pointed at it, handlers installed
 *   there (pico-sdk's irq_set_exclusive_handler; STM32 HAL's VTOR set-up);
 * - a 1 kHz-style SysTick incrementing a tick counter, and a delay polling it
 *   (STM32 HAL's HAL_IncTick / HAL_Delay, with HAL's "wait at least one more tick");
 * - on the RP2040/RP2350 (TIMER_BASE defined), a sleep that arms TIMER ALARM0, enables
 *   its interrupt in the timer and the NVIC, and waits with WFE until the alarm's
 *   handler ran (pico-sdk's sleep_us: alarm pool IRQ, __sev, __wfe);
 * - SVC with its number read from the stacked return address.
 * The program prints what it measured over semihosting and returns the tick count.
 */
#include <stdint.h>
#include <stdio.h>

#define REG(address) (*(volatile uint32_t *)(address))
#define SCB_VTOR 0xE000ED08u
#define SYST_CSR 0xE000E010u
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u
#define NVIC_ISER0 0xE000E100u
#define NVIC_IPR0 0xE000E400u
#define SCB_SHPR3 0xE000ED20u

#define TICK_CYCLES 10000u
#define VECTORS 48

typedef void (*handler_t)(void);
static handler_t ram_vectors[VECTORS] __attribute__((aligned(256)));

static volatile uint32_t ticks;
static volatile uint32_t svc_seen;

static void systick_isr(void) { ticks++; }

static uint32_t get_tick(void) { return ticks; }

/* HAL_Delay: wait at least `delay` whole ticks (one more than asked, as HAL does). */
static void delay_ticks(uint32_t delay) {
    uint32_t start = get_tick();
    uint32_t wait = delay + 1u;
    while ((get_tick() - start) < wait) {
    }
}

__attribute__((naked)) static void svc_isr(void) {
    /* r0 = the stacked frame (MSP: Thread mode runs on the MSP here). */
    __asm volatile(
        ".syntax unified\n"
        "mrs r0, msp\n"
        "ldr r1, [r0, #24]\n" /* stacked return address */
        "subs r1, #2\n"
        "ldrb r1, [r1]\n"     /* the SVC's immediate */
        "ldr r2, =svc_seen\n"
        "str r1, [r2]\n"
        "bx lr\n"
        ".ltorg\n");
}

#ifdef TIMER_BASE
static volatile uint32_t alarm_fired;

static void alarm0_isr(void) {
    REG(TIMER_BASE + TIMER_INTR) = 1u; /* write 1 to clear */
    alarm_fired = 1u;
    __asm volatile("sev");
}

static uint32_t time_us(void) { return REG(TIMER_BASE + 0x28u); /* TIMERAWL */ }

static void sleep_us(uint32_t us) {
    alarm_fired = 0u;
    REG(TIMER_BASE + TIMER_INTE) |= 1u;
    REG(NVIC_ISER0) = 1u << TIMER_IRQ;
    REG(TIMER_BASE + 0x10u) = time_us() + us; /* ALARM0: writing arms it */
    while (!alarm_fired) {
        __asm volatile("wfe");
    }
}
#endif

int main(void) {
    const handler_t *flash_vectors = (const handler_t *)REG(SCB_VTOR);
    for (int i = 0; i < 16; i++) {
        ram_vectors[i] = flash_vectors[i];
    }
    ram_vectors[11] = svc_isr;
    ram_vectors[15] = systick_isr;
#ifdef TIMER_BASE
    ram_vectors[16 + TIMER_IRQ] = alarm0_isr;
#endif
    REG(SCB_VTOR) = (uint32_t)ram_vectors;
    __asm volatile("dsb\n\tisb" ::: "memory");

    REG(SCB_SHPR3) = 0x40u << 24; /* SysTick priority 0x40 */
    REG(SYST_RVR) = TICK_CYCLES - 1u;
    REG(SYST_CVR) = 0u;
    REG(SYST_CSR) = 7u; /* processor clock, TICKINT, ENABLE */

    delay_ticks(5);
    uint32_t after_delay = get_tick();

    __asm volatile("svc #23");

#ifdef TIMER_BASE
    uint32_t t0 = time_us();
    sleep_us(2000u);
    uint32_t slept = time_us() - t0;
    printf("delay: %lu ticks, svc %lu, slept %lu us\n", (unsigned long)after_delay,
           (unsigned long)svc_seen, (unsigned long)slept);
#else
    printf("delay: %lu ticks, svc %lu\n", (unsigned long)after_delay, (unsigned long)svc_seen);
#endif
    REG(SYST_CSR) = 0u;
    return (int)after_delay;
}
