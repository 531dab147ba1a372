/*
 * Port for the B-L475E-IOT01A (STM32L475VG). Register-level, no vendor HAL; register and bit names
 * as in RM0351 (STM32L4x5/L4x6 reference manual). Not testable in CI: review against RM0351.
 */
#include "cm4.h"
#include "tme_port.h"
#include "tme_uart_rx.h"

/* Embedded flash memory interface (RM0351, FLASH registers) */
#define FLASH_ACR CM4_REG(0x40022000U)
#define FLASH_ACR_LATENCY_Msk (7U << 0)
#define FLASH_ACR_LATENCY_4WS (4U << 0)
#define FLASH_ACR_PRFTEN (1U << 8)
#define FLASH_ACR_ICEN (1U << 9)
#define FLASH_ACR_DCEN (1U << 10)

/* Reset and clock control (RM0351, RCC registers) */
#define RCC_BASE 0x40021000U
#define RCC_CR CM4_REG(RCC_BASE + 0x00U)
#define RCC_CFGR CM4_REG(RCC_BASE + 0x08U)
#define RCC_PLLCFGR CM4_REG(RCC_BASE + 0x0CU)
#define RCC_AHB2ENR CM4_REG(RCC_BASE + 0x4CU)
#define RCC_APB2ENR CM4_REG(RCC_BASE + 0x60U)
#define RCC_CR_PLLON (1U << 24)
#define RCC_CR_PLLRDY (1U << 25)
#define RCC_CFGR_SW_Msk (3U << 0)
#define RCC_CFGR_SW_PLL (3U << 0)
#define RCC_CFGR_SWS_Msk (3U << 2)
#define RCC_CFGR_SWS_PLL (3U << 2)
#define RCC_PLLCFGR_PLLSRC_MSI (1U << 0)
#define RCC_PLLCFGR_PLLM_Pos 4U  /* division factor M = PLLM + 1 */
#define RCC_PLLCFGR_PLLN_Pos 8U
#define RCC_PLLCFGR_PLLREN (1U << 24)
#define RCC_PLLCFGR_PLLR_Pos 25U /* 0: /2, 1: /4, 2: /6, 3: /8 */
#define RCC_AHB2ENR_GPIOBEN (1U << 1)
#define RCC_APB2ENR_USART1EN (1U << 14)

/* GPIO port B (RM0351, GPIO registers) */
#define GPIOB_BASE 0x48000400U
#define GPIOB_MODER CM4_REG(GPIOB_BASE + 0x00U)
#define GPIOB_OSPEEDR CM4_REG(GPIOB_BASE + 0x08U)
#define GPIOB_PUPDR CM4_REG(GPIOB_BASE + 0x0CU)
#define GPIOB_AFRL CM4_REG(GPIOB_BASE + 0x20U)
#define GPIO_MODER_ALTERNATE 2U
#define GPIO_OSPEEDR_HIGH 2U
#define GPIO_PUPDR_PULLUP 1U
#define GPIO_AF7_USART1 7U

/* USART1 (RM0351, USART registers); the L4 USART has separate ISR/ICR/RDR/TDR registers, unlike the F4. */
#define USART1_BASE 0x40013800U
#define USART1_CR1 CM4_REG(USART1_BASE + 0x00U)
#define USART1_BRR CM4_REG(USART1_BASE + 0x0CU)
#define USART1_ISR CM4_REG(USART1_BASE + 0x1CU)
#define USART1_ICR CM4_REG(USART1_BASE + 0x20U)
#define USART1_RDR CM4_REG(USART1_BASE + 0x24U)
#define USART1_TDR CM4_REG(USART1_BASE + 0x28U)
#define USART_CR1_UE (1U << 0)
#define USART_CR1_RE (1U << 2)
#define USART_CR1_TE (1U << 3)
#define USART_CR1_RXNEIE (1U << 5)
#define USART_ISR_ORE (1U << 3)
#define USART_ISR_RXNE (1U << 5)
#define USART_ISR_TXE (1U << 7)
#define USART_ICR_ORECF (1U << 3)

/* Debug MCU configuration register (RM0351, DBGMCU) */
#define DBGMCU_CR CM4_REG(0xE0042004U)
#define DBGMCU_CR_DBG_SLEEP (1U << 0)
#define DBGMCU_APB1FZR1 CM4_REG(0xE0042008U)
#define DBGMCU_APB1FZR1_DBG_IWDG_STOP (1U << 12)

