/* Runs the model once and measures it with the board's counter (cycles or instructions). */
#ifndef TME_RUNNER_H
#define TME_RUNNER_H

#include <stdint.h>

/*
 * Calls tme_model_invoke() between two reads of TME_PORT_COUNTER_READ() and returns the
 * difference modulo 2^32 (one counter wrap during the call is harmless). The figure includes the
 * call into a non-inlined wrapper and one counter read: a handful of instructions, constant for
 * a given build.
 */
uint32_t tme_runner_invoke_timed(void);

#endif /* TME_RUNNER_H */
