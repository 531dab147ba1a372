/* ---- tme conv_enc_f32: float32 CONV_2D on encoded weights (needs f32.c, conv_enc_s8.c) ----------
 * The layouts and tap lists of conv_enc_s8.c with float values and codebooks. The listed taps are
 * summed in tme_conv_acc_f32's order (ky, kx, ic; padding taps skipped) and the bias added after,
 * so only terms x * 0 are left out: the same floats as tme_conv_f32 (finite inputs). */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
    int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, pool_h, pool_w, taps, cb_stride;
    float act_min, act_max;
} tme_conv_enc_f32_params_t;

TME_INLINE float tme_enc_acc_f32(const tme_taps_geom_t *g, const tme_taps_t *tl, const float *val,
                                 const float *in, int32_t iy0, int32_t ix0) {
    const int32_t at = (iy0 * g->in_w + ix0) * g->in_c;
    const int32_t *off = tl->off;
    const int32_t n = tl->n;
    float acc = 0.0f;
    if (tme_window_inside(g, iy0, ix0)) {
        const float *base = in + at;
        for (int32_t k = 0; k < n; ++k) {
            acc += base[off[k]] * val[k];
        }
        return acc;
    }
    for (int32_t k = 0; k < n; ++k) {
        const int32_t iy = iy0 + (int32_t)(tl->kyx[k] & 0xFFu) * g->dil_h;
        const int32_t ix = ix0 + (int32_t)(tl->kyx[k] >> 8) * g->dil_w;
        if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w) {
            acc += in[at + off[k]] * val[k];
        }
    }
    return acc;
}

