/*
 * Output and time of the MLPerf Tiny runner dialect (tme_mlperf.c): reply text through the write
 * callback, and the microsecond clock of its m-lap-us lines.
 */
#include "tme_mlperf_io.h"

#include "tme_fmt.h"
#include "tme_port.h"

static struct {
    tme_proto_write_fn write;
    void *ctx;
    uint32_t micros;     /* time in microseconds (see tme_mlperf_clock) */
    uint32_t ticks_left; /* counter ticks not yet worth a whole microsecond */
    uint32_t last_count; /* counter value at the last update */
} tme_mlperf_io;

void tme_mlperf_io_init(tme_proto_write_fn write, void *ctx)
{
    tme_mlperf_io.write = write;
    tme_mlperf_io.ctx = ctx;
    tme_mlperf_io.micros = 0U;
    tme_mlperf_io.ticks_left = 0U;
    tme_mlperf_io.last_count = TME_PORT_COUNTER_READ();
}

void tme_mlperf_put(const char *text, size_t len)
{
    tme_mlperf_io.write(tme_mlperf_io.ctx, (const uint8_t *)text, len);
}

/*
 * Local strlen / strcmp: newlib-nano's are 1 KB together, and strlen is aligned to 64 bytes, which
 * leaves a gap in the flash image. GCC turns a plain length loop back into a strlen call at -O3
 * (loop distribution), hence the attribute.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define TME_MLPERF_NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define TME_MLPERF_NO_LIBCALL
#endif

TME_MLPERF_NO_LIBCALL size_t tme_mlperf_length(const char *text)
{
    size_t n = 0U;
    while (text[n] != '\0') {
        n++;
    }
    return n;
}

int tme_mlperf_differ(const char *a, const char *b)
{
    while ((*a != '\0') && (*a == *b)) {
        a++;
        b++;
    }
    return *a != *b;
}

void tme_mlperf_puts(const char *text)
{
    tme_mlperf_put(text, tme_mlperf_length(text));
}

void tme_mlperf_line_end(void)
{
    tme_mlperf_put("\r\n", 2U);
}

void tme_mlperf_put_u32(uint32_t value)
{
    char text[TME_FMT_U32_CHARS];
    tme_mlperf_put(text, tme_fmt_u32(text, value));
}

void tme_mlperf_put_hex8(uint8_t value)
{
    char text[2];
    tme_mlperf_put(text, tme_fmt_hex8(text, value));
}

void tme_mlperf_put_fixed3(float value)
{
    char text[TME_FMT_FIXED3_CHARS];
    tme_mlperf_put(text, tme_fmt_fixed3(text, value));
}

void tme_mlperf_message(const char *prefix, uint32_t value)
{
    tme_mlperf_puts(prefix);
    tme_mlperf_put_u32(value);
    tme_mlperf_line_end();
}

void tme_mlperf_error(const char *text)
{
    tme_mlperf_puts("e-[");
    tme_mlperf_puts(text);
    tme_mlperf_puts("]");
    tme_mlperf_line_end();
}

/* --- time ------------------------------------------------------------------------------------ */

/*
 * Microseconds from the board counter, as a 32-bit count that wraps after 71 minutes like the
 * reference's `%lu` timestamps. Exact as long as it is called at least once per counter period
 * (53 s at 80 MHz; 4.3 s of emulated time on QEMU, where TIM2 counts at 1 GHz): the infer loop
 * calls it after every inference, so lap times within one command are right; between two
 * commands whole periods can be missed, which no MLPerf figure depends on.
 */
#define TME_MLPERF_TICKS_PER_US ((uint32_t)((TME_PORT_COUNTER_HZ) / 1000000U))
#if ((TME_PORT_COUNTER_HZ) % 1000000U) != 0U
#error "TME_PORT_COUNTER_HZ must be a whole number of MHz for the text dialect's microsecond clock"
#endif

uint32_t tme_mlperf_clock(void)
{
    uint32_t now = TME_PORT_COUNTER_READ();
    uint32_t elapsed = now - tme_mlperf_io.last_count;
    tme_mlperf_io.last_count = now;
    tme_mlperf_io.ticks_left += elapsed % TME_MLPERF_TICKS_PER_US;
    tme_mlperf_io.micros += (elapsed / TME_MLPERF_TICKS_PER_US) + (tme_mlperf_io.ticks_left / TME_MLPERF_TICKS_PER_US);
    tme_mlperf_io.ticks_left %= TME_MLPERF_TICKS_PER_US;
    return tme_mlperf_io.micros;
}

void tme_mlperf_lap(uint32_t micros)
{
    tme_mlperf_message("m-lap-us-", micros);
}
