/*
 * Number formatting for the text dialect without printf (newlib-nano's printf has no %f unless
 * linked with -u _printf_float) and without 64-bit arithmetic (which would pull libgcc's software
 * division and double-precision routines into the image). Each function writes into `out`
 * without a terminator and returns the number of characters written.
 */
#ifndef TME_FMT_H
#define TME_FMT_H

#include <stddef.h>
#include <stdint.h>

#define TME_FMT_U32_CHARS 10U    /* 2^32 - 1 has 10 decimal digits */
#define TME_FMT_FIXED3_CHARS 15U /* "-" + 10 integer digits + ".ddd", or "-inf" / "nan" */

/* Unsigned decimal. */
size_t tme_fmt_u32(char *out, uint32_t value);

/* Two lower-case hex digits. */
size_t tme_fmt_hex8(char *out, uint8_t value);

/*
 * printf("%.3f") for the values a model outputs: the fraction is rounded half up to thousandths
 * in single precision, so the last digit may differ from a double-precision printf near a tie.
 * NaN prints as "nan"; magnitudes of 4e9 and more as "inf" / "-inf".
 */
size_t tme_fmt_fixed3(char *out, float value);

#endif /* TME_FMT_H */