/* Independent watchdog (RM0351, IWDG): clocked by the LSI RC (32 kHz), runs on in any fault. */
#define IWDG_BASE 0x40003000U
#define IWDG_KR CM4_REG(IWDG_BASE + 0x00U)
#define IWDG_PR CM4_REG(IWDG_BASE + 0x04U)
#define IWDG_RLR CM4_REG(IWDG_BASE + 0x08U)
#define IWDG_SR CM4_REG(IWDG_BASE + 0x0CU)
#define IWDG_KEY_START 0xCCCCU  /* starts the watchdog (and the LSI) */
#define IWDG_KEY_UNLOCK 0x5555U /* write access to PR and RLR */
#define IWDG_KEY_RELOAD 0xAAAAU /* the kick: counter back to RLR */
#define IWDG_PR_DIV64 4U        /* 32 kHz / 64 = 500 Hz */
#define IWDG_RLR_2S 999U        /* 1000 ticks of 2 ms; RLR is 12 bits */
#define IWDG_SR_UPDATING 7U     /* PVU | RVU | WVU */

#define BOARD_BAUD 115200U



/*
 * SYSCLK = 80 MHz from MSI through the main PLL. After reset the core runs from MSI at 4 MHz
 * (MSIRANGE from RCC_CSR.MSISRANGE = 6) in voltage range 1, which 80 MHz requires, so PWR is left
 * alone. PLL: 4 MHz / M(1) = 4 MHz VCO input (4..16 MHz allowed), x N(40) = 160 MHz VCO output
 * (64..344 MHz), / R(2) = 80 MHz on PLLCLK. AHB, APB1, APB2 prescalers stay at /1.
 * MSI is an RC oscillator (about +-1 % after factory trim): good enough for a UART, not for a
 * clock. Its LSE-locked mode (MSIPLLEN) would need the backup domain unlocked; not done here.
 */
static void board_clock_init(void)
{
    /* Wait states first: flash must be slow enough for the new clock before the switch (4 WS for
     * 64 < HCLK <= 80 MHz in range 1, RM0351 table "Number of wait states according to CPU clock
     * (HCLK) frequency"), and the new setting is in effect only once it reads back. Prefetch and
     * both caches recover most of what the wait states cost. */
    FLASH_ACR = FLASH_ACR_LATENCY_4WS | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_Msk) != FLASH_ACR_LATENCY_4WS) {
    }

    /* PLLCFGR may only be written while the PLL is off (it is, after reset). */
    RCC_PLLCFGR = RCC_PLLCFGR_PLLSRC_MSI | (0U << RCC_PLLCFGR_PLLM_Pos) | (40U << RCC_PLLCFGR_PLLN_Pos) |
                  (0U << RCC_PLLCFGR_PLLR_Pos) | RCC_PLLCFGR_PLLREN;
    RCC_CR |= RCC_CR_PLLON;
    while ((RCC_CR & RCC_CR_PLLRDY) == 0U) {
    }

    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_Msk) | RCC_CFGR_SW_PLL;
    while ((RCC_CFGR & RCC_CFGR_SWS_Msk) != RCC_CFGR_SWS_PLL) {
    }
}

/* USART1 on PB6 (TX) / PB7 (RX), alternate function 7: the ST-LINK virtual COM port. */
static void board_uart_init(void)
{
    RCC_AHB2ENR |= RCC_AHB2ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    /* A peripheral's registers are accessible only two clock cycles after its clock is enabled
     * (RM0351, RCC chapter); reading the enable register back provides the delay. */
    (void)RCC_APB2ENR;

    /* GPIOB_MODER resets to analog mode (0b11) for most pins: clear both bits before setting AF. */
    GPIOB_MODER = (GPIOB_MODER & ~((3U << (6U * 2U)) | (3U << (7U * 2U)))) |
                  (GPIO_MODER_ALTERNATE << (6U * 2U)) | (GPIO_MODER_ALTERNATE << (7U * 2U));
    GPIOB_OSPEEDR = (GPIOB_OSPEEDR & ~((3U << (6U * 2U)) | (3U << (7U * 2U)))) |
                    (GPIO_OSPEEDR_HIGH << (6U * 2U)) | (GPIO_OSPEEDR_HIGH << (7U * 2U));
    /* Pull-up on RX so the line idles high (no false start bits) if the ST-LINK side floats. */
    GPIOB_PUPDR = (GPIOB_PUPDR & ~(3U << (7U * 2U))) | (GPIO_PUPDR_PULLUP << (7U * 2U));
    GPIOB_AFRL = (GPIOB_AFRL & ~((0xFU << (6U * 4U)) | (0xFU << (7U * 4U)))) |
                 (GPIO_AF7_USART1 << (6U * 4U)) | (GPIO_AF7_USART1 << (7U * 4U));

    /* 8N1 is the reset configuration (M1:M0 = 00, no parity, CR2.STOP = 00). The kernel clock is
     * PCLK2 = 80 MHz (RCC_CCIPR.USART1SEL = 00 after reset). With 16x oversampling
     * BRR = f_ck / baud = 694 (115 274 baud, +0.06 %). BRR is writable only while UE = 0. */
    USART1_BRR = (TME_PORT_CLOCK_HZ + (BOARD_BAUD / 2U)) / BOARD_BAUD;
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    cm4_nvic_enable_irq(TME_BOARD_UART_IRQN);
}

