/*
 * Port for QEMU's netduinoplus2 machine (STM32F405). Register names as in RM0090 (STM32F405xx
 * reference manual); behaviour as in QEMU 7.2 hw/char/stm32f2xx_usart.c and
 * hw/timer/stm32f2xx_timer.c.
 */
#include "cm4.h"
#include "tme_port.h"
#include "tme_uart_rx.h"

/* USART1: the first `-serial` option of QEMU. */
#define USART1_BASE 0x40011000U
#define USART1_SR CM4_REG(USART1_BASE + 0x00U)
#define USART1_DR CM4_REG(USART1_BASE + 0x04U)
#define USART1_CR1 CM4_REG(USART1_BASE + 0x0CU)
#define USART_SR_ORE (1U << 3)
#define USART_SR_RXNE (1U << 5)
#define USART_SR_TXE (1U << 7)
#define USART_CR1_RE (1U << 2)
#define USART_CR1_TE (1U << 3)
#define USART_CR1_RXNEIE (1U << 5)
#define USART_CR1_UE (1U << 13)

/* TIM2, a 32-bit general-purpose timer */
#define TIM2_BASE 0x40000000U
#define TIM2_CR1 CM4_REG(TIM2_BASE + 0x00U)
#define TIM2_EGR CM4_REG(TIM2_BASE + 0x14U)
#define TIM2_PSC CM4_REG(TIM2_BASE + 0x28U)
#define TIM2_ARR CM4_REG(TIM2_BASE + 0x2CU)
#define TIM_CR1_CEN (1U << 0)
#define TIM_EGR_UG (1U << 0)


/*
 * Software watchdog. QEMU 7.2's STM32F405 has no IWDG model (hw/arm/stm32f405_soc.c maps IWDG as
 * an unimplemented device: writes ignored, nothing ever resets), so SysTick stands in for it:
 * kicked by the main loop (a write to SYST_CVR restarts the count-down without raising the
 * exception: hw/timer/armv7m_systick.c), it expires only after WATCHDOG_PERIOD of virtual time
 * without a kick, and after WATCHDOG_EXPIRIES expiries in a row the handler resets the machine
 * through AIRCR.SYSRESETREQ (QEMU: a full system reset; the firmware reboots and sends BOOT).
 * - Idle: WFI with -icount lets virtual time run to the next timer deadline, so an idle board
 *   sees one expiry per period; that wake-up makes the main loop run and kick, so idling never
 *   adds up to a reset.
 * - Timing: the timed inference is never interrupted as long as it is shorter than one period
 *   (80 M instructions under -icount shift=0; the course CNN's generated C takes 0.18 M, its
 *   TFLM reference-kernel build about 11 M, estimated). Longer ones see an expiry (a few dozen
 *   instructions) and are reset after WATCHDOG_EXPIRIES periods.
 * - Priority: SysTick is the highest configurable priority and USART1 below it, so the watchdog
 *   also catches a core stuck in the USART handler (the livelock of issue 11) -- slowly: virtual
 *   time crawls while the core re-enters a handler (52 s of real time, measured), so on QEMU the
 *   host's emulator restart usually comes first.
 */
#define WATCHDOG_PERIOD_TICKS (TME_PORT_CLOCK_HZ / 1000U * 80U) /* 80 ms of the 168 MHz clock */
#define WATCHDOG_EXPIRIES 3U
#define PRIORITY_WATCHDOG 0x00U
#define PRIORITY_USART1 0x80U
_Static_assert(WATCHDOG_PERIOD_TICKS - 1U <= SYST_RVR_MAX, "SysTick reload is 24 bits");

static volatile uint32_t board_watchdog_expiries;

void tme_board_uart_irq(void)
{
    if ((USART1_SR & (USART_SR_RXNE | USART_SR_ORE)) == USART_SR_ORE) {
        (void)USART1_DR; /* reading SR then DR clears ORE (real F405; QEMU never sets it) */
        return;
    }
    tme_uart_rx_isr();
}

int tme_board_rx_ready(void)
{
    return (USART1_SR & USART_SR_RXNE) != 0U;
}

uint8_t tme_board_rx_take(void)
{
    return (uint8_t)USART1_DR;
}

/* Both levels, see boards/common/tme_uart_rx.h: QEMU 7.2 keeps the line high after RXNEIE is cleared. */
void tme_board_rx_mask(void)
{
    USART1_CR1 &= ~USART_CR1_RXNEIE;
    cm4_nvic_disable_irq(TME_BOARD_UART_IRQN);
}

void tme_board_rx_unmask(void)
{
    USART1_CR1 |= USART_CR1_RXNEIE; /* QEMU raises the line again here if a byte waits */
    cm4_nvic_enable_irq(TME_BOARD_UART_IRQN);
}

void tme_board_systick_irq(void)
{
#if TME_PORT_HAVE_WATCHDOG
    board_watchdog_expiries++;
    if (board_watchdog_expiries >= WATCHDOG_EXPIRIES) {
        cm4_system_reset();
    }
#endif
}

#if TME_PORT_HAVE_WATCHDOG
void tme_port_watchdog_kick(void)
{
    board_watchdog_expiries = 0U;
    SYST_CVR = 0U;
}

static void board_watchdog_init(void)
{
    SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFU) | ((uint32_t)PRIORITY_WATCHDOG << 24);
    SYST_RVR = WATCHDOG_PERIOD_TICKS - 1U;
    SYST_CVR = 0U;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}
#endif

void tme_port_init(void)
{
    /* QEMU needs no RCC clock enable and no BRR; receiving needs UE and RE, or QEMU drops the
     * bytes. Bytes sent by the host before this point are lost (the host pings until answered). */
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    cm4_nvic_set_priority(TME_BOARD_UART_IRQN, PRIORITY_USART1);
    cm4_nvic_enable_irq(TME_BOARD_UART_IRQN);

    /* Free-running 32-bit up-counter: no prescaler, full-range auto-reload. */
    TIM2_PSC = 0U;
    TIM2_ARR = 0xFFFFFFFFU;
    TIM2_EGR = TIM_EGR_UG;
    TIM2_CR1 = TIM_CR1_CEN;
#if TME_PORT_HAVE_WATCHDOG
    board_watchdog_init();
#endif
}

void tme_port_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0U; i < len; i++) {
        /* QEMU transmits synchronously inside the DR write, so TXE always reads 1 there (and TXE /
         * TC interrupts never fire); the wait keeps the code right for a real UART. */
        while ((USART1_SR & USART_SR_TXE) == 0U) {
        }
        USART1_DR = data[i];
    }
}
