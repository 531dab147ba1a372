/* ---- tme conv_s8: int8 CONV_2D / DEPTHWISE_CONV_2D, per-channel requantization -----------------
 * Arithmetic of TFLite's reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel:
 * acc = sum (x + in_offset) * w over the taps inside the input (padding contributes nothing),
 * + bias, MultiplyByQuantizedMultiplier per output channel, + out_offset, clamp.
 * An optional max-pool over non-overlapping windows of the conv output is fused in: the max is
 * taken over the raw accumulators and requantized once, which is exact because requantization
 * and the clamp are monotonic non-decreasing (the generator only fuses when every multiplier is
 * non-negative and the left shift cannot overflow).
 */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
    int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
    int32_t depth_multiplier; /* 0 for CONV_2D, >= 1 for DEPTHWISE_CONV_2D */
    int32_t pool_h, pool_w;   /* fused max-pool window = stride; 1 x 1 when not fused */
    int32_t in_offset, out_offset, act_min, act_max;
} tme_conv_params_t;

/* The filter window of one output pixel clipped to the input: taps [k0, k1) in each direction
 * (padding taps are skipped, like the reference). */
typedef struct {
    int32_t iy0, ix0, ky0, ky1, kx0, kx1;
} tme_window_t;

TME_INLINE void tme_tap_range(int32_t origin, int32_t dil, int32_t k, int32_t size, int32_t *k0,
                              int32_t *k1) {
    int32_t lo = 0;
    int32_t hi = k;
    while (lo < hi && origin + lo * dil < 0) {
        ++lo;
    }
    while (hi > lo && origin + (hi - 1) * dil >= size) {
        --hi;
    }
    *k0 = lo;
    *k1 = hi;
}

TME_INLINE tme_window_t tme_window(const tme_conv_params_t *p, int32_t oy, int32_t ox) {
    tme_window_t win;
    win.iy0 = oy * p->stride_h - p->pad_h;
    win.ix0 = ox * p->stride_w - p->pad_w;
    tme_tap_range(win.iy0, p->dil_h, p->k_h, p->in_h, &win.ky0, &win.ky1);
    tme_tap_range(win.ix0, p->dil_w, p->k_w, p->in_w, &win.kx0, &win.kx1);
    return win;
}

static int32_t tme_conv_acc_s8(const tme_conv_params_t *p, const int8_t *in, const int8_t *w,
                               const tme_window_t *win, int32_t oc) {
    const int32_t off = p->in_offset;
    int32_t acc = 0;
    for (int32_t ky = win->ky0; ky < win->ky1; ++ky) {
        const int32_t iy = win->iy0 + ky * p->dil_h;
        for (int32_t kx = win->kx0; kx < win->kx1; ++kx) {
            const int32_t ix = win->ix0 + kx * p->dil_w;
            if (p->depth_multiplier == 0) {
                const int8_t *ip = in + (iy * p->in_w + ix) * p->in_c;
                const int8_t *wp = w + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                for (int32_t ic = 0; ic < p->in_c; ++ic) {
                    acc += (ip[ic] + off) * wp[ic];
                }
            } else {
                const int32_t x = in[(iy * p->in_w + ix) * p->in_c + oc / p->depth_multiplier];
                acc += (x + off) * w[(ky * p->k_w + kx) * p->out_c + oc];
            }
        }
    }
    return acc;
}

TME_INLINE int8_t tme_conv_out_s8(const tme_conv_params_t *p, int32_t acc, const int32_t *bias,
                                  const int32_t *mult, const int32_t *shift, int32_t oc) {
    if (bias != NULL) {
        acc += bias[oc];
    }
    const int32_t v = tme_mbqm(acc, mult[oc], shift[oc]) + p->out_offset;
    return (int8_t)tme_clamp(v, p->act_min, p->act_max);
}

static TME_UNUSED void tme_conv_s8(const tme_conv_params_t *p, const int8_t *in, const int8_t *w,
                                   const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                   int8_t *out) {
    const int32_t pooled_h = p->out_h / p->pool_h;
    const int32_t pooled_w = p->out_w / p->pool_w;
    for (int32_t py = 0; py < pooled_h; ++py) {
        for (int32_t px = 0; px < pooled_w; ++px) {
            if (p->pool_h == 1 && p->pool_w == 1) {
                const tme_window_t win = tme_window(p, py, px);
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    *out++ = tme_conv_out_s8(p, tme_conv_acc_s8(p, in, w, &win, oc), bias, mult, shift, oc);
                }
                continue;
            }
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                int32_t best = INT32_MIN;
                for (int32_t dy = 0; dy < p->pool_h; ++dy) {
                    for (int32_t dx = 0; dx < p->pool_w; ++dx) {
                        const tme_window_t win = tme_window(p, py * p->pool_h + dy, px * p->pool_w + dx);
                        best = TME_MAX(best, tme_conv_acc_s8(p, in, w, &win, oc));
                    }
                }
                *out++ = tme_conv_out_s8(p, best, bias, mult, shift, oc);
            }
        }
    }
}