void tme_board_uart_irq(void)
{
    if ((USART1_ISR & USART_ISR_ORE) != 0U) {
        /* An overrun also raises this interrupt (RXNEIE enables it) and ORE stays set until it is
         * cleared through ICR: without this the handler would be re-entered forever. The lost
         * byte shows up as a CRC error in the protocol, and the host retries. */
        USART1_ICR = USART_ICR_ORECF;
    }
    tme_uart_rx_isr();
}

int tme_board_rx_ready(void)
{
    return (USART1_ISR & USART_ISR_RXNE) != 0U;
}

uint8_t tme_board_rx_take(void)
{
    return (uint8_t)USART1_RDR;
}

/*
 * Ring full (boards/common/tme_uart_rx.h): on the L4 clearing RXNEIE drops the request, but the
 * NVIC is masked too, so the port cannot livelock whatever the USART does. The host waits for
 * each reply, so this happens only with a misbehaving host; the next byte then overruns and the
 * frame fails its CRC.
 */
void tme_board_rx_mask(void)
{
    USART1_CR1 &= ~USART_CR1_RXNEIE;
    cm4_nvic_disable_irq(TME_BOARD_UART_IRQN);
}

void tme_board_rx_unmask(void)
{
    USART1_CR1 |= USART_CR1_RXNEIE;
    cm4_nvic_enable_irq(TME_BOARD_UART_IRQN);
}

/*
 * IWDG, sequence of RM0351 "Configuring the IWDG when the window option is disabled": start,
 * unlock, prescaler, reload, wait until SR reads 0, reload the counter. A reset after 2 s without
 * a kick (the LSI varies by about +-10 %): far above one inference (the course document's
 * ~14 M cycles for its CNN are 0.18 s at 80 MHz), and below the host's request timeout (5 s), so
 * the host sees BOOT before it gives up on the request.
 * Stopped while a debugger halts the core. Once started, the IWDG cannot be stopped until reset.
 */
#if TME_PORT_HAVE_WATCHDOG
static void board_watchdog_init(void)
{
    DBGMCU_APB1FZR1 |= DBGMCU_APB1FZR1_DBG_IWDG_STOP;
    IWDG_KR = IWDG_KEY_START;
    IWDG_KR = IWDG_KEY_UNLOCK;
    IWDG_PR = IWDG_PR_DIV64;
    IWDG_RLR = IWDG_RLR_2S;
    while ((IWDG_SR & IWDG_SR_UPDATING) != 0U) {
    }
    IWDG_KR = IWDG_KEY_RELOAD;
}

void tme_port_watchdog_kick(void)
{
    IWDG_KR = IWDG_KEY_RELOAD;
}
#endif

void tme_port_init(void)
{
    board_clock_init();
    board_uart_init();
#if TME_PORT_HAVE_WATCHDOG
    board_watchdog_init();
#endif

    /* DWT CYCCNT: TRCENA powers the DWT unit; the Cortex-M4 needs no lock-access (LAR) unlock,
     * unlike the M7. A debugger may also set TRCENA; setting it twice is harmless. */
    CoreDebug_DEMCR |= CoreDebug_DEMCR_TRCENA;
    DWT_CYCCNT = 0U;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;

    /* Keep the debug port clocked during WFI, so st-flash / openocd can still attach while the
     * firmware idles (costs a little power in sleep, irrelevant here). */
    DBGMCU_CR |= DBGMCU_CR_DBG_SLEEP;
}

void tme_port_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0U; i < len; i++) {
        while ((USART1_ISR & USART_ISR_TXE) == 0U) {
        }
        USART1_TDR = data[i];
    }
}
