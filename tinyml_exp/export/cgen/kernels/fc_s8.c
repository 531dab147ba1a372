/* ---- tme fc_s8: int8 FULLY_CONNECTED -------------------------------------------------------------
 * acc = sum w * (x + in_offset) + bias, then one of two requantizations, chosen by the generator:
 *  - TME_FC_RQ_MULTIPLIER: MultiplyByQuantizedMultiplier per output channel (TFLite Micro, and
 *    TFLite's optimized kernels);
 *  - TME_FC_RQ_DOUBLE: round(acc * scale) in double precision, scale = s_in * s_w / s_out, which
 *    is what TFLite's reference FullyConnected kernels do since TF 2.16 (differs from the former
 *    in rare ties); computed in integers with the same roundings (tme_round_mul_double).
 */
#define TME_FC_RQ_MULTIPLIER 0
#define TME_FC_RQ_DOUBLE 1

typedef struct {
    int32_t in_n, out_n, group; /* group: output rows per pass of the packed kernel */
    int32_t in_offset, w_offset, out_offset, act_min, act_max, requant;
} tme_fc_params_t;

#ifndef TME_NOINLINE
#if defined(__GNUC__)
#define TME_NOINLINE __attribute__((noinline))
#else
#define TME_NOINLINE
#endif
#endif

/* The bits of a double, by tme_load32 (a plain memcpy is a library call under -ffreestanding). */
TME_INLINE uint64_t tme_double_bits(const double *d) {
    const unsigned char *b = (const unsigned char *)(const void *)d;
    return (uint64_t)tme_load32(b) | (uint64_t)tme_load32(b + 4) << 32;
}

/* round(acc * scale) half away from zero, the product first rounded to double (53 bits, to
 * nearest even) as the reference computes it, in integers: a Cortex-M4 has no double FPU and
 * libgcc's soft-float routines for the double form cost ~1.9 kB of flash. scale = m * 2^e with
 * an integer m < 2^53 (from its IEEE-754 bits); the result wraps to int32 like the reference's
 * int64 -> int32 conversion. Equal to the double form for |acc * scale| < 2^63 (scale < 2^32).
 * The exact form, for the rare outputs the fast path below cannot decide: not inlined (~200 B). */
static TME_NOINLINE TME_UNUSED int32_t tme_round_mul_double_exact(int32_t acc, const double *scale) {
    const uint64_t bits = tme_double_bits(scale);
    const int32_t biased = (int32_t)(bits >> 52) & 0x7ff;
    const uint64_t m = (bits & 0xfffffffffffffull) | (biased != 0 ? 1ull << 52 : 0u);
    int32_t e = (biased != 0 ? biased : 1) - 1075;
    const uint32_t a = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
    /* the exact product a * m = hi * 2^32 + lo (a <= 2^31, m < 2^53: hi < 2^52) */
    const uint64_t low = (uint64_t)a * (uint32_t)m;
    const uint64_t hi = (uint64_t)a * (uint32_t)(m >> 32) + (low >> 32);
    const uint64_t lo = (uint32_t)low;
    uint64_t q = (hi << 32) | lo; /* the product rounded to 53 bits is q * 2^e */
    if (hi >> 21 != 0) {
        /* 54 to 84 bits: drop the s lowest (1 <= s <= 31), rounding to nearest, ties to even */
        const uint32_t top = (uint32_t)(hi >> 32);
        const int32_t s = (top != 0 ? 64 - tme_clz(top) : 32 - tme_clz((uint32_t)hi)) - 21;
        const uint64_t rem = lo & ((1ull << s) - 1u);
        const uint64_t half = 1ull << (s - 1);
        q = (hi << (32 - s)) | (lo >> s);
        q += (rem > half || (rem == half && (q & 1u))) ? 1u : 0u;
        e += s;
    }
    uint64_t r; /* floor(q * 2^e + 1/2) */
    if (e >= 0) {
        r = q << (e & 63);
    } else {
        r = e < -54 ? 0u : (q + (1ull << (-e - 1))) >> -e; /* q <= 2^53: below 1/2 past 2^-54 */
    }
    const uint32_t v = (uint32_t)r;
    return (int32_t)(((acc < 0) != (bits >> 63 != 0)) ? 0u - v : v);
}

