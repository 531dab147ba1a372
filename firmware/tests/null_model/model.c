#include "model.h"

static int8_t null_arena[TME_MODEL_ACTIVATION_BYTES];

const tme_tensor_info_t tme_model_input_info = {
    .dtype = 9U,
    .rank = 1U,
    .dims = {1U, 0U, 0U, 0U},
    .scale = 1.0f,
    .zero_point = 0,
    .bytes = TME_MODEL_INPUT_BYTES,
};

const tme_tensor_info_t tme_model_output_info = {
    .dtype = 9U,
    .rank = 1U,
    .dims = {1U, 0U, 0U, 0U},
    .scale = 1.0f,
    .zero_point = 0,
    .bytes = TME_MODEL_OUTPUT_BYTES,
};

void *tme_model_input(void)
{
    return &null_arena[0];
}

const void *tme_model_output(void)
{
    return &null_arena[TME_MODEL_INPUT_BYTES];
}

void tme_model_invoke(void)
{
}
