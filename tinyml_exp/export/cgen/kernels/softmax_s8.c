/* ---- tme softmax_s8: int8 SOFTMAX over the last axis, output scale 1/256, zero point -128 -------
 * The fixed-point algorithm of TFLite's reference_ops::Softmax (gemmlowp): input differences to the
 * row maximum are rescaled to Q5.26, exponentiated with gemmlowp's exp_on_negative_values, summed
 * in Q12.19, and multiplied by the reciprocal of the sum (Newton-Raphson, Q0.31).
 */
typedef struct {
    int32_t rows, depth, mult, left_shift, diff_min;
} tme_softmax_params_t;

/* exp(a) for a in [-1/4, 0), Q0.31: Taylor expansion around -1/8 (gemmlowp) */
static int32_t tme_exp_quarter_q0(int32_t a) {
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tme_srdhm(x, x);
    const int32_t x3 = tme_srdhm(x2, x);
    const int32_t x4 = tme_srdhm(x2, x2);
    const int32_t x4_over_4 = tme_rdbpot(x4, 2);
    const int32_t poly = tme_rdbpot(tme_srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tme_srdhm(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, result Q0.31 (gemmlowp exp_on_negative_values<5>) */
static int32_t tme_exp_neg_q5(int32_t a) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242};
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result = tme_exp_quarter_q0(tme_sat_shl(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    /* multiply by exp(-2^k) for every bit 2^k (k = -2 .. 4) set in the remainder */
    for (int32_t k = 0; k < 7; ++k) {
        if (remainder & (1 << (24 + k))) {
            result = tme_srdhm(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out (gemmlowp one_over_one_plus_x_for_x_in_0_1) */
static int32_t tme_one_over_one_plus_x(int32_t a) {
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810;   /* 48/17 in Q2.29 */
    const int32_t cm32_17 = -1010580540; /* -32/17 in Q2.29 */
    int32_t x = c48_17 + tme_srdhm(half_denominator, cm32_17);
    for (int32_t i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - tme_srdhm(half_denominator, x);
        x = x + tme_sat_shl(tme_srdhm(x, one_minus), 2);
    }
    return tme_sat_shl(x, 1);
}

TME_INLINE int32_t tme_clz32(uint32_t x) {
#if defined(__GNUC__)
    return x == 0 ? 32 : __builtin_clz(x);
#else
    int32_t n = 0;
    while (n < 32 && !(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

static TME_UNUSED void tme_softmax_s8(const tme_softmax_params_t *p, const int8_t *in,
                                      int8_t *out) {
    for (int32_t r = 0; r < p->rows; ++r, in += p->depth, out += p->depth) {
        int32_t max_in_row = -128;
        for (int32_t c = 0; c < p->depth; ++c) {
            max_in_row = TME_MAX(max_in_row, in[c]);
        }
        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = tme_srdhm((int32_t)((uint32_t)diff << p->left_shift), p->mult);
                sum_of_exps += tme_rdbpot(tme_exp_neg_q5(scaled), 12);
            }
        }
        /* reciprocal of the sum: normalise to [1, 2), 1 / (1 + x), remember the exponent */
        const int32_t headroom_plus_one = tme_clz32((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31));
        const int32_t shifted_scale = tme_one_over_one_plus_x(shifted_sum_minus_one);
        const int32_t exponent = num_bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            int32_t v = -128;
            if (diff >= p->diff_min) {
                const int32_t scaled = tme_srdhm((int32_t)((uint32_t)diff << p->left_shift), p->mult);
                const int32_t e = tme_exp_neg_q5(scaled);
                v = tme_clamp(tme_rdbpot(tme_srdhm(shifted_scale, e), exponent) - 128, -128, 127);
            }
            out[c] = (int8_t)v;
        }
    }
}
