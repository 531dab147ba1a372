/*
 * Host test of the shared UART receive path (boards/common/tme_uart_rx.c) against a model of
 * QEMU 7.2's STM32F2xx USART and the Cortex-M NVIC, with the ring full again and again.
 *
 *   rx_sim SEED BYTES     exit 0: every byte arrived once, in order; exit 3: livelock detected
 *
 * The USART model follows hw/char/stm32f2xx_usart.c (7.2): a byte is accepted only while RXNE is
 * clear; receiving raises the line if RXNEIE is set; reading DR clears RXNE and lowers the line;
 * a CR1 write raises the line if RXNEIE and RXNE are set and never lowers it. The NVIC takes a
 * level-sensitive interrupt whenever the line is high (or it is pending) and the IRQ is enabled.
 * Built with -DRX_SIM_MASK_RXNEIE_ONLY the board's mask hook leaves the NVIC alone, as the port
 * did before: the simulation must then report the livelock (so this test can fail).
 */
#include <stdio.h>
#include <stdlib.h>

#include "tme_uart_rx.h"

#define SIM_MAX_HANDLER_RUNS 1000U /* in a row without the main loop running: a livelock */

static struct {
    uint8_t dr;
    int rxne;
    int rxneie;
    int line;
} usart = {0, 0, 1, 0};

static struct {
    int enabled;
    int pending;
} nvic = {1, 0};

static uint64_t rng;
static unsigned long mask_events;

static uint32_t sim_rand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1DULL) >> 32);
}

int tme_board_rx_ready(void)
{
    return usart.rxne;
}

uint8_t tme_board_rx_take(void)
{
    usart.rxne = 0;
    usart.line = 0;
    return usart.dr;
}

static void usart_write_cr1(int rxneie)
{
    usart.rxneie = rxneie;
    if (usart.rxneie && usart.rxne) {
        usart.line = 1;
    }
}

void tme_board_rx_mask(void)
{
    mask_events++;
    usart_write_cr1(0);
#ifndef RX_SIM_MASK_RXNEIE_ONLY
    nvic.enabled = 0;
#endif
}

void tme_board_rx_unmask(void)
{
    usart_write_cr1(1);
    nvic.enabled = 1;
}

/* The host side of the chardev: offers the next byte when the USART can take it. */
static int usart_receive(uint8_t byte)
{
    if (usart.rxne) {
        return 0;
    }
    usart.dr = byte;
    usart.rxne = 1;
    if (usart.rxneie) {
        usart.line = 1;
    }
    return 1;
}

/* Takes the interrupt as often as the NVIC would before the main loop gets the core back. */
static void cpu_take_interrupts(void)
{
    unsigned runs = 0U;
    for (;;) {
        nvic.pending |= usart.line;
        if (!(nvic.enabled && nvic.pending)) {
            return;
        }
        nvic.pending = 0;
        tme_uart_rx_isr();
        if (++runs > SIM_MAX_HANDLER_RUNS) {
            printf("livelock: %u handler runs in a row, line %d, RXNEIE %d, NVIC enabled %d\n", runs,
                   usart.line, usart.rxneie, nvic.enabled);
            exit(3);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SEED BYTES\n", argv[0]);
        return 2;
    }
    rng = strtoull(argv[1], NULL, 0) * 0x9E3779B97F4A7C15ULL + 1U;
    unsigned long total = strtoul(argv[2], NULL, 0);
    unsigned long sent = 0U, received = 0U, steps = 0U;
    while (received < total) {
        if (++steps > 100U * total + 100000U) {
            printf("stalled: %lu of %lu bytes received\n", received, total);
            return 4;
        }
        /* The host is often faster than the main loop: several bytes per step. */
        for (uint32_t burst = sim_rand() % 8U; burst > 0U && sent < total; burst--) {
            if (usart_receive((uint8_t)(sent * 7U + 3U))) {
                sent++;
            }
            cpu_take_interrupts();
        }
        /* Main loop: often busy (an inference), sometimes reads a chunk of up to 64 bytes. */
        if (sim_rand() % 16U != 0U) {
            continue;
        }
        uint8_t chunk[64];
        size_t n = tme_uart_rx_read(chunk, 1U + sim_rand() % sizeof chunk);
        for (size_t i = 0U; i < n; i++, received++) {
            if (chunk[i] != (uint8_t)(received * 7U + 3U)) {
                printf("byte %lu is 0x%02x, expected 0x%02x\n", received, chunk[i],
                       (uint8_t)(received * 7U + 3U));
                return 1;
            }
        }
        cpu_take_interrupts(); /* an unmask may pend the interrupt at once */
    }
    printf("received=%lu mask_events=%lu\n", received, mask_events);
    return 0;
}
