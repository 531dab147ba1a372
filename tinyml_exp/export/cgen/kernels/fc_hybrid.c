/* ---- tme fc_hybrid: dynamic-range FULLY_CONNECTED (float32 activations, int8 weights) -----------
 * TFLite's hybrid kernel (fully_connected.cc EvalHybridDense + tensor_utils), operation for
 * operation: the input is quantized per inference into `scratch` (int8, in_pad bytes),
 *  - asymmetric (the converter's default): rmin = min(0, min x), rmax = max(0, max x),
 *    scale = (rmax - rmin) / 255, the zero point of smaller error nudged into [-128, 127],
 *    q = clamp(round(x * (1 / scale)) + zp, -128, 127). portable_tensor_utils.cc computes the
 *    scale and zero point in double and rounds zp + x / scale; the ai-edge-litert 2.3 build the
 *    tests compare with does it in float and rounds before adding the zero point: its quantized
 *    input, scale and zero point tensors, read back, equal these on 1,000 of 1,000 inputs (the
 *    written form differs on ~1 % of inputs, at one ulp of the scale or on ties);
 *  - symmetric: scale = max|x| / 127, q = clamp(round(x * (127 / max|x|)), -127, 127);
 * an all-zero range gives q = 0 and scale 1. Then acc = sum q * w - zp * row_sum (int32, the
 * packed SMLAD passes of fc_s8.c), out = bias + (float)acc * (w_scale[row] * scale) and the fused
 * activation's clamp. Rounding is half away from zero (TfLiteRound), without libm.
 */
typedef struct {
    int32_t in_n, in_pad, out_n, group, asymmetric;
    float act_min, act_max;
} tme_fc_hybrid_params_t;

TME_INLINE int32_t tme_roundf_half_away(float x) {
    const float a = x < 0.0f ? -x : x;
    int32_t i = (int32_t)a; /* |x| < 128 where it is used (the zero point): exact */
    if (a - (float)i >= 0.5f) {
        ++i;
    }
    return x < 0.0f ? -i : i;
}

/* round(y) half away from zero, given y2 = 2y: with t = trunc(2y), (t + sign(t)) / 2 truncated is
 * trunc(y) + [frac(y) >= 1/2] for either sign. The caller passes x * (2 * inv), which is the float
 * 2 * (x * inv) exactly (scaling by 2 commutes with rounding), and |2y| <= 510: the cast is exact.
 * Branch-free and no float compares: the quantization loop is a multiply, a convert and integer ops. */
TME_INLINE int32_t tme_round_half_away_2x(float y2) {
    const int32_t t = (int32_t)y2;
    return (t + (t < 0 ? -1 : 1)) / 2;
}

/* Quantize `in` into `q`; returns the input scale, sets *zp. */
static float tme_fc_hybrid_quantize(const tme_fc_hybrid_params_t *p, const float *in, int8_t *q,
                                    int32_t *zp) {
    float mn = in[0], mx = in[0];
    for (int32_t i = 1; i < p->in_n; ++i) {
        mn = in[i] < mn ? in[i] : mn;
        mx = in[i] > mx ? in[i] : mx;
    }
    for (int32_t i = 0; i < p->in_pad; ++i) { /* the padding, and all of it for a zero range */
        q[i] = 0;
    }
    *zp = 0;
    if (p->asymmetric) {
        const float rmin = mn < 0.0f ? mn : 0.0f, rmax = 0.0f < mx ? mx : 0.0f;
        if (rmin == rmax) {
            return 1.0f;
        }
        const float scale = (rmax - rmin) / 255.0f;
        const float z_min = -128.0f - rmin / scale, z_max = 127.0f - rmax / scale;
        const float e_min = 128.0f + (rmin / scale < 0.0f ? -rmin / scale : rmin / scale);
        const float e_max = 127.0f + (rmax / scale < 0.0f ? -rmax / scale : rmax / scale);
        const float z = e_min < e_max ? z_min : z_max;
        *zp = z <= -128.0f ? -128 : (z >= 127.0f ? 127 : tme_roundf_half_away(z));
        const float inv2 = 2.0f * (1.0f / scale);
        const int32_t off = *zp;
        for (int32_t i = 0; i < p->in_n; ++i) {
            q[i] = (int8_t)tme_sat8(tme_round_half_away_2x(in[i] * inv2) + off);
        }
        return scale;
    }
    const float amn = mn < 0.0f ? -mn : mn, amx = mx < 0.0f ? -mx : mx;
    const float range = amn > amx ? amn : amx;
    if (range == 0.0f) {
        return 1.0f;
    }
    const float inv2 = 2.0f * (127.0f / range);
    for (int32_t i = 0; i < p->in_n; ++i) {
        q[i] = (int8_t)tme_clamp_s8(tme_round_half_away_2x(in[i] * inv2), -127, 127);
    }
    return range / 127.0f;
}

/* weights: fc_s8.c's packed layout (passes of `group` rows, rows padded to in_pad with zeros);
 * row_sums: per row sum of the weights (asymmetric only, else NULL); scratch: in_pad bytes. */
static TME_UNUSED void tme_fc_hybrid(const tme_fc_hybrid_params_t *p, const float *in,
                                     const uint32_t *wpk, const int32_t *row_sums,
                                     const float *w_scale, const float *bias, uint32_t *scratch,
                                     float *out) {
    int8_t *q = (int8_t *)(void *)scratch;
    int32_t zp;
    const float s_in = tme_fc_hybrid_quantize(p, in, q, &zp);
    const int32_t words_per_pass = p->group * (p->in_pad / 4);
    for (int32_t oc = 0; oc < p->out_n; oc += p->group, wpk += words_per_pass) {
        int32_t acc[6];
        for (int32_t j = 0; j < p->group; ++j) {
            acc[j] = row_sums != NULL ? (int32_t)(0u - (uint32_t)zp * (uint32_t)row_sums[oc + j]) : 0;
        }
        switch (p->group) {
            case 5:
                if (!tme_fc_pass_dsp(q, p->in_pad, wpk, acc, 5)) {
                    tme_fc_pass(q, p->in_pad, wpk, acc, 5);
                }
                break;
            case 4:
                if (!tme_fc_pass_dsp(q, p->in_pad, wpk, acc, 4)) {
                    tme_fc_pass(q, p->in_pad, wpk, acc, 4);
                }
                break;
            default:
                tme_fc_pass(q, p->in_pad, wpk, acc, p->group);
                break;
        }
        for (int32_t j = 0; j < p->group; ++j) {
            const float scale = w_scale[oc + j] * s_in;
            const float v = (bias != NULL ? bias[oc + j] : 0.0f) + (float)acc[j] * scale;
            out[oc + j] = tme_clampf(v, p->act_min, p->act_max);
        }
    }
}
