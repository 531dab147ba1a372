/* Board-independent main loop: receive, answer, sleep. */
#include "tme_app.h"
#include "tme_port.h"

/* Bytes moved from the receive ring per pass; any size works, this keeps the stack small. */
#define TME_MAIN_CHUNK_BYTES 64U

static void tme_main_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    tme_port_uart_write(data, len);
}

int main(void)
{
    uint8_t chunk[TME_MAIN_CHUNK_BYTES];

    tme_port_init();
    tme_app_init(tme_main_write, NULL);
    tme_app_send_boot();
    for (;;) {
        /* Every pass, also after an idle wake-up: only a main loop that is stuck misses it. */
        tme_port_watchdog_kick();
        size_t received = tme_port_uart_read(chunk, sizeof chunk);
        if (received > 0U) {
            tme_app_feed(chunk, received);
        } else {
#if TME_PORT_HAVE_IDLE
            tme_port_idle();
#endif
        }
    }
}
