/* ---- tme common: fixed-point helpers shared by every kernel ----------------------------------
 * Integer semantics follow TFLite's int8 reference kernels (tensorflow/lite/kernels/internal/
 * common.h and gemmlowp's fixedpoint.h). Every helper is written from the mathematical definition;
 * the comments say where a cheaper form is used and why it is exact.
 * Assumes two's complement, arithmetic right shift of negative values and a little-endian CPU
 * (true for GCC/Clang on Arm Cortex-M and x86-64).
 */
#include <string.h>

#if defined(__GNUC__)
#define TME_INLINE static inline __attribute__((always_inline))
#define TME_UNUSED __attribute__((unused))
#else
#define TME_INLINE static inline
#define TME_UNUSED
#endif

#if ((-1) >> 1) != -1
#error "tme kernels need an arithmetic right shift of negative integers"
#endif

#define TME_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TME_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Index of the lowest set bit of a non-zero word (the bitmask sparse kernels walk set bits). */
TME_INLINE int32_t tme_ctz(uint32_t m) {
#if defined(__GNUC__)
    return __builtin_ctz(m);
#else
    int32_t n = 0;
    while (!(m & 1u)) {
        m >>= 1;
        ++n;
    }
    return n;
#endif
}

/* Leading zero bits of a non-zero word. */
TME_INLINE int32_t tme_clz(uint32_t m) {
#if defined(__GNUC__)
    return __builtin_clz(m);
#else
    int32_t n = 0;
    while (!(m & 0x80000000u)) {
        m <<= 1;
        ++n;
    }
    return n;
#endif
}

TME_INLINE int32_t tme_clamp(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* SaturatingRoundingDoublingHighMul. The reference adds a sign-dependent nudge (2^30 or
 * 1 - 2^30) and truncates the division by 2^31 toward zero; for negative products that is
 * ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31), so one floor shift covers both signs. */