/* The sums of the 2 x 2 conv pixels as tme_enc_quad_s8 (each pixel's taps in order from 0). */
static TME_UNUSED void tme_enc_quad_f32(const tme_conv_enc_f32_params_t *p, const tme_taps_geom_t *g,
                                        const tme_taps_t *tl, const float *val, const float *in,
                                        int32_t oy, int32_t ox, float *acc) {
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    if (!tme_window_inside(g, iy0, ix0) ||
        !tme_window_inside(g, iy0 + p->stride_h, ix0 + p->stride_w)) {
        for (int32_t j = 0; j < 4; ++j) {
            acc[j] = tme_enc_acc_f32(g, tl, val, in, iy0 + (j >> 1) * p->stride_h,
                                     ix0 + (j & 1) * p->stride_w);
        }
        return;
    }
    const int32_t dx = p->stride_w * p->in_c, dy = p->stride_h * p->in_w * p->in_c;
    const float *b = in + (iy0 * p->in_w + ix0) * p->in_c;
    const int32_t *off = tl->off;
    TME_IN_REGISTER(b); /* else GCC re-adds the arena's address and the offset for every tap */
    TME_IN_REGISTER(off);
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    for (int32_t k = 0; k < tl->n; ++k) {
        const float *q = b + off[k];
        const float v = val[k];
        a0 += q[0] * v;
        a1 += q[dx] * v;
        a2 += q[dy] * v;
        a3 += q[dy + dx] * v;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Every (pooled) output of channel oc, in the blocks of tme_conv_enc_channel_s8. The max over a
 * pool window takes the pixels in the dense kernel's order. */
static TME_UNUSED void tme_conv_enc_channel_f32(const tme_conv_enc_f32_params_t *p,
                                                const tme_taps_geom_t *g, const tme_taps_t *tl,
                                                const float *val, const float *in, float bias,
                                                int32_t oc, float *out) {
    const int32_t out_c = p->out_c, out_w = p->out_w;
    const int32_t pooled_h = p->out_h / p->pool_h, pooled_w = p->out_w / p->pool_w;
    const float lo = p->act_min, hi = p->act_max;
    float acc[4];
    if (p->pool_h == 2 && p->pool_w == 2) {
        for (int32_t py = 0; py < pooled_h; ++py) {
            for (int32_t px = 0; px < pooled_w; ++px) {
                tme_enc_quad_f32(p, g, tl, val, in, 2 * py, 2 * px, acc);
                float best = acc[0] + bias;
                for (int32_t j = 1; j < 4; ++j) {
                    const float v = acc[j] + bias;
                    best = v > best ? v : best;
                }
                out[(py * pooled_w + px) * out_c + oc] = tme_clampf(best, lo, hi);
            }
        }
        return;
    }
    const int32_t quads = p->pool_h == 1 && p->pool_w == 1;
    const int32_t qh = quads ? p->out_h / 2 * 2 : 0, qw = quads ? out_w / 2 * 2 : 0;
    for (int32_t oy = 0; oy < qh; oy += 2) {
        for (int32_t ox = 0; ox < qw; ox += 2) {
            tme_enc_quad_f32(p, g, tl, val, in, oy, ox, acc);
            float *o = out + (oy * out_w + ox) * out_c + oc;
            o[0] = tme_clampf(acc[0] + bias, lo, hi);
            o[out_c] = tme_clampf(acc[1] + bias, lo, hi);
            o[out_w * out_c] = tme_clampf(acc[2] + bias, lo, hi);
            o[(out_w + 1) * out_c] = tme_clampf(acc[3] + bias, lo, hi);
        }
    }
    for (int32_t py = 0; py < pooled_h; ++py) {
        for (int32_t px = py < qh ? qw : 0; px < pooled_w; ++px) {
            float best = 0.0f;
            for (int32_t dy = 0; dy < p->pool_h; ++dy) {
                const int32_t iy0 = (py * p->pool_h + dy) * p->stride_h - p->pad_h;
                for (int32_t dx = 0; dx < p->pool_w; ++dx) {
                    const int32_t ix0 = (px * p->pool_w + dx) * p->stride_w - p->pad_w;
                    const float v = tme_enc_acc_f32(g, tl, val, in, iy0, ix0) + bias;
                    best = (dy == 0 && dx == 0) || v > best ? v : best;
                }
            }
            out[(py * pooled_w + px) * out_c + oc] = tme_clampf(best, lo, hi);
        }
    }
}

TME_INLINE tme_taps_geom_t tme_taps_geom_f32(const tme_conv_enc_f32_params_t *p) {
    const tme_taps_geom_t g = {p->in_h, p->in_w, p->in_c, p->k_h, p->k_w, p->dil_h, p->dil_w, p->taps};
    return g;
}

static TME_UNUSED void tme_conv_bitmask_f32(const tme_conv_enc_f32_params_t *p, const float *in,
                                            const float *vals, const uint32_t *mask,
                                            const float *bias, uint32_t *scratch, float *out) {
    const tme_taps_geom_t g = tme_taps_geom_f32(p);
    int32_t *off = (int32_t *)(void *)scratch;
    uint16_t *kyx = (uint16_t *)(void *)(off + p->taps);
    const int32_t words = (p->taps + 31) / 32;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const tme_taps_t tl = {tme_taps_mask(&g, mask + oc * words, off, kyx), off, kyx};
        tme_conv_enc_channel_f32(p, &g, &tl, vals, in, bias != NULL ? bias[oc] : 0.0f, oc, out);
        vals += tl.n;
    }
}

/* scratch: taps int32 offsets, taps uint16 (ky, kx) padded to a word, taps float weights. */
static TME_UNUSED void tme_conv_clustered_f32(const tme_conv_enc_f32_params_t *p, const float *in,
                                              const uint8_t *idx, const float *codebook,
                                              const float *bias, uint32_t *scratch, float *out) {
    const tme_taps_geom_t g = tme_taps_geom_f32(p);
    int32_t *off = (int32_t *)(void *)scratch;
    uint16_t *kyx = (uint16_t *)(void *)(off + p->taps);
    float *val = (float *)(void *)(off + p->taps + (p->taps + 1) / 2);
    const int32_t row = (p->taps + 1) / 2;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const float *cb = codebook + oc * p->cb_stride;
        const uint8_t *ir = idx + oc * row;
        int32_t n = 0;
        for (int32_t t = 0; t < p->taps; ++t) {
            const float v = cb[(ir[t >> 1] >> ((t & 1) * 4)) & 15u];
            if (v != 0.0f) {
                val[n] = v;
                tme_tap_put(&g, t, n++, off, kyx);
            }
        }
        const tme_taps_t tl = {n, off, kyx};
        tme_conv_enc_channel_f32(p, &g, &tl, val, in, bias != NULL ? bias[oc] : 0.0f, oc, out);
    }
}

static TME_UNUSED void tme_conv_sparse_clustered_f32(const tme_conv_enc_f32_params_t *p,
                                                     const float *in, const uint8_t *idx,
                                                     const uint32_t *mask, const float *codebook,
                                                     const float *bias, uint32_t *scratch,
                                                     float *out) {
    const tme_taps_geom_t g = tme_taps_geom_f32(p);
    int32_t *off = (int32_t *)(void *)scratch;
    uint16_t *kyx = (uint16_t *)(void *)(off + p->taps);
    float *val = (float *)(void *)(off + p->taps + (p->taps + 1) / 2);
    const int32_t words = (p->taps + 31) / 32;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const float *cb = codebook + oc * p->cb_stride;
        int32_t n = 0;
        for (int32_t w = 0; 32 * w < p->taps; ++w) {
            for (uint32_t m = mask[oc * words + w]; m != 0u; m &= m - 1u, ++n) {
                val[n] = cb[(idx[n >> 1] >> ((n & 1) * 4)) & 15u];
                tme_tap_put(&g, 32 * w + tme_ctz(m), n, off, kyx);
            }
        }
        const tme_taps_t tl = {n, off, kyx};
        tme_conv_enc_channel_f32(p, &g, &tl, val, in, bias != NULL ? bias[oc] : 0.0f, oc, out);
        idx += (n + 1) / 2;
    }
}
