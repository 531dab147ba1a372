/*
 * The vector table both ports share: exceptions 0..15, then IRQ 0..TME_BOARD_UART_IRQN (the
 * board's UART, the highest IRQ used). IRQs that are never enabled in the NVIC cannot be taken,
 * so their slots stay 0. The board provides tme_board_uart_irq() and, if it uses SysTick,
 * tme_board_systick_irq() (the default stops, like any unexpected exception).
 */
#include "cm4.h"
#include "tme_board.h"

#ifndef TME_BOARD_UART_IRQN
#error "tme_board.h must define TME_BOARD_UART_IRQN, the UART's IRQ number (vector 16 + n)"
#endif

__attribute__((weak)) void tme_board_systick_irq(void)
{
    cm4_default_handler();
}

__attribute__((section(".isr_vector"), used))
const cm4_vector_t tme_board_vectors[CM4_VECTOR_IRQ(TME_BOARD_UART_IRQN) + 1U] = {
    [0] = (cm4_vector_t)(uintptr_t)&_estack,
    [1] = cm4_reset_handler,
    [2] = cm4_default_handler, /* NMI */
    [3] = cm4_fault_handler,   /* HardFault */
    [4] = cm4_fault_handler,   /* MemManage */
    [5] = cm4_fault_handler,   /* BusFault */
    [6] = cm4_fault_handler,   /* UsageFault */
    [11] = cm4_default_handler, /* SVCall */
    [12] = cm4_default_handler, /* DebugMonitor */
    [14] = cm4_default_handler, /* PendSV */
    [15] = tme_board_systick_irq,
    [CM4_VECTOR_IRQ(TME_BOARD_UART_IRQN)] = tme_board_uart_irq,
};