/* The same in ~25 instructions for scales in [2^-32, 2^-2) (every usual FC): with a = |acc|, m the
 * 53-bit mantissa and mh = m >> 21 its top 32 bits, T = a * mh (one UMULL) is a * m / 2^21 less
 * [0, 2^31). The result is floor((T + 2^(K-1)) / 2^K), K = 32 + s the binary places of T, unless
 * the low K bits of T + 2^(K-1) lie within 2^32 of the next multiple of 2^K: a fraction
 * of the outputs (2^-s), which take the exact form. Rounding a * m to 53 bits cannot move it below a
 * half-integer it has reached (those are exact doubles), only up onto one: inside that 2^32. */
TME_INLINE int32_t tme_round_mul_double(int32_t acc, const double *scale) {
    const uint64_t bits = tme_double_bits(scale);
    const int32_t s = 1022 - ((int32_t)(bits >> 52) & 0x7ff); /* K = 1075 - biased exponent - 21 */
    if (s >= 1 && s <= 31) {
        const uint32_t a = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
        const uint64_t t = (uint64_t)a * ((uint32_t)(bits >> 21) | 0x80000000u);
        const uint32_t hi = (uint32_t)(t >> 32) + (1u << (s - 1)); /* < 2^32 */
        const uint32_t mask = (1u << s) - 1u;
        if ((hi & mask) != mask) {
            const uint32_t v = hi >> s;
            return (int32_t)(((acc < 0) != (bits >> 63 != 0)) ? 0u - v : v);
        }
    }
    return tme_round_mul_double_exact(acc, scale);
}

TME_INLINE int8_t tme_fc_requant(const tme_fc_params_t *p, int32_t acc, int32_t oc,
                                 const int32_t *mult, const int32_t *shift, const double *scale) {
    int32_t v;
    if (p->requant == TME_FC_RQ_DOUBLE) {
        v = tme_round_mul_double(acc, &scale[oc]);
    } else {
        v = tme_mbqm(acc, mult[oc], shift[oc]);
    }
    return (int8_t)tme_clamp(v + p->out_offset, p->act_min, p->act_max);
}

/* Reference-order kernel for any shape (weights row-major [out_n][in_n]). */
static TME_UNUSED void tme_fc_s8(const tme_fc_params_t *p, const int8_t *in, const int8_t *w,
                                 const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                 const double *scale, int8_t *out) {
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        const int8_t *wr = w + oc * p->in_n;
        int32_t acc = 0;
        for (int32_t i = 0; i < p->in_n; ++i) {
            acc += (wr[i] + p->w_offset) * (in[i] + p->in_offset);
        }
        if (bias != NULL) {
            acc += bias[oc];
        }
        out[oc] = tme_fc_requant(p, acc, oc, mult, shift, scale);
    }
}

/* Dual-MAC kernel: in_n % 4 == 0, symmetric weights, input 4-byte aligned. The weights are
 * packed by the generator in passes of `group` rows: for every 4 inputs, `group` words holding
 * 4 weights of consecutive rows, so one sequential stream feeds SMLAD. `bias` already contains
 * bias + in_offset * sum(row) (exact integer identity), so no per-MAC offset is needed. */
TME_INLINE void tme_fc_pass(const int8_t *in, int32_t in_n, const uint32_t *wp, int32_t *acc,
                            const int32_t group) {
    const uint32_t *xp = (const uint32_t *)(const void *)in;
    for (int32_t b = 0; b < in_n / 4; ++b) {
        const uint32_t x = xp[b];
        const uint32_t xe = tme_sxtb16(x);
        const uint32_t xo = tme_sxtb16_ror8(x);
        for (int32_t j = 0; j < group; ++j) {
            const uint32_t wv = wp[j];
            acc[j] = tme_smlad(xe, tme_sxtb16(wv), acc[j]);
            acc[j] = tme_smlad(xo, tme_sxtb16_ror8(wv), acc[j]);
        }
        wp += group;
    }
}

