/*
 * APP=measure: one line per embedded input over semihosting, "out <ticks, 8 hex digits> <output
 * bytes in hex>", then SYS_EXIT. Ticks are counter ticks of the board (on QEMU with -icount
 * shift=0: instructions) of tme_model_invoke() alone: the call and the two counter reads are
 * measured with an empty call and subtracted.
 */
#include <string.h>

#include "model.h"
#include "tme_measure.h"
#include "tme_port.h"

#define SEMIHOST_SYS_WRITE0 0x04
#define SEMIHOST_SYS_EXIT 0x18
#define SEMIHOST_ADP_STOPPED_APPLICATION_EXIT 0x20026U
#define MEASURE_MAX_OUTPUT_BYTES 4096U

_Static_assert(TME_MODEL_OUTPUT_BYTES <= MEASURE_MAX_OUTPUT_BYTES, "output too large for the report line");

static char measure_line[2U * MEASURE_MAX_OUTPUT_BYTES + 64U];

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static char *hex_byte(char *p, uint8_t v)
{
    *p++ = "0123456789abcdef"[v >> 4];
    *p++ = "0123456789abcdef"[v & 0xFU];
    return p;
}

/* noipa: both stay real calls through timed(), so their difference is the model alone. */
__attribute__((noipa)) static void run_model(void)
{
    tme_model_invoke();
}

__attribute__((noipa)) static void run_empty(void)
{
    __asm__ volatile("" ::: "memory");
}

/* noipa: one copy of the timed region for both calls. Inlined, each copy got its own register
 * allocation, and a spill scheduled between the reads of one copy shifted the count by one. */
__attribute__((noipa)) static uint32_t timed(void (*fn)(void))
{
    __asm__ volatile("" ::: "memory");
    const uint32_t t0 = TME_PORT_COUNTER_READ();
    __asm__ volatile("" ::: "memory");
    fn();
    __asm__ volatile("" ::: "memory");
    const uint32_t t1 = TME_PORT_COUNTER_READ();
    __asm__ volatile("" ::: "memory");
    return t1 - t0;
}

static void report(uint32_t ticks)
{
    char *p = measure_line;
    memcpy(p, "out ", 4U);
    p += 4;
    for (int shift = 24; shift >= 0; shift -= 8) {
        p = hex_byte(p, (uint8_t)(ticks >> shift));
    }
    *p++ = ' ';
    const uint8_t *out = (const uint8_t *)tme_model_output();
    for (uint32_t k = 0U; k < TME_MODEL_OUTPUT_BYTES; ++k) {
        p = hex_byte(p, out[k]);
    }
    *p++ = '\n';
    *p = '\0';
    (void)semihost(SEMIHOST_SYS_WRITE0, measure_line);
}

int main(void)
{
    tme_port_init();
    const uint32_t overhead = timed(run_empty);
    for (uint32_t i = 0U; i < tme_n_inputs; ++i) {
        memcpy(tme_model_input(), tme_inputs + (i * TME_MODEL_INPUT_BYTES), TME_MODEL_INPUT_BYTES);
        report(timed(run_model) - overhead);
    }
    (void)semihost(SEMIHOST_SYS_EXIT, (const void *)SEMIHOST_ADP_STOPPED_APPLICATION_EXIT);
    return 0;
}
