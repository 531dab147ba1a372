/*
 * The porting layer: everything the board-independent core needs from a board, in one place.
 * A port lives in firmware/boards/<board>/ and provides
 *
 *   tme_board.h  configuration macros (below), found through the include path -I boards/<board>;
 *   *.c          the hook functions declared below, the startup code and the vector table.
 *
 * REQUIRED configuration (tme_board.h) -- a missing one stops the build with #error:
 *   TME_PORT_BOARD_NAME       string reported by IDENTIFY, e.g. "b_l475e_iot01a"
 *   TME_PORT_CLOCK_HZ         core clock the port configures, in Hz
 *   TME_PORT_COUNTER_UNIT     TME_COUNTER_UNIT_CYCLES or TME_COUNTER_UNIT_INSTRUCTIONS
 *   TME_PORT_COUNTER_READ()   expression giving the free-running 32-bit counter as uint32_t;
 *                             a macro rather than a function so that the timed region holds
 *                             nothing but a load (no call / return around it)
 * REQUIRED functions -- a missing one fails the link with "undefined reference to tme_port_...":
 *   tme_port_init, tme_port_uart_write, tme_port_uart_read
 * OPTIONAL:
 *   TME_PORT_HAVE_IDLE 1      the board implements tme_port_idle(); without it the main loop
 *                             busy-polls tme_port_uart_read().
 *   TME_PORT_COUNTER_HZ       counter ticks per second, for the text dialect's microsecond
 *                             timestamps (m-lap-us); defaults to TME_PORT_CLOCK_HZ (a cycle counter).
 *   TME_PORT_HAVE_WATCHDOG 1  the board starts a watchdog in tme_port_init() and implements
 *                             tme_port_watchdog_kick(), which the main loop calls on every pass
 *                             (and the text dialect after every inference). A board that stops
 *                             being kicked resets and sends BOOT; the host then resumes.
 *                             A test build may pass -DTME_PORT_HAVE_WATCHDOG=0.
 */
#ifndef TME_PORT_H
#define TME_PORT_H

#include <stddef.h>
#include <stdint.h>

/* Values of TME_PORT_COUNTER_UNIT; they travel in the IDENTIFY reply (PROTOCOL.md §4.1). */
#define TME_COUNTER_UNIT_CYCLES 0U
#define TME_COUNTER_UNIT_INSTRUCTIONS 1U

#include "tme_board.h"

#ifndef TME_PORT_BOARD_NAME
#error "tme_board.h must define TME_PORT_BOARD_NAME, the board name string reported by IDENTIFY"
#endif
#ifndef TME_PORT_CLOCK_HZ
#error "tme_board.h must define TME_PORT_CLOCK_HZ, the core clock in Hz"
#endif
#ifndef TME_PORT_COUNTER_UNIT
#error "tme_board.h must define TME_PORT_COUNTER_UNIT (TME_COUNTER_UNIT_CYCLES or _INSTRUCTIONS)"
#endif
#if (TME_PORT_COUNTER_UNIT != TME_COUNTER_UNIT_CYCLES) && \
    (TME_PORT_COUNTER_UNIT != TME_COUNTER_UNIT_INSTRUCTIONS)
#error "TME_PORT_COUNTER_UNIT must be TME_COUNTER_UNIT_CYCLES or TME_COUNTER_UNIT_INSTRUCTIONS"
#endif
#ifndef TME_PORT_COUNTER_READ
#error "tme_board.h must define TME_PORT_COUNTER_READ(), reading the free-running 32-bit counter"
#endif
#ifndef TME_PORT_HAVE_IDLE
#define TME_PORT_HAVE_IDLE 0
#endif
#ifndef TME_PORT_HAVE_WATCHDOG
#define TME_PORT_HAVE_WATCHDOG 0
#endif
#ifndef TME_PORT_COUNTER_HZ
#define TME_PORT_COUNTER_HZ TME_PORT_CLOCK_HZ
#endif
#if (TME_PORT_COUNTER_HZ) == 0
#error "TME_PORT_COUNTER_HZ (or TME_PORT_CLOCK_HZ) must be > 0: the counter's ticks per second"
#endif

/* Clocks, UART (with its receive interrupt), the counter. Called once, first thing in main(). */
void tme_port_init(void);

/* Blocks until all `len` bytes are handed to the UART. */
void tme_port_uart_write(const uint8_t *data, size_t len);

/* Never blocks: copies up to `capacity` received bytes into `buffer`, returns how many. */
size_t tme_port_uart_read(uint8_t *buffer, size_t capacity);

#if TME_PORT_HAVE_IDLE
/* Sleeps until an interrupt may have delivered a byte; returns at once if one is waiting. */
void tme_port_idle(void);
#endif

#if TME_PORT_HAVE_WATCHDOG
/* Proof of life: restarts the watchdog's count-down. Cheap (one or two stores). */
void tme_port_watchdog_kick(void);
#else
static inline void tme_port_watchdog_kick(void)
{
}
#endif

#endif /* TME_PORT_H */
