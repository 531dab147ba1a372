/* "Board" for compiling the core on the host (fuzz and protocol tests): no hardware at all. */
#ifndef TME_BOARD_H
#define TME_BOARD_H

#include <stdint.h>

#define TME_PORT_BOARD_NAME "host"
#define TME_PORT_CLOCK_HZ 0U
#define TME_PORT_COUNTER_UNIT TME_COUNTER_UNIT_INSTRUCTIONS
/* Advances by TME_HOST_COUNTER_STEP per read, so every timed inference reports exactly that. */
#define TME_HOST_COUNTER_STEP 1000U
uint32_t tme_host_counter_read(void);
#define TME_PORT_COUNTER_READ() tme_host_counter_read()
/* One tick per microsecond, so the text dialect's m-lap-us values are the raw counter. */
#define TME_PORT_COUNTER_HZ 1000000U

#endif /* TME_BOARD_H */
