/* ---- tme dwconv_s8: DEPTHWISE_CONV_2D with depth multiplier 1, 4 channels per pass, SMLAD -------
 * As in the dual-MAC conv, the generator folds the input offset into the bias and padding taps
 * read the input zero point (a row of zero-point bytes in `scratch`), so the loop is a pure dot
 * product. Per output pixel a table of tap pointers (into the input, or the pad row) is built;
 * then per 4 channels and per 2 taps: one word of 4 channels from each tap, SXTB16 (+ ROR 8) gives
 * channels (c, c + 2) and (c + 1, c + 3) of each tap, PKHBT / PKHTB pair the two taps of one
 * channel, and one SMLAD per channel multiplies them with the pre-packed int16 weight pair
 * (w[tap], w[tap + 1]). An odd last tap is paired with a zero weight (and the pad row). A last
 * group of fewer than 4 channels reads its bytes one by one (never past the tensor). */
#define TME_DW_MAX_TAPS 26 /* up to 5 x 5 filters (+1 for the odd tap); the generator checks */

typedef struct {
    int32_t in_h, in_w, ch, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_h, pad_w;
    int32_t tap_pairs, pad_value, out_offset, act_min, act_max, rq_mode;
} tme_dw_params_t;

TME_INLINE uint32_t tme_load_partial(const int8_t *p, int32_t n) {
    uint32_t v = 0;
    for (int32_t k = 0; k < n; ++k) {
        v |= (uint32_t)(uint8_t)p[k] << (8 * k);
    }
    return v;
}

/* acc[j] += channel c + j over all taps; `n` (1..4) channels are real. */
TME_INLINE void tme_dw_group(const int8_t *const *taps, int32_t tap_pairs, int32_t c, int32_t n,
                             const uint32_t *wg, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t t = 0; t < tap_pairs; ++t, wg += 4) {
        const int8_t *p0 = taps[2 * t] + c;
        const int8_t *p1 = taps[2 * t + 1] + c;
        const uint32_t x0 = n == 4 ? tme_load32(p0) : tme_load_partial(p0, n);
        const uint32_t x1 = n == 4 ? tme_load32(p1) : tme_load_partial(p1, n);
        const uint32_t e0 = tme_sxtb16(x0), o0 = tme_sxtb16_ror8(x0);
        const uint32_t e1 = tme_sxtb16(x1), o1 = tme_sxtb16_ror8(x1);
        a0 = tme_smlad(tme_pack_lo(e0, e1), wg[0], a0);
        a1 = tme_smlad(tme_pack_lo(o0, o1), wg[1], a1);
        a2 = tme_smlad(tme_pack_hi(e0, e1), wg[2], a2);
        a3 = tme_smlad(tme_pack_hi(o0, o1), wg[3], a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Tap pointers of output pixel (oy, ox), padding taps on the pad row. */
TME_INLINE void tme_dw_taps(const tme_dw_params_t *p, const int8_t *in, const int8_t *pad,
                            int32_t oy, int32_t ox, const int8_t **taps) {
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    int32_t t = 0;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky;
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx;
            const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
            taps[t++] = inside ? in + (iy * p->in_w + ix) * p->ch : pad;
        }
    }
    if (t < 2 * p->tap_pairs) {
        taps[t] = pad;
    }
}

TME_INLINE void tme_dwconv_body(const tme_dw_params_t *p, const int8_t *in, const uint32_t *wpk,
                                const int32_t *bias, const tme_rq_t *rq, int8_t *pad, int8_t *out,
                                const int32_t mode, const int32_t lo, const int32_t hi) {
    const int32_t ch = p->ch, tap_pairs = p->tap_pairs, zp = p->out_offset;
    const int8_t *taps[TME_DW_MAX_TAPS];
    for (int32_t c = 0; c < ch; ++c) {
        pad[c] = (int8_t)p->pad_value;
    }
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            tme_dw_taps(p, in, pad, oy, ox, taps);
            const uint32_t *wg = wpk;
            for (int32_t c = 0; c < ch; c += 4, wg += 4 * tap_pairs) {
                const int32_t n = TME_MIN(4, ch - c);
                int32_t acc[4] = {bias[c], bias[c + 1], bias[c + 2], bias[c + 3]};
                if (n == 4) {
                    tme_dw_group(taps, tap_pairs, c, 4, wg, acc);
                } else {
                    tme_dw_group(taps, tap_pairs, c, n, wg, acc);
                }
                for (int32_t j = 0; j < n; ++j) {
                    out[c + j] = tme_rq_out(acc[j], rq + c + j, mode, zp, lo, hi);
                }
            }
            out += ch;
        }
    }
}

/* bias: bias' per channel, padded to a multiple of 4; scratch: the pad row (ch bytes). */
static TME_UNUSED void tme_dwconv_s8(const tme_dw_params_t *p, const int8_t *in,
                                     const uint32_t *wpk, const int32_t *bias, const tme_rq_t *rq,
                                     uint32_t *scratch, int8_t *out) {
    int8_t *pad = (int8_t *)(void *)scratch;
    const int32_t lo = p->act_min, hi = p->act_max;
    if (p->rq_mode == TME_RQ_RELU && hi == 127) { /* ReLU: SSAT does the upper clamp */
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_RELU, lo, 127);
    } else if (p->rq_mode == TME_RQ_RELU) {
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_RELU, lo, hi);
    } else if (p->rq_mode == TME_RQ_SIGNED) {
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_SIGNED, lo, hi);
    } else {
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_REFERENCE, lo, hi);
    }
}
