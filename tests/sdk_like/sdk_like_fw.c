/* Firmware that brings a chip up the way its vendor SDK does, register for register:
 * pico-sdk's runtime_init (resets, XOSC, clk_ref/clk_sys switches, PLL lock, watchdog
 * tick), spin-lock claims and stdio over UART0 on the RP2040/RP2350; STM32CubeH7's
 * SystemInit/HAL_PWREx_ConfigSupply/HAL_RCC_OscConfig/HAL_RCC_ClockConfig sequence
 * (LDO supply, VOS0, HSE, PLL1 for 480 MHz, flash latency, switch to PLL1) and
 * HAL_UART on USART3 on the STM32H743. Written for simcore's tests from the
 * datasheets' register descriptions (addresses in tests/sdk_like/README.md).
 *
 * Output goes to the console through the UART; the exit code is the number of
 * checks that failed, returned through exit() -> _exit(), a `bkpt` loop as in
 * pico-sdk. CHIP_RP2040, CHIP_RP2350 or CHIP_STM32H743 selects the chip.
 */
#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(addr))

static int failures;

static void check(int ok) { failures += !ok; }

#if defined(CHIP_RP2040) || defined(CHIP_RP2350)
#define SET(addr) REG((addr) + 0x2000)
#define CLR(addr) REG((addr) + 0x3000)
#if defined(CHIP_RP2040)
#define RESETS 0x4000c000u
#define CLOCKS 0x40008000u
#define XOSC 0x40024000u
#define PLL_SYS 0x40028000u
#define UART0 0x40034000u
#define WATCHDOG_TICK 0x4005802cu
#define GPIO25_CTRL 0x400140ccu
#define PWM_CH0_CC 0x4005000cu
#define UART0_RESET (1u << 22)
#define PLL_SYS_RESET (1u << 12)
#define ALL_RESETS 0x01ffffffu
#define CHIP_NAME "rp2040"
#else
#define RESETS 0x40020000u
#define CLOCKS 0x40010000u
#define XOSC 0x40048000u
#define PLL_SYS 0x40050000u
#define UART0 0x40070000u
#define TICKS_TIMER0_CTRL 0x40108018u
#define GPIO25_CTRL 0x400280ccu
#define PWM_CH0_CC 0x400a800cu
#define UART0_RESET (1u << 26)
#define PLL_SYS_RESET (1u << 14)
#define ALL_RESETS 0x1fffffffu
#define CHIP_NAME "rp2350"
#endif
#define SIO 0xd0000000u

static void uart_putc(char c) {
    while (REG(UART0 + 0x18) & (1u << 5)) {} /* UARTFR.TXFF */
    REG(UART0 + 0x00) = (uint8_t)c;
}

static void uart_flush(void) {
    while (REG(UART0 + 0x18) & (1u << 3)) {} /* UARTFR.BUSY */
}

static void unreset_wait(uint32_t bits) {
    CLR(RESETS + 0x0) = bits;
    while (~REG(RESETS + 0x8) & bits) {}
}

