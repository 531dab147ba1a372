/*
 * Internal to the MLPerf Tiny runner dialect (tme_mlperf.c): reply output and the microsecond
 * clock, in their own unit to keep each file readable. Not part of the porting interface.
 */
#ifndef TME_MLPERF_IO_H
#define TME_MLPERF_IO_H

#include <stddef.h>
#include <stdint.h>

#include "tme_proto.h"

void tme_mlperf_io_init(tme_proto_write_fn write, void *ctx);

/* Text out: raw bytes, a C string, "\r\n", numbers (decimal, two hex digits, 3 decimals). */
void tme_mlperf_put(const char *text, size_t len);
void tme_mlperf_puts(const char *text);
void tme_mlperf_line_end(void);
void tme_mlperf_put_u32(uint32_t value);
void tme_mlperf_put_hex8(uint8_t value);
void tme_mlperf_put_fixed3(float value);
/* Whole lines: prefix + decimal value; "e-[text]". */
void tme_mlperf_message(const char *prefix, uint32_t value);
void tme_mlperf_error(const char *text);

/* strlen / strcmp != 0 without newlib's (see tme_mlperf_io.c). */
size_t tme_mlperf_length(const char *text);
int tme_mlperf_differ(const char *a, const char *b);

/* Microseconds of the board counter (wraps after 71 minutes); the m-lap-us-<t> line. */
uint32_t tme_mlperf_clock(void);
void tme_mlperf_lap(uint32_t micros);

#endif /* TME_MLPERF_IO_H */