#if defined(TME_DSP)
/* Passes of 4 and 5 rows written out (GCC spills an accumulator and reloads the loop bound):
 * per 4 inputs one load + 2 SXTB16 of x, then per 2 rows one LDRD of their weight words, 4 SXTB16
 * and 4 SMLAD. Registers are fixed (as in conv_im2col_s8.c's tme_dot_2x2); the loop stays in C. */
#define TME_FC_X "ldr r1, [%[x]], #4\n\tsxtb16 r2, r1\n\tsxtb16 r3, r1, ror #8\n\t"
#define TME_FC_ROW(A, REG)                                                                         \
    "sxtb16 lr, " REG "\n\tsxtb16 " REG ", " REG ", ror #8\n\t"                                  \
    "smlad %[" A "], r2, lr, %[" A "]\n\tsmlad %[" A "], r3, " REG ", %[" A "]\n\t"
#define TME_FC_ROW2(A, B) "ldrd r0, r1, [%[w]], #8\n\t" TME_FC_ROW(A, "r0") TME_FC_ROW(B, "r1")
#define TME_FC_ROW1(A) "ldr r0, [%[w]], #4\n\t" TME_FC_ROW(A, "r0")

TME_INLINE int tme_fc_pass_dsp(const int8_t *in, int32_t in_n, const uint32_t *wp, int32_t *acc,
                               const int32_t group) {
    if (group != 4 && group != 5) {
        return 0;
    }
    register int32_t a0 __asm__("r8") = acc[0];
    register int32_t a1 __asm__("r9") = acc[1];
    register int32_t a2 __asm__("r10") = acc[2];
    register int32_t a3 __asm__("r11") = acc[3];
    register int32_t a4 __asm__("r12") = group == 5 ? acc[4] : 0;
    register const uint32_t *w __asm__("r4") = wp;
    register const int8_t *x __asm__("r5") = in;
    const int8_t *const end = in + in_n;
    do {
        if (group == 5) {
            __asm__(TME_FC_X TME_FC_ROW2("a0", "a1") TME_FC_ROW2("a2", "a3") TME_FC_ROW1("a4")
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4),
                      [w] "+r"(w), [x] "+r"(x)
                    :
                    : "r0", "r1", "r2", "r3", "lr", "memory");
        } else {
            __asm__(TME_FC_X TME_FC_ROW2("a0", "a1") TME_FC_ROW2("a2", "a3")
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w),
                      [x] "+r"(x)
                    :
                    : "r0", "r1", "r2", "r3", "lr", "memory");
        }
    } while (x != end);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    if (group == 5) {
        acc[4] = a4;
    }
    return 1;
}
#else
TME_INLINE int tme_fc_pass_dsp(const int8_t *in, int32_t in_n, const uint32_t *wp, int32_t *acc,
                               const int32_t group) {
    (void)in;
    (void)in_n;
    (void)wp;
    (void)acc;
    (void)group;
    return 0;
}
#endif

static TME_UNUSED void tme_fc_packed_s8(const tme_fc_params_t *p, const int8_t *in,
                                        const uint32_t *wpk, const int32_t *bias,
                                        const int32_t *mult, const int32_t *shift,
                                        const double *scale, int8_t *out) {
    const int32_t words_per_pass = p->group * (p->in_n / 4);
    for (int32_t oc = 0; oc < p->out_n; oc += p->group) {
        int32_t acc[6];
        for (int32_t j = 0; j < p->group; ++j) {
            acc[j] = bias[oc + j];
        }
        /* constant group sizes let the compiler keep the accumulators in registers */
        switch (p->group) {
            case 6:
                tme_fc_pass(in, p->in_n, wpk, acc, 6);
                break;
            case 5:
                if (!tme_fc_pass_dsp(in, p->in_n, wpk, acc, 5)) {
                    tme_fc_pass(in, p->in_n, wpk, acc, 5);
                }
                break;
            case 4:
                if (!tme_fc_pass_dsp(in, p->in_n, wpk, acc, 4)) {
                    tme_fc_pass(in, p->in_n, wpk, acc, 4);
                }
                break;
            case 3:
                tme_fc_pass(in, p->in_n, wpk, acc, 3);
                break;
            case 2:
                tme_fc_pass(in, p->in_n, wpk, acc, 2);
                break;
            default:
                tme_fc_pass(in, p->in_n, wpk, acc, 1);
                break;
        }
        wpk += words_per_pass;
        for (int32_t j = 0; j < p->group; ++j) {
            out[oc + j] = tme_fc_requant(p, acc[j], oc + j, mult, shift, scale);
        }
    }
}