/* ---- fast path: 1 input channel, 3 x 3 taps, stride 1, VALID, fused 2 x 2 / 2 max-pool ----------
 * The four input rows under one pool window are loaded as words and split into even and odd bytes
 * with SXTB16: E = (b0, b2), O = (b1, b3). For the left pixel a row contributes E . (w0, w2) + b1 w1,
 * for the right pixel O . (w0, w2) + b2 w1, so each row is one SMLAD plus one 16 x 16 MAC picking
 * the right halves, and no repacking is needed. Rows are consumed in order, which keeps few values
 * live. Weights come pre-packed as int16 pairs, 5 words per channel:
 *   A0 = (w00, w02)  A1 = (w10, w12)  A2 = (w20, w22)  M01 = (w01, w11)  M2 = (w21, 0)
 * The input offset is folded into the bias by the generator (exact: no padding taps). */
typedef struct {
    int32_t in_w, out_c, pooled_h, pooled_w, act_min, act_max;
    int32_t rq_mode, out_offset; /* TME_RQ_RELU (bias in rq.c) or TME_RQ_REFERENCE (rq.c = bias) */
} tme_c1k3p2_params_t;

static TME_UNUSED void tme_conv_c1k3p2_s8(const tme_c1k3p2_params_t *p, const int8_t *in,
                                          const uint32_t *wpk, const tme_rq_t *rq, int8_t *out) {
    const int32_t in_w = p->in_w;
    for (int32_t c = 0; c < p->out_c; ++c) {
        const uint32_t *wc = wpk + 5 * c;
        const tme_rq_t *q = rq + c;
        int8_t *o = out + c;
        for (int32_t py = 0; py < p->pooled_h; ++py) {
            const int8_t *row = in + 2 * py * in_w;
            for (int32_t px = 0; px < p->pooled_w; ++px) {
                /* a, b: top-left / top-right conv pixel; c2, d: bottom-left / bottom-right */
                uint32_t r = tme_load32(row);
                uint32_t e = tme_sxtb16(r), od = tme_sxtb16_ror8(r);
                int32_t a = tme_smlabb(od, wc[3], tme_smuad(e, wc[0]));
                int32_t b = tme_smlatb(e, wc[3], tme_smuad(od, wc[0]));
                r = tme_load32(row + in_w);
                e = tme_sxtb16(r);
                od = tme_sxtb16_ror8(r);
                a = tme_smlabt(od, wc[3], tme_smlad(e, wc[1], a));
                b = tme_smlatt(e, wc[3], tme_smlad(od, wc[1], b));
                int32_t c2 = tme_smlabb(od, wc[3], tme_smuad(e, wc[0]));
                int32_t d = tme_smlatb(e, wc[3], tme_smuad(od, wc[0]));
                r = tme_load32(row + 2 * in_w);
                e = tme_sxtb16(r);
                od = tme_sxtb16_ror8(r);
                a = tme_smlabb(od, wc[4], tme_smlad(e, wc[2], a));
                b = tme_smlatb(e, wc[4], tme_smlad(od, wc[2], b));
                c2 = tme_smlabt(od, wc[3], tme_smlad(e, wc[1], c2));
                d = tme_smlatt(e, wc[3], tme_smlad(od, wc[1], d));
                r = tme_load32(row + 3 * in_w);
                e = tme_sxtb16(r);
                od = tme_sxtb16_ror8(r);
                c2 = tme_smlabb(od, wc[4], tme_smlad(e, wc[2], c2));
                d = tme_smlatb(e, wc[4], tme_smlad(od, wc[2], d));
                const int32_t best = TME_MAX(TME_MAX(a, b), TME_MAX(c2, d));
                const int32_t v = tme_requant(best, q, p->rq_mode, p->out_offset);
                *o = (int8_t)tme_clamp_s8(v, p->act_min, p->act_max);
                o += p->out_c;
                row += 2;
            }
        }
    }
}
