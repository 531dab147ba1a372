#include "tme_fmt.h"

#include <string.h>

/* The integer part travels through a uint32_t (a single VCVT on the Cortex-M4F). */
#define TME_FMT_MAX_FIXED3 4.0e9f

size_t tme_fmt_u32(char *out, uint32_t value)
{
    char digits[TME_FMT_U32_CHARS];
    size_t n = 0U;
    do {
        digits[sizeof digits - 1U - n] = (char)('0' + (int)(value % 10U));
        value /= 10U;
        n++;
    } while (value != 0U);
    memcpy(out, &digits[sizeof digits - n], n);
    return n;
}

size_t tme_fmt_hex8(char *out, uint8_t value)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = hex[value >> 4];
    out[1] = hex[value & 0xFU];
    return 2U;
}

size_t tme_fmt_fixed3(char *out, float value)
{
    if (value != value) {
        memcpy(out, "nan", 3U);
        return 3U;
    }
    float magnitude = (value < 0.0f) ? -value : value;
    if (!(magnitude < TME_FMT_MAX_FIXED3)) {
        size_t n = (value < 0.0f) ? 4U : 3U;
        memcpy(out, (value < 0.0f) ? "-inf" : "inf", n);
        return n;
    }
    uint32_t whole = (uint32_t)magnitude;
    /* magnitude - whole is exact in float; only the scaling by 1000 rounds. */
    uint32_t fraction = (uint32_t)(((magnitude - (float)whole) * 1000.0f) + 0.5f);
    if (fraction >= 1000U) {
        whole++;
        fraction -= 1000U;
    }
    size_t n = 0U;
    if ((value < 0.0f) && ((whole != 0U) || (fraction != 0U))) {
        out[n++] = '-';
    }
    n += tme_fmt_u32(&out[n], whole);
    out[n++] = '.';
    out[n++] = (char)('0' + (int)(fraction / 100U));
    out[n++] = (char)('0' + (int)((fraction / 10U) % 10U));
    out[n++] = (char)('0' + (int)(fraction % 10U));
    return n;
}
