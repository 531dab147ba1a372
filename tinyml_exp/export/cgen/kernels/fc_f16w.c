/* ---- tme fc_f16w: float32 FULLY_CONNECTED with float16 weights in flash --------------------------
 * What float16 quantization (ptq_float16) stores: each weight is the float16 TFLite dequantizes at
 * load time, converted here per MAC (exact: every float16 is a float32), so the sums are those of
 * tme_fc_f32 on the dequantized weights, in the same order, at half the weight bytes. On a core
 * with the FPv4/FPv5 unit the conversion is one VCVTB after the halfword load.
 */
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__) && !defined(TME_PORTABLE)
TME_INLINE float tme_f16_to_f32(uint16_t h) {
    float r;
    const uint32_t x = h;
    __asm__("vmov %0, %1\n\tvcvtb.f32.f16 %0, %0" : "=t"(r) : "r"(x));
    return r;
}
/* the two halves of a word: one VMOV, VCVTB and VCVTT */
TME_INLINE void tme_f16x2_to_f32(uint32_t x, float *lo, float *hi) {
    float a, b;
    __asm__("vmov %0, %2\n\tvcvtt.f32.f16 %1, %0\n\tvcvtb.f32.f16 %0, %0" : "=&t"(a), "=t"(b) : "r"(x));
    *lo = a;
    *hi = b;
}
#else
TME_INLINE float tme_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    union {
        uint32_t u;
        float f;
    } v;
    if (e == 0x1Fu) { /* inf / NaN */
        v.u = sign | 0x7F800000u | (m << 13);
    } else if (e != 0u) { /* normal: rebias the exponent 15 -> 127 */
        v.u = sign | ((e + 112u) << 23) | (m << 13);
    } else { /* zero / subnormal: m * 2^-24, exact in float */
        v.f = (float)m * 5.9604644775390625e-8f;
        v.u |= sign;
    }
    return v.f;
}
TME_INLINE void tme_f16x2_to_f32(uint32_t x, float *lo, float *hi) {
    *lo = tme_f16_to_f32((uint16_t)(x & 0xFFFFu));
    *hi = tme_f16_to_f32((uint16_t)(x >> 16));
}
#endif

static TME_UNUSED void tme_fc_f16w_f32(const tme_fc_f32_params_t *p, const float *in,
                                       const uint16_t *w, const float *bias, float *out) {
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        const uint16_t *wr = w + oc * p->in_n;
        float acc = 0.0f;
        int32_t i = 0;
        for (; i + 1 < p->in_n; i += 2) { /* two weights per (possibly unaligned) word load */
            float w0, w1;
            tme_f16x2_to_f32(tme_load32(wr + i), &w0, &w1);
            acc += in[i] * w0;
            acc += in[i + 1] * w1;
        }
        if (i < p->in_n) {
            acc += in[i] * tme_f16_to_f32(wr[i]);
        }
        out[oc] = tme_clampf(acc + (bias != NULL ? bias[oc] : 0.0f), p->act_min, p->act_max);
    }
}
