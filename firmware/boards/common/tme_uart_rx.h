/*
 * Interrupt-driven UART receive path shared by the board ports: the receive interrupt moves bytes
 * into a ring (core/tme_ring.h), the main loop takes them out with tme_uart_rx_read().
 *
 * Ring full: the byte is left in the UART's data register and the receive interrupt is masked at
 * BOTH levels, in the peripheral (RXNEIE) and in the NVIC (ICER), until the main loop has made
 * room; then both are unmasked. The sender is held back meanwhile (QEMU offers the next byte only
 * once the data register was read; a real UART overruns, and the protocol's CRC catches it).
 *
 * Why the NVIC too: QEMU 7.2's STM32F2xx USART (hw/char/stm32f2xx_usart.c) lowers its interrupt
 * line only when DR is read; a CR1 write can only raise it (stm32f2xx_usart_write, case
 * USART_CR1: qemu_set_irq(irq, 1) if RXNEIE and RXNE, nothing otherwise). With RXNEIE cleared
 * alone the level-sensitive line stays high, the NVIC pends the interrupt again as soon as the
 * handler returns, and the core never leaves handler mode: the main loop that would make room
 * never runs (a livelock: QEMU at 100 % CPU in the USART handler). The NVIC mask stops the
 * interrupt whatever the line does; its pending bit survives, so the handler runs again right
 * after the unmask and finds the byte still waiting. On a real STM32 clearing RXNEIE lowers the
 * request by itself; the extra NVIC mask costs two stores per full ring.
 *
 * No locks: the handler is the only writer of the ring's head and of `masked` = 1, the main loop
 * the only writer of the tail and of `masked` = 0, and the main loop touches the mask only while
 * the interrupt is masked (so the handler cannot run in between).
 */
#ifndef TME_UART_RX_H
#define TME_UART_RX_H

#include <stddef.h>
#include <stdint.h>

/* Board hooks, register level (boards/<board>/board.c). */
int tme_board_rx_ready(void);     /* a received byte waits in the data register */
uint8_t tme_board_rx_take(void);  /* reads it, which clears the ready flag */
void tme_board_rx_mask(void);     /* receive interrupt off: RXNEIE, then NVIC ICER */
void tme_board_rx_unmask(void);   /* receive interrupt on: RXNEIE, then NVIC ISER */

/* Body of the UART receive interrupt handler, after the board cleared its error flags. */
void tme_uart_rx_isr(void);

/* Main loop: up to `capacity` received bytes, never blocks; unmasks the interrupt once there is room. */
size_t tme_uart_rx_read(uint8_t *buffer, size_t capacity);

/* Main loop, with interrupts disabled: nothing received is waiting. */
int tme_uart_rx_empty(void);

#endif /* TME_UART_RX_H */
