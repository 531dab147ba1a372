/*
 * The measuring app (APP=measure): runs the inputs embedded in the image through the model, one
 * after the other, and reports each inference's counter ticks and raw output over semihosting
 * (tinyml_exp.export.cgen.qemu writes tme_inputs.c and reads the report).
 */
#ifndef TME_MEASURE_H
#define TME_MEASURE_H

#include <stdint.h>

/* Provided by INPUTS_DIR/tme_inputs.c: tme_n_inputs rows of TME_MODEL_INPUT_BYTES each. */
extern const uint32_t tme_n_inputs;
extern const uint8_t tme_inputs[];

#endif /* TME_MEASURE_H */