TME_INLINE int32_t tme_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* RoundingDivideByPOT: round-half-away-from-zero division by 2^e, 0 <= e <= 31. */
TME_INLINE int32_t tme_rdbpot(int32_t x, int32_t e) {
    const int32_t mask = (int32_t)((1u << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier (TFLite's default double-rounding form). The left shift wraps
 * like the reference's int32 multiply would on any two's complement CPU. */
TME_INLINE int32_t tme_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return tme_rdbpot(tme_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* Saturating multiply by 2^e (e > 0), gemmlowp's SaturatingRoundingMultiplyByPOT<+e>. */
TME_INLINE int32_t tme_sat_shl(int32_t x, int32_t e) {
    const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* Unaligned little-endian 32-bit load; one LDR on Cortex-M3/M4/M7. The builtin stays inline
 * under -ffreestanding / -fno-builtin, where a plain memcpy would become a library call. */
TME_INLINE uint32_t tme_load32(const void *p) {
    uint32_t v;
#if defined(__GNUC__)
    __builtin_memcpy(&v, p, sizeof v);
#else
    memcpy(&v, p, sizeof v);
#endif
    return v;
}

/* Unaligned 32-bit store; one STR on Cortex-M3/M4/M7. */
TME_INLINE void tme_store32(void *p, uint32_t v) {
#if defined(__GNUC__)
    __builtin_memcpy(p, &v, sizeof v);
#else
    memcpy(p, &v, sizeof v);
#endif
}

/* ---- dual 16-bit MAC helpers --------------------------------------------------------------------
 * On cores with the DSP extension these are single instructions; elsewhere (and in the host tests)
 * the portable versions compute the same values, so the host tests check the packing logic. */
#if defined(__ARM_FEATURE_DSP) && !defined(TME_PORTABLE)
#include <arm_acle.h>
#define TME_DSP 1
TME_INLINE uint32_t tme_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
TME_INLINE uint32_t tme_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    /* GCC 12 has no rotate form of the intrinsic and emits ROR + SXTB16 for the C spelling. */
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
TME_INLINE int32_t tme_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return __smlad((int32_t)a, (int32_t)b, acc);
}
TME_INLINE int32_t tme_smuad(uint32_t a, uint32_t b) { return __smuad((int32_t)a, (int32_t)b); }
TME_INLINE int32_t tme_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    return __smlabb((int32_t)a, (int32_t)b, acc);
}
TME_INLINE int32_t tme_smlatb(uint32_t a, uint32_t b, int32_t acc) {
    return __smlatb((int32_t)a, (int32_t)b, acc);
}
TME_INLINE int32_t tme_smlabt(uint32_t a, uint32_t b, int32_t acc) {
    return __smlabt((int32_t)a, (int32_t)b, acc);
}
TME_INLINE int32_t tme_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    return __smlatt((int32_t)a, (int32_t)b, acc);
}
TME_INLINE int32_t tme_sat8(int32_t v) { return __ssat(v, 8); }
/* acc + bytes 0 and 2 (1 and 3 for ror8) of x, sign-extended, in two 16-bit lanes */
TME_INLINE uint32_t tme_sxtab16(uint32_t acc, uint32_t x) {
    return (uint32_t)__sxtab16((int32_t)acc, (int32_t)x);
}
TME_INLINE uint32_t tme_sxtab16_ror8(uint32_t acc, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}
TME_INLINE uint32_t tme_sadd16(uint32_t a, uint32_t b) {
    return (uint32_t)__sadd16((int32_t)a, (int32_t)b);
}
/* (bottom of a, bottom of b) and (top of b, top of a): one PKHBT / PKHTB each. */
TME_INLINE uint32_t tme_pack_lo(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
TME_INLINE uint32_t tme_pack_hi(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}
#else
TME_INLINE int32_t tme_lo16(uint32_t x) { return (int16_t)(uint16_t)(x & 0xFFFFu); }
TME_INLINE int32_t tme_hi16(uint32_t x) { return (int16_t)(uint16_t)(x >> 16); }
TME_INLINE uint32_t tme_sxtb16(uint32_t x) {
    const uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)(x & 0xFFu);
    const uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)((x >> 16) & 0xFFu);
    return lo | (hi << 16);
}
TME_INLINE uint32_t tme_sxtb16_ror8(uint32_t x) { return tme_sxtb16((x >> 8) | (x << 24)); }
TME_INLINE int32_t tme_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return acc + tme_lo16(a) * tme_lo16(b) + tme_hi16(a) * tme_hi16(b);
}
TME_INLINE int32_t tme_smuad(uint32_t a, uint32_t b) { return tme_smlad(a, b, 0); }
TME_INLINE int32_t tme_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    return acc + tme_lo16(a) * tme_lo16(b);
}
TME_INLINE int32_t tme_smlatb(uint32_t a, uint32_t b, int32_t acc) {
    return acc + tme_hi16(a) * tme_lo16(b);
}
TME_INLINE int32_t tme_smlabt(uint32_t a, uint32_t b, int32_t acc) {
    return acc + tme_lo16(a) * tme_hi16(b);
}
TME_INLINE int32_t tme_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    return acc + tme_hi16(a) * tme_hi16(b);
}
TME_INLINE int32_t tme_sat8(int32_t v) { return v < -128 ? -128 : (v > 127 ? 127 : v); }
TME_INLINE uint32_t tme_sxtab16(uint32_t acc, uint32_t x) {
    const uint32_t e = tme_sxtb16(x);
    const uint32_t lo = (uint32_t)(tme_lo16(acc) + tme_lo16(e)) & 0xFFFFu;
    return lo | ((uint32_t)(tme_hi16(acc) + tme_hi16(e)) << 16);
}
TME_INLINE uint32_t tme_sxtab16_ror8(uint32_t acc, uint32_t x) {
    return tme_sxtab16(acc, (x >> 8) | (x << 24));
}
TME_INLINE uint32_t tme_sadd16(uint32_t a, uint32_t b) {
    const uint32_t lo = (uint32_t)(tme_lo16(a) + tme_lo16(b)) & 0xFFFFu;
    return lo | ((uint32_t)(tme_hi16(a) + tme_hi16(b)) << 16);
}
TME_INLINE uint32_t tme_pack_lo(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }
TME_INLINE uint32_t tme_pack_hi(uint32_t a, uint32_t b) { return (b & 0xFFFF0000u) | (a >> 16); }
#endif

