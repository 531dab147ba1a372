/*
 * The model API with no model behind it: a 1-byte input, a 1-byte output and an empty invoke.
 * The firmware built with it is the application alone (startup, UART, both protocol dialects,
 * libc), so `flash(firmware with a model) - flash(firmware with this)` is what the model and its
 * inference code take (tinyml_exp.hardware.firmware_stage logs it as flash/firmware_model_bytes).
 */
#ifndef TME_MODEL_H
#define TME_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define TME_MODEL_NAME "null"
#define TME_MODEL_BUILD_ID 0x00000000u
#define TME_MODEL_ACTIVATION_BYTES 2
#define TME_MODEL_INPUT_BYTES 1
#define TME_MODEL_OUTPUT_BYTES 1

typedef struct {
    uint8_t dtype; /* TFLite TensorType: 0 float32, 9 int8 */
    uint8_t rank;
    uint16_t dims[4];
    float scale;
    int32_t zero_point;
    uint32_t bytes;
} tme_tensor_info_t;

extern const tme_tensor_info_t tme_model_input_info;
extern const tme_tensor_info_t tme_model_output_info;

void *tme_model_input(void);
const void *tme_model_output(void);
void tme_model_invoke(void);

#endif /* TME_MODEL_H */
