/* ---- tme f32: float32 kernels, summation order of TFLite's reference kernels ---------------------
 * Results agree with TFLite to rounding (the host compiler may contract a * b + c into an FMA on
 * targets that have one, which changes the last bit, not the tolerance the tests check).
 */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
    int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
    int32_t depth_multiplier, pool_h, pool_w;
    float act_min, act_max;
} tme_conv_f32_params_t;

static float tme_conv_acc_f32(const tme_conv_f32_params_t *p, const float *in, const float *w,
                              int32_t oy, int32_t ox, int32_t oc) {
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    float acc = 0.0f;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            continue;
        }
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (ix < 0 || ix >= p->in_w) {
                continue;
            }
            if (p->depth_multiplier == 0) {
                const float *ip = in + (iy * p->in_w + ix) * p->in_c;
                const float *wp = w + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                for (int32_t ic = 0; ic < p->in_c; ++ic) {
                    acc += ip[ic] * wp[ic];
                }
            } else {
                const int32_t ic = oc / p->depth_multiplier;
                acc += in[(iy * p->in_w + ix) * p->in_c + ic] * w[(ky * p->k_w + kx) * p->out_c + oc];
            }
        }
    }
    return acc;
}

TME_INLINE float tme_clampf(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* CONV_2D / DEPTHWISE_CONV_2D, optionally fused with a non-overlapping max-pool (exact: adding
 * the bias and clamping are monotonic, so the max commutes with them). */
static TME_UNUSED void tme_conv_f32(const tme_conv_f32_params_t *p, const float *in, const float *w,
                                    const float *bias, float *out) {
    for (int32_t py = 0; py < p->out_h / p->pool_h; ++py) {
        for (int32_t px = 0; px < p->out_w / p->pool_w; ++px) {
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                float best = 0.0f;
                for (int32_t dy = 0; dy < p->pool_h; ++dy) {
                    for (int32_t dx = 0; dx < p->pool_w; ++dx) {
                        const float v = tme_conv_acc_f32(p, in, w, py * p->pool_h + dy,
                                                         px * p->pool_w + dx, oc) +
                                        (bias != NULL ? bias[oc] : 0.0f);
                        best = (dy == 0 && dx == 0) || v > best ? v : best;
                    }
                }
                *out++ = tme_clampf(best, p->act_min, p->act_max);
            }
        }
    }
}

typedef struct {
    int32_t in_n, out_n;
    float act_min, act_max;
} tme_fc_f32_params_t;

static TME_UNUSED void tme_fc_f32(const tme_fc_f32_params_t *p, const float *in, const float *w,
                                  const float *bias, float *out) {
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        float acc = 0.0f;
        for (int32_t i = 0; i < p->in_n; ++i) {
            acc += in[i] * w[oc * p->in_n + i];
        }
        out[oc] = tme_clampf(acc + (bias != NULL ? bias[oc] : 0.0f), p->act_min, p->act_max);
    }
}

typedef struct {
    int32_t in_h, in_w, ch, out_h, out_w, f_h, f_w, stride_h, stride_w, pad_h, pad_w, is_avg;
    float act_min, act_max;
} tme_pool_f32_params_t;

static TME_UNUSED void tme_pool_f32(const tme_pool_f32_params_t *p, const float *in, float *out) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        const int32_t fy0 = TME_MAX(0, -iy0), fy1 = TME_MIN(p->f_h, p->in_h - iy0);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_w;
            const int32_t fx0 = TME_MAX(0, -ix0), fx1 = TME_MIN(p->f_w, p->in_w - ix0);
            for (int32_t c = 0; c < p->ch; ++c) {
                float acc = p->is_avg ? 0.0f : -3.402823466e+38f;
                int32_t count = 0;
                for (int32_t fy = fy0; fy < fy1; ++fy) {
                    for (int32_t fx = fx0; fx < fx1; ++fx) {
                        const float v = in[((iy0 + fy) * p->in_w + ix0 + fx) * p->ch + c];
                        acc = p->is_avg ? acc + v : (v > acc ? v : acc);
                        ++count;
                    }
                }
                if (p->is_avg) {
                    acc = acc / (float)count;
                }
                *out++ = tme_clampf(acc, p->act_min, p->act_max);
            }
        }
    }
}

typedef struct {
    int32_t n;
    float act_min, act_max;
} tme_add_f32_params_t;

static TME_UNUSED void tme_add_f32(const tme_add_f32_params_t *p, const float *a, const float *b,
                                   float *out) {
    for (int32_t i = 0; i < p->n; ++i) {
        out[i] = tme_clampf(a[i] + b[i], p->act_min, p->act_max);
    }
}

typedef struct {
    int32_t n, ch;
} tme_mean_f32_params_t;

static TME_UNUSED void tme_mean_f32(const tme_mean_f32_params_t *p, const float *in, float *out) {
    for (int32_t c = 0; c < p->ch; ++c) {
        float sum = 0.0f;
        for (int32_t i = 0; i < p->n; ++i) {
            sum += in[i * p->ch + c];
        }
        out[c] = sum / (float)p->n;
    }
}

/* expf without libm: exp(x) = 2^k * exp(r), |r| <= ln2/2, degree-7 Taylor polynomial on r
 * (relative error < 2e-7 over the softmax range x <= 0). */
static float tme_expf(float x) {
    if (x < -87.0f) {
        return 0.0f;
    }
    const float k = (float)(int32_t)(x * 1.44269504f + (x < 0 ? -0.5f : 0.5f));
    const float r = x - k * 0.693145752f - k * 1.42860677e-6f;
    float e = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666672e-1f + r * (4.16666679e-2f +
              r * (8.33333377e-3f + r * (1.38888892e-3f + r * 1.98412701e-4f))))));
    union {
        float f;
        int32_t i;
    } s;
    s.i = ((int32_t)k + 127) << 23;
    return e * s.f;
}

typedef struct {
    int32_t rows, depth;
    float beta;
} tme_softmax_f32_params_t;

static TME_UNUSED void tme_softmax_f32(const tme_softmax_f32_params_t *p, const float *in,
                                       float *out) {
    for (int32_t r = 0; r < p->rows; ++r, in += p->depth, out += p->depth) {
        float mx = in[0];
        for (int32_t c = 1; c < p->depth; ++c) {
            mx = in[c] > mx ? in[c] : mx;
        }
        float sum = 0.0f;
        for (int32_t c = 0; c < p->depth; ++c) {
            out[c] = tme_expf((in[c] - mx) * p->beta);
            sum += out[c];
        }
        for (int32_t c = 0; c < p->depth; ++c) {
            out[c] = out[c] / sum;
        }
    }
}
