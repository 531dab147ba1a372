/* ---- tme eltwise_s8: int8 ADD and int8 -> int8 QUANTIZE (requantize) ----------------------------
 * ADD follows reference_integer_ops::Add: both inputs are shifted left by 20 bits, scaled to twice
 * the larger input scale with MultiplyByQuantizedMultiplierSmallerThanOneExp, summed and scaled
 * to the output. Element i is read before element i is written, so the output may share the
 * buffer of an input that dies here (the generator plans it in place).
 */
typedef struct {
    int32_t n, left_shift;
    int32_t in1_offset, in1_mult, in1_shift;
    int32_t in2_offset, in2_mult, in2_shift;
    int32_t out_offset, out_mult, out_shift, act_min, act_max;
} tme_add_params_t;

static TME_UNUSED void tme_add_s8(const tme_add_params_t *p, const int8_t *a, const int8_t *b,
                                  int8_t *out) {
    for (int32_t i = 0; i < p->n; ++i) {
        const int32_t x = (int32_t)((uint32_t)(a[i] + p->in1_offset) << p->left_shift);
        const int32_t y = (int32_t)((uint32_t)(b[i] + p->in2_offset) << p->left_shift);
        const int32_t sx = tme_mbqm(x, p->in1_mult, p->in1_shift);
        const int32_t sy = tme_mbqm(y, p->in2_mult, p->in2_shift);
        const int32_t v = tme_mbqm(sx + sy, p->out_mult, p->out_shift) + p->out_offset;
        out[i] = (int8_t)tme_clamp(v, p->act_min, p->act_max);
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
