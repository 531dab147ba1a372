/* Porting-layer functions (core/tme_port.h) that are the same on every Cortex-M4 port. */
#include "cm4.h"
#include "tme_port.h"
#include "tme_uart_rx.h"

size_t tme_port_uart_read(uint8_t *buffer, size_t capacity)
{
    return tme_uart_rx_read(buffer, capacity);
}

#if TME_PORT_HAVE_IDLE
void tme_port_idle(void)
{
    cm4_disable_irq();
    if (tme_uart_rx_empty()) {
        cm4_wfi(); /* a byte arriving between the check and here still wakes it (see cm4_wfi) */
    }
    cm4_enable_irq();
}
#endif
