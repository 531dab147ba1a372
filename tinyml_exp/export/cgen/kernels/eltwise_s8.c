/* ---- tme eltwise_s8: int8 ADD and int8 -> int8 QUANTIZE (requantize) ----------------------------
 * ADD follows reference_integer_ops::Add: both inputs are shifted left by 20 bits, scaled to twice
 * the larger input scale with MultiplyByQuantizedMultiplierSmallerThanOneExp, summed and scaled
 * to the output.
 */
/* ADD from tables: each input's rescaled term MultiplyByQuantizedMultiplierSmaller-
 * ThanOneExp((x + offset) << left_shift, m, shift) depends on one int8 value only, so the generator
 * tabulates both (t1[x], t2[x] for x in -128..127, computed with the reference's integer
 * arithmetic) and the kernel adds two table entries and requantizes the sum once (tme_requant,
 * one of its exact forms). Element i is read before element i is written (in place is fine). */
typedef struct {
    int32_t n, out_offset, act_min, act_max, rq_mode;
} tme_add_table_params_t;

TME_INLINE void tme_add_table_body(const tme_add_table_params_t *p, const int32_t *t1,
                                   const int32_t *t2, const tme_rq_t *rq, const int8_t *a,
                                   const int8_t *b, int8_t *out, const int32_t mode) {
    const int32_t n = p->n, zp = p->out_offset, lo = p->act_min, hi = p->act_max;
    const tme_rq_t q = *rq;
    t1 += 128;
    t2 += 128;
    for (int32_t i = 0; i < n; ++i) {
        out[i] = tme_rq_out(t1[a[i]] + t2[b[i]], &q, mode, zp, lo, hi);
    }
}

static TME_UNUSED void tme_add_table_s8(const tme_add_table_params_t *p, const int32_t *t1,
                                        const int32_t *t2, const tme_rq_t *rq, const int8_t *a,
                                        const int8_t *b, int8_t *out) {
    if (p->rq_mode == TME_RQ_RELU) {
        tme_add_table_body(p, t1, t2, rq, a, b, out, TME_RQ_RELU);
    } else if (p->rq_mode == TME_RQ_SIGNED) {
        tme_add_table_body(p, t1, t2, rq, a, b, out, TME_RQ_SIGNED);
    } else {
        tme_add_table_body(p, t1, t2, rq, a, b, out, TME_RQ_REFERENCE);
    }
}

/* QUANTIZE int8 -> int8 (reference_ops::Requantize). */
typedef struct {
    int32_t n, in_zp, out_zp, mult, shift;
} tme_requant_params_t;

static TME_UNUSED void tme_requant_s8(const tme_requant_params_t *p, const int8_t *in,
                                      int8_t *out) {
    for (int32_t i = 0; i < p->n; ++i) {
        const int32_t v = tme_mbqm(in[i] - p->in_zp, p->mult, p->shift) + p->out_zp;
        out[i] = (int8_t)tme_clamp(v, -128, 127);
    }
}

/* QUANTIZE float32 -> int8: round(x / scale) half away from zero, in single precision like
 * reference_ops::AffineQuantize. */
typedef struct {
    int32_t n, zp;
    float scale;
} tme_quantize_params_t;

static TME_UNUSED void tme_quantize_f32_s8(const tme_quantize_params_t *p, const float *in,
                                           int8_t *out) {
    for (int32_t i = 0; i < p->n; ++i) {
        float q = in[i] / p->scale;
        /* beyond +-2^20 the result saturates anyway; keeps the int conversion defined */
        q = q > 1048576.0f ? 1048576.0f : (q < -1048576.0f ? -1048576.0f : q);
        const float a = q < 0 ? -q : q;
        float r = (float)(int32_t)a;
        if (a - r >= 0.5f) {
            r += 1.0f;
        }
        const int32_t v = (int32_t)(q < 0 ? -r : r) + p->zp;
        out[i] = (int8_t)tme_clamp(v, -128, 127);
    }
}

/* DEQUANTIZE int8 -> float32: (float)(scale * (q - zp)) with the scale in double, as TFLite does. */
typedef struct {
    int32_t n, zp;
    double scale;
} tme_dequantize_params_t;

static TME_UNUSED void tme_dequantize_s8_f32(const tme_dequantize_params_t *p, const int8_t *in,
                                             float *out) {
    for (int32_t i = 0; i < p->n; ++i) {
        out[i] = (float)(p->scale * (double)(in[i] - p->zp));
    }
}