/* ---- many passes over one input: the input widened once -----------------------------------------
 * When the packed kernel would make many passes (the generator picks this for out_n / group >= 4,
 * in_n % 8 == 0, the TFLM requantization), the input is widened once into `scratch` in SXTB16's
 * order, per 4 inputs (x0, x2) (x1, x3): every pass then loads it with one LDRD per 4 inputs and
 * only the weights need SXTB16. Same weight layout and folded bias as tme_fc_packed_s8; the
 * requantization is common.h's tme_rq_out (one SMLAL + ASR in the usual modes). */
typedef struct {
    int32_t in_n, out_n, group, out_offset, act_min, act_max, rq_mode;
} tme_fc_wide_params_t;

TME_INLINE void tme_fc_wide_pass(const uint32_t *xw, int32_t in_n, const uint32_t *wp, int32_t *acc,
                                 const int32_t group) {
    for (int32_t b = 0; b < in_n / 4; ++b, xw += 2, wp += group) {
        for (int32_t j = 0; j < group; ++j) {
            acc[j] = tme_smlad(xw[0], tme_sxtb16(wp[j]), acc[j]);
            acc[j] = tme_smlad(xw[1], tme_sxtb16_ror8(wp[j]), acc[j]);
        }
    }
}

#if defined(TME_DSP)
/* 8 inputs per iteration: per 4 inputs one LDRD of the widened input into r2, r3, then the rows
 * as in tme_fc_pass_dsp (LDRD of two rows' words, 4 SXTB16, 4 SMLAD). */
#define TME_FCW_X "ldrd r2, r3, [%[x]], #8\n\t"
#define TME_FCW_4 TME_FCW_X TME_FC_ROW2("a0", "a1") TME_FC_ROW2("a2", "a3")
#define TME_FCW_5 TME_FCW_4 TME_FC_ROW1("a4")

TME_INLINE int tme_fc_wide_pass_dsp(const uint32_t *xw, int32_t in_n, const uint32_t *wp,
                                    int32_t *acc, const int32_t group) {
    if (group != 4 && group != 5) {
        return 0;
    }
    register int32_t a0 __asm__("r8") = acc[0];
    register int32_t a1 __asm__("r9") = acc[1];
    register int32_t a2 __asm__("r10") = acc[2];
    register int32_t a3 __asm__("r11") = acc[3];
    register int32_t a4 __asm__("r12") = group == 5 ? acc[4] : 0;
    register const uint32_t *w __asm__("r4") = wp;
    register const uint32_t *x __asm__("r5") = xw;
    const uint32_t *const end = xw + in_n / 2;
    do {
        if (group == 5) {
            __asm__(TME_FCW_5 TME_FCW_5
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4),
                      [w] "+r"(w), [x] "+r"(x)
                    :
                    : "r0", "r1", "r2", "r3", "lr", "memory");
        } else {
            __asm__(TME_FCW_4 TME_FCW_4
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w),
                      [x] "+r"(x)
                    :
                    : "r0", "r1", "r2", "r3", "lr", "memory");
        }
    } while (x != end);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    if (group == 5) {
        acc[4] = a4;
    }
    return 1;
}
#else
TME_INLINE int tme_fc_wide_pass_dsp(const uint32_t *xw, int32_t in_n, const uint32_t *wp,
                                    int32_t *acc, const int32_t group) {
    (void)xw;
    (void)in_n;
    (void)wp;
    (void)acc;
    (void)group;
    return 0;
}
#endif