static void bring_up(void) {
    /* runtime_init_early_resets: everything but the QSPI pads/IO back into reset. */
    SET(RESETS + 0x0) = ALL_RESETS & ~0x00000140u;
    check((REG(RESETS + 0x8) & UART0_RESET) == 0);
    unreset_wait(ALL_RESETS & ~(UART0_RESET | PLL_SYS_RESET | (1u << 24)));
#if defined(CHIP_RP2040)
    REG(WATCHDOG_TICK) = (1u << 9) | 12; /* watchdog_start_tick(12) */
    check((REG(WATCHDOG_TICK) & (1u << 10)) != 0); /* RUNNING */
#else
    REG(TICKS_TIMER0_CTRL + 4) = 12; /* tick_start(TICK_TIMER0, 12) */
    REG(TICKS_TIMER0_CTRL) = 1;
    check((REG(TICKS_TIMER0_CTRL) & 2u) != 0); /* RUNNING */
#endif
    /* xosc_init */
    REG(XOSC + 0x0) = 0xaa0; /* FREQ_RANGE 1-15 MHz */
    REG(XOSC + 0xc) = 47;
    check((REG(XOSC + 0x4) & 0x80000000u) == 0); /* not stable before enable */
    SET(XOSC + 0x0) = 0xfabu << 12;
    while (!(REG(XOSC + 0x4) & 0x80000000u)) {}
    /* clk_sys to clk_ref, clk_ref to xosc (clocks_init) */
    CLR(CLOCKS + 0x3c) = 1u;
    while (REG(CLOCKS + 0x44) != 0x1) {}
    REG(CLOCKS + 0x30) = 2; /* clk_ref SRC = xosc */
    while (REG(CLOCKS + 0x38) != (1u << 2)) {}
    /* pll_init(pll_sys, 1, 1500 MHz, 6, 2) */
    SET(RESETS + 0x0) = PLL_SYS_RESET;
    unreset_wait(PLL_SYS_RESET);
    check((REG(PLL_SYS + 0x0) & 0x80000000u) == 0); /* powered down: not locked */
    REG(PLL_SYS + 0x0) = 1;
    REG(PLL_SYS + 0x8) = 125;
    CLR(PLL_SYS + 0x4) = 0x21; /* PD | VCOPD */
    while (!(REG(PLL_SYS + 0x0) & 0x80000000u)) {}
    REG(PLL_SYS + 0xc) = (6u << 16) | (2u << 12);
    CLR(PLL_SYS + 0x4) = 0x08; /* POSTDIVPD */
    /* clk_sys from the PLL through its aux mux */
    REG(CLOCKS + 0x3c) = 0; /* AUXSRC = pll_sys, SRC = clk_ref */
    SET(CLOCKS + 0x3c) = 1u;
    while (REG(CLOCKS + 0x44) != (1u << 1)) {}
    /* the UART, as uart_init(uart0, 115200) at 125 MHz */
    unreset_wait(UART0_RESET);
    REG(UART0 + 0x24) = 67;
    REG(UART0 + 0x28) = 52;
    REG(UART0 + 0x2c) = 0x70; /* 8N1, FIFOs on */
    REG(UART0 + 0x30) = 0x301; /* UARTEN, TXE, RXE */
    check(REG(UART0 + 0x24) == 67 && REG(UART0 + 0x2c) == 0x70);
    REG(GPIO25_CTRL) = 5; /* gpio_set_function(25, SIO) */
    check(REG(GPIO25_CTRL) == 5);
    REG(PWM_CH0_CC) = 0x00400040u; /* PWM: not declared, reads back */
    check(REG(PWM_CH0_CC) == 0x00400040u);
}

static int spin_locks(void) {
    volatile uint32_t *lock = (volatile uint32_t *)(SIO + 0x100);
    int ok = 1;
    ok &= lock[5] == (1u << 5);                  /* claimed */
    ok &= lock[5] == 0;                           /* already held */
    ok &= (REG(SIO + 0x5c) & (1u << 5)) != 0;     /* SPINLOCK_ST */
    lock[5] = 1;                                  /* release */
    ok &= (REG(SIO + 0x5c) & (1u << 5)) == 0;
    ok &= lock[5] != 0;                           /* free again */
    lock[5] = 1;
    ok &= REG(SIO + 0x000) == 0;                  /* CPUID: core 0 */
    ok &= (REG(SIO + 0x050) & 0x3) == 0x2;        /* FIFO_ST: RDY, not VLD */
#if defined(CHIP_RP2350)
    volatile uint32_t *boot = (volatile uint32_t *)(0x400e080cu);
    ok &= boot[7] == (1u << 7) && boot[7] == 0 && (REG(0x400e0808u) & 0x80u);
    boot[7] = 1;
    ok &= (REG(0x400e0808u) & 0x80u) == 0;
#endif
    return ok;
}
#elif defined(CHIP_STM32H743)
#define RCC 0x58024400u
#define PWR 0x58024800u
#define FLASH_ACR 0x52002000u
#define SYSCFG_PWRCR 0x5800042cu
#define USART3 0x40004800u
#define GPIOD_MODER 0x58020c00u
#define TIM2_ARR 0x4000002cu
#define CHIP_NAME "stm32h743"

static void uart_putc(char c) {
    while (!(REG(USART3 + 0x1c) & (1u << 7))) {} /* ISR.TXE */
    REG(USART3 + 0x28) = (uint8_t)c;
}

static void uart_flush(void) {
    while (!(REG(USART3 + 0x1c) & (1u << 6))) {} /* ISR.TC */
}

