/* ---- tme fc_s8: int8 FULLY_CONNECTED -------------------------------------------------------------
 * acc = sum w * (x + in_offset) + bias, then one of two requantizations, chosen by the generator:
 *  - TME_FC_RQ_MULTIPLIER: MultiplyByQuantizedMultiplier per output channel (TFLite Micro, and
 *    TFLite's optimized kernels);
 *  - TME_FC_RQ_DOUBLE: round(acc * scale) in double precision, scale = s_in * s_w / s_out, which
 *    is what TFLite's reference FullyConnected kernels do since TF 2.16 (differs from the former
 *    in rare ties).
 */
#define TME_FC_RQ_MULTIPLIER 0
#define TME_FC_RQ_DOUBLE 1

typedef struct {
    int32_t in_n, out_n, group; /* group: output rows per pass of the packed kernel */
    int32_t in_offset, w_offset, out_offset, act_min, act_max, requant;
} tme_fc_params_t;

/* round half away from zero without libm: a - trunc(a) is exact in double */
TME_INLINE int32_t tme_round_half_away(double x) {
    const double a = x < 0 ? -x : x;
    int64_t i = (int64_t)a;
    if (a - (double)i >= 0.5) {
        ++i;
    }
    return (int32_t)(x < 0 ? -i : i);
}

TME_INLINE int8_t tme_fc_requant(const tme_fc_params_t *p, int32_t acc, int32_t oc,
                                 const int32_t *mult, const int32_t *shift, const double *scale) {
    int32_t v;
    if (p->requant == TME_FC_RQ_DOUBLE) {
        v = tme_round_half_away((double)acc * scale[oc]);
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
