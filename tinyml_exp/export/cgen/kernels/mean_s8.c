/* ---- tme mean_s8: int8 MEAN over the spatial axes of an NHWC tensor (global average pooling) ----
 * TFLite picks one of several integer formulas for MEAN; the generator selects the same one:
 *  - TME_MEAN_DIV: input and output share scale and zero point: sum / n, truncating (ref Mean);
 *  - TME_MEAN_RESCALE: QuantizedMeanOrSum: (sum - zp_in * n) times a multiplier that already
 *    contains 1 / n (computed by the generator exactly as the reference does), + zp_out.
 * (TFLite 2.21 and TFLite Micro take these paths for keep_dims too.)
 */
#define TME_MEAN_DIV 0
#define TME_MEAN_RESCALE 1

typedef struct {
    int32_t n, ch, mode, in_zp, out_zp, mult, shift;
} tme_mean_params_t;

static TME_UNUSED void tme_mean_s8(const tme_mean_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t c = 0; c < p->ch; ++c) {
        int32_t sum = 0;
        for (int32_t i = 0; i < p->n; ++i) {
            sum += in[i * p->ch + c];
        }
        int32_t v;
        if (p->mode == TME_MEAN_DIV) {
            v = sum / p->n;
        } else {
            v = tme_mbqm(sum - p->in_zp * p->n, p->mult, p->shift) + p->out_zp;
        }
        out[c] = (int8_t)tme_clamp(v, -128, 127);
    }
}