static void bring_up(void) {
    /* SystemInit */
    REG(RCC + 0x00) |= 1u; /* HSION */
    REG(RCC + 0x10) = 0;
    REG(RCC + 0x00) &= 0xeaf6ed7fu;
    /* HAL_PWREx_ConfigSupply(PWR_LDO_SUPPLY) */
    REG(PWR + 0x0c) = (REG(PWR + 0x0c) & ~0x7u) | 0x2u;
    while (!(REG(PWR + 0x04) & (1u << 13))) {} /* CSR1.ACTVOSRDY */
    /* __HAL_PWR_VOLTAGESCALING_CONFIG(PWR_REGULATOR_VOLTAGE_SCALE1), then VOS0 */
    REG(PWR + 0x18) = (REG(PWR + 0x18) & ~(3u << 14)) | (3u << 14);
    while (!(REG(PWR + 0x18) & (1u << 13))) {}
    REG(RCC + 0xf4) |= 1u << 1; /* SYSCFGEN */
    REG(SYSCFG_PWRCR) |= 1u; /* ODEN */
    while (!(REG(PWR + 0x18) & (1u << 13))) {}
    check(((REG(PWR + 0x04) >> 14) & 3u) == 3u); /* ACTVOS follows VOS */
    /* HAL_RCC_OscConfig: HSE on, PLL1 = 8 MHz / 1 * 120 / 2 = 480 MHz */
    REG(RCC + 0x00) |= 1u << 16;
    while (!(REG(RCC + 0x00) & (1u << 17))) {}
    REG(RCC + 0x00) &= ~(1u << 24);
    while (REG(RCC + 0x00) & (1u << 25)) {}
    REG(RCC + 0x28) = (REG(RCC + 0x28) & ~0x3f3u) | (1u << 4) | 2u; /* DIVM1 = 1, HSE */
    REG(RCC + 0x30) = (119u << 0) | (1u << 9) | (3u << 16) | (1u << 24);
    REG(RCC + 0x2c) |= (1u << 16) | (2u << 2); /* DIVP1EN, PLL1RGE 4-8 MHz */
    REG(RCC + 0x00) |= 1u << 24;
    while (!(REG(RCC + 0x00) & (1u << 25))) {}
    /* HAL_RCC_ClockConfig: FLASH_LATENCY_4 then SYSCLK = PLL1 */
    REG(FLASH_ACR) = (REG(FLASH_ACR) & ~0x3fu) | (2u << 4) | 4u;
    check((REG(FLASH_ACR) & 0xfu) == 4u);
    REG(RCC + 0x18) = (1u << 3) | (4u << 4); /* D1CFGR: HPRE /2, D1PPRE /2 */
    REG(RCC + 0x10) = (REG(RCC + 0x10) & ~7u) | 3u;
    while (((REG(RCC + 0x10) >> 3) & 7u) != 3u) {}
    /* HAL_UART_Init(USART3, 115200) */
    REG(RCC + 0xe8) |= 1u << 18; /* USART3EN */
    REG(USART3 + 0x0c) = 1042;
    REG(USART3 + 0x00) = (1u << 3) | 1u; /* TE | UE */
    while (!(REG(USART3 + 0x1c) & (1u << 21))) {} /* ISR.TEACK */
    check(REG(USART3 + 0x0c) == 1042);
    REG(GPIOD_MODER) = 0xfffaffffu; /* PD8/PD9 alternate function */
    check(REG(GPIOD_MODER) == 0xfffaffffu);
    REG(TIM2_ARR) = 999u; /* a timer: not declared, reads back */
    check(REG(TIM2_ARR) == 999u);
}

static int spin_locks(void) { return 1; }
#else
#error "define CHIP_RP2040, CHIP_RP2350 or CHIP_STM32H743"
#endif

static void puts_(const char *s) {
    while (*s) uart_putc(*s++);
}

static void put_uint(uint32_t v) {
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts_(&buf[i]);
}

int main(void) {
    bring_up();
    puts_("hello from " CHIP_NAME " over the UART\n");
    int locks = spin_locks();
    check(locks);
    puts_("spin locks ");
    puts_(locks ? "ok" : "FAILED");
    puts_("\nchecks failed: ");
    put_uint((uint32_t)failures);
    puts_("\n");
    uart_flush();
    return 40 + failures;
}

/* The startup code: pico-sdk's crt0 copies .data, clears .bss, calls main and exit(). */
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;

void _exit(int status) __attribute__((noreturn, noinline));
void _exit(int status) {
    (void)status;
    for (;;) __asm volatile("bkpt #0");
}

void exit(int status) __attribute__((noreturn));
void exit(int status) { _exit(status); }

void Reset_Handler(void) __attribute__((noreturn));
void Reset_Handler(void) {
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    exit(main());
}

__attribute__((section(".vectors"), used)) static const void *vectors[16] = {
    &__stack_top, (void *)Reset_Handler,
};