/* `scale` (reference="tflite"; then `rq` is NULL): TFLite's reference rounding in double. */
TME_INLINE void tme_fc_wide_body(const tme_fc_wide_params_t *p, const uint32_t *xw,
                                 const uint32_t *wpk, const int32_t *bias, const tme_rq_t *rq,
                                 const double *scale, int8_t *out, const int32_t group,
                                 const int32_t mode, const int32_t lo, const int32_t hi) {
    const int32_t in_n = p->in_n, out_n = p->out_n, zp = p->out_offset;
    for (int32_t oc = 0; oc < out_n; oc += group, wpk += group * (in_n / 4)) {
        int32_t acc[6];
        for (int32_t j = 0; j < group; ++j) {
            acc[j] = bias[oc + j];
        }
        if (!tme_fc_wide_pass_dsp(xw, in_n, wpk, acc, group)) {
            tme_fc_wide_pass(xw, in_n, wpk, acc, group);
        }
        for (int32_t j = 0; j < group; ++j) {
            if (scale != NULL) {
                out[oc + j] = (int8_t)tme_clamp(tme_round_mul_double(acc[j], &scale[oc + j]) + zp, lo, hi);
            } else {
                out[oc + j] = tme_rq_out(acc[j], rq + oc + j, mode, zp, lo, hi);
            }
        }
    }
}

TME_INLINE void tme_fc_widen(const tme_fc_wide_params_t *p, const int8_t *in, uint32_t *scratch) {
    for (int32_t b = 0; b < p->in_n / 4; ++b) {
        const uint32_t x = tme_load32(in + 4 * b);
        scratch[2 * b] = tme_sxtb16(x);
        scratch[2 * b + 1] = tme_sxtb16_ror8(x);
    }
}

/* scratch: in_n / 2 words (the widened input). */
static TME_UNUSED void tme_fc_wide_s8(const tme_fc_wide_params_t *p, const int8_t *in,
                                      const uint32_t *wpk, const int32_t *bias, const tme_rq_t *rq,
                                      uint32_t *scratch, int8_t *out) {
    tme_fc_widen(p, in, scratch);
    const int32_t lo = p->act_min, hi = p->act_max, mode = p->rq_mode;
    if (p->group == 5 && mode == TME_RQ_RELU && hi == 127) {
        tme_fc_wide_body(p, scratch, wpk, bias, rq, NULL, out, 5, TME_RQ_RELU, lo, 127);
    } else if (p->group == 4 && mode == TME_RQ_RELU && hi == 127) {
        tme_fc_wide_body(p, scratch, wpk, bias, rq, NULL, out, 4, TME_RQ_RELU, lo, 127);
    } else if (mode == TME_RQ_SIGNED && lo == -128 && hi == 127) { /* no activation */
        if (p->group == 5) {
            tme_fc_wide_body(p, scratch, wpk, bias, rq, NULL, out, 5, TME_RQ_SIGNED, -128, 127);
        } else {
            tme_fc_wide_body(p, scratch, wpk, bias, rq, NULL, out, 4, TME_RQ_SIGNED, -128, 127);
        }
    } else { /* the generator uses this kernel only with groups of 4 or 5 */
        tme_fc_wide_body(p, scratch, wpk, bias, rq, NULL, out, p->group == 5 ? 5 : 4, mode, lo, hi);
    }
}

/* The same with TFLite's reference rounding in double (reference="tflite"): a function of its own,
 * so the TFLM kernel's code stays as it was (sharing it cost that one +0.5 % on the autoencoder). */
static TME_UNUSED void tme_fc_wide_double_s8(const tme_fc_wide_params_t *p, const int8_t *in,
                                             const uint32_t *wpk, const int32_t *bias,
                                             const double *scale, uint32_t *scratch, int8_t *out) {
    tme_fc_widen(p, in, scratch);
    const int32_t lo = p->act_min, hi = p->act_max;
    if (p->group == 5) {
        tme_fc_wide_body(p, scratch, wpk, bias, NULL, scale, out, 5, TME_RQ_REFERENCE, lo, hi);
    } else {
        tme_fc_wide_body(p, scratch, wpk, bias, NULL, scale, out, 4, TME_RQ_REFERENCE, lo, hi);
    }
}