/* Clamp to [lo, hi] within int8: one SSAT, plus a compare only for a narrower range (ReLU6 ...);
 * with the bounds known at compile time the extra compares fold away. */
TME_INLINE int32_t tme_clamp_s8(int32_t v, int32_t lo, int32_t hi) {
    v = tme_sat8(v);
    if (lo > -128 && v < lo) {
        v = lo;
    }
    if (hi < 127 && v > hi) {
        v = hi;
    }
    return v;
}

/* ---- requantization ------------------------------------------------------------------------------
 * Per output channel the generator emits a tme_rq_t and picks one of three exact forms:
 *  - TME_RQ_REFERENCE: out = MultiplyByQuantizedMultiplier(acc + c, m, sh) + out_offset, literally;
 *  - TME_RQ_SIGNED (every m > 2^30, -23 <= shift <= -1, bias already in acc):
 *      out = ((acc * m + c - [acc < 0] * 2^31) >> 32) >> (r - 1),  r = -shift,
 *      c = 2^30 + 2^(30 + r) + zp * 2^(31 + r).
 *    SRDHM then RDBPOT are two nested floor divisions once their rounding terms are written out
 *    (SRDHM's sign-dependent nudge becomes floor((ab + 2^30) / 2^31); RDBPOT adds 2^(r-1) and
 *    subtracts 1 for negative values, which for m > 2^30 are exactly those with acc < 0), so they
 *    merge into one 64-bit multiply-add and a shift; the zero point rides along in c;
 *  - TME_RQ_RELU (clamp floor >= zero point, -23 <= shift <= -1): as SIGNED without the [acc < 0]
 *    term, and c may also carry bias * m. Dropping the term changes only results below the zero
 *    point, which the clamp maps to the floor anyway.
 * On Cortex-M4 the last two are one SMLAL and one ASR (tests/test_cgen.py checks all three). */
#define TME_RQ_REFERENCE 0
#define TME_RQ_RELU 1
#define TME_RQ_SIGNED 2

/* 16-byte aligned: an entry is one flash line of the STM32 ART accelerator (one miss, not two
 * when the arrays before it leave it at 8 bytes past a line: DS-CNN's pointwise layers +10 %
 * data wait states) */
#if defined(__GNUC__)
#define TME_ALIGN16 __attribute__((aligned(16)))
#else
#define TME_ALIGN16
#endif
typedef struct TME_ALIGN16 {
    int64_t c;
    int32_t m;
    int32_t sh;
} tme_rq_t;

TME_INLINE int32_t tme_requant(int32_t acc, const tme_rq_t *q, int32_t mode, int32_t out_offset) {
    if (mode == TME_RQ_REFERENCE) {
        return tme_mbqm(acc + (int32_t)q->c, q->m, q->sh) + out_offset;
    }
    int64_t p = (int64_t)acc * q->m + q->c;
    if (mode == TME_RQ_SIGNED) {
        p -= (int64_t)(acc < 0) << 31;
    }
    return (int32_t)(p >> 32) >> q->sh;
}

/* Requantize + clamp one output; with `mode` and the bounds constants the form's branches and
 * the clamps that SSAT already does fold away (kernels instantiate the common cases). */
TME_INLINE int8_t tme_rq_out(int32_t acc, const tme_rq_t *q, const int32_t mode, int32_t out_offset,
                             int32_t act_min, int32_t act_max) {
    return (int8_t)tme_clamp_s8(tme_requant(acc, q, mode, out_offset), act_min, act_max);
}
