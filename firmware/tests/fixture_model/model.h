/*
 * Test fixture implementing the model API that tinyml_exp.export.cgen generates, with I/O shaped
 * like the course CNN (int8 1x28x28x1 in, int8 1x10 out) and an output the host can check:
 *
 *   out[k] = clamp((sum of in[i] over i with i % 10 == k) >> 3, -128, 127)     (arithmetic shift)
 *
 * The build id is zlib.crc32(b"tme fixture model v1") since there is no .tflite behind it.
 */
#ifndef TME_MODEL_H
#define TME_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define TME_MODEL_NAME "fixture_sum"
#define TME_MODEL_BUILD_ID 0x38110b6bu
#define TME_MODEL_ACTIVATION_BYTES 794
#define TME_MODEL_INPUT_BYTES 784
#define TME_MODEL_OUTPUT_BYTES 10

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
