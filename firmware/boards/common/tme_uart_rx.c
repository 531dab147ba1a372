#include "tme_uart_rx.h"

#include "tme_ring.h"

static tme_ring_t tme_uart_rx_ring;
/* 1 while the receive interrupt is masked because the ring was full (see the header). */
static volatile uint8_t tme_uart_rx_masked;

void tme_uart_rx_isr(void)
{
    if (tme_board_rx_ready() == 0) {
        return;
    }
    if (tme_ring_full(&tme_uart_rx_ring)) {
        tme_board_rx_mask();
        tme_uart_rx_masked = 1U;
        return;
    }
    tme_ring_push(&tme_uart_rx_ring, tme_board_rx_take());
}

size_t tme_uart_rx_read(uint8_t *buffer, size_t capacity)
{
    size_t n = tme_ring_pop(&tme_uart_rx_ring, buffer, capacity);
    if ((n > 0U) && (tme_uart_rx_masked != 0U)) {
        tme_uart_rx_masked = 0U;
        tme_board_rx_unmask();
    }
    return n;
}

int tme_uart_rx_empty(void)
{
    return tme_ring_empty(&tme_uart_rx_ring);
}
