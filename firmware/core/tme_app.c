#include "tme_app.h"

#include <string.h>

#include "model.h"
#include "tme_mlperf.h"
#include "tme_port.h"
#include "tme_runner.h"

/*
 * Requests are received into one buffer, sized for the model input; at least this many bytes so
 * that ECHO can exercise the link (and the host can test it) even for a model with a tiny input.
 * The text dialect's `db` commands load the input into the same buffer.
 */
#define TME_APP_ECHO_MIN_BYTES 256U
#define TME_APP_RX_BYTES \
    ((TME_MODEL_INPUT_BYTES > TME_APP_ECHO_MIN_BYTES) ? TME_MODEL_INPUT_BYTES : TME_APP_ECHO_MIN_BYTES)

#define TME_APP_NAME_BYTES (sizeof(TME_MODEL_NAME) - 1U)
#define TME_APP_BOARD_BYTES (sizeof(TME_PORT_BOARD_NAME) - 1U)
/* IDENTIFY payload (PROTOCOL.md §4.1): 16 fixed bytes, two 22-byte tensors, two counted strings. */
#define TME_APP_TENSOR_BYTES 22U
#define TME_APP_IDENTIFY_BYTES \
    (16U + (2U * TME_APP_TENSOR_BYTES) + 1U + TME_APP_NAME_BYTES + 1U + TME_APP_BOARD_BYTES)
#define TME_APP_COUNT_BYTES 4U

_Static_assert(TME_MODEL_INPUT_BYTES <= TME_PROTO_MAX_PAYLOAD_BYTES,
               "protocol v2 carries at most 65535 payload bytes: the model input is too large");
_Static_assert(TME_MODEL_OUTPUT_BYTES + TME_APP_COUNT_BYTES <= TME_PROTO_MAX_PAYLOAD_BYTES,
               "protocol v2 carries at most 65535 payload bytes: the model output is too large");
_Static_assert(TME_APP_NAME_BYTES <= 255U, "TME_MODEL_NAME is longer than 255 bytes");
_Static_assert(TME_APP_BOARD_BYTES <= 255U, "TME_PORT_BOARD_NAME is longer than 255 bytes");

static uint8_t tme_app_rx[TME_APP_RX_BYTES];
static tme_proto_parser_t tme_app_parser;
static tme_proto_writer_t tme_app_writer;

void tme_app_init(tme_proto_write_fn write, void *ctx)
{
    tme_proto_parser_init(&tme_app_parser, tme_app_rx, (uint16_t)TME_APP_RX_BYTES);
    tme_proto_writer_init(&tme_app_writer, write, ctx);
    tme_mlperf_init(write, ctx, tme_app_rx, TME_APP_RX_BYTES);
}

void tme_app_send_boot(void)
{
    tme_proto_send(&tme_app_writer, TME_CMD_BOOT, 0U, NULL, 0U);
}

static uint8_t *tme_app_put_tensor(uint8_t *dst, const tme_tensor_info_t *info)
{
    uint32_t scale_bits;
    memcpy(&scale_bits, &info->scale, sizeof scale_bits); /* IEEE-754 bits travel as an integer */
    dst[0] = info->dtype;
    dst[1] = info->rank;
    for (uint32_t i = 0U; i < 4U; i++) {
        tme_proto_put_u16(&dst[2U + (2U * i)], info->dims[i]);
    }
    tme_proto_put_u32(&dst[10], scale_bits);
    tme_proto_put_u32(&dst[14], (uint32_t)info->zero_point);
    tme_proto_put_u32(&dst[18], info->bytes);
    return dst + TME_APP_TENSOR_BYTES;
}

static void tme_app_identify(uint8_t seq)
{
    uint8_t payload[TME_APP_IDENTIFY_BYTES];
    uint8_t *p = payload;
    p[0] = (uint8_t)TME_PROTO_VERSION;
    p[1] = (uint8_t)TME_PORT_COUNTER_UNIT;
    tme_proto_put_u16(&p[2], (uint16_t)TME_APP_RX_BYTES);
    tme_proto_put_u32(&p[4], (uint32_t)TME_MODEL_BUILD_ID);
    tme_proto_put_u32(&p[8], (uint32_t)TME_PORT_CLOCK_HZ);
    tme_proto_put_u32(&p[12], (uint32_t)TME_MODEL_ACTIVATION_BYTES);
    p = tme_app_put_tensor(&p[16], &tme_model_input_info);
    p = tme_app_put_tensor(p, &tme_model_output_info);
    *p++ = (uint8_t)TME_APP_NAME_BYTES;
    memcpy(p, TME_MODEL_NAME, TME_APP_NAME_BYTES);
    p += TME_APP_NAME_BYTES;
    *p++ = (uint8_t)TME_APP_BOARD_BYTES;
    memcpy(p, TME_PORT_BOARD_NAME, TME_APP_BOARD_BYTES);
    tme_proto_send(&tme_app_writer, TME_CMD_IDENTIFY | TME_CMD_REPLY_FLAG, seq, payload,
                   (uint16_t)sizeof payload);
}

static void tme_app_infer(uint8_t seq)
{
    uint8_t count_bytes[TME_APP_COUNT_BYTES];
    memcpy(tme_model_input(), tme_app_rx, TME_MODEL_INPUT_BYTES);
    tme_proto_put_u32(count_bytes, tme_runner_invoke_timed());
    tme_proto_begin(&tme_app_writer, TME_CMD_INFER | TME_CMD_REPLY_FLAG, seq,
                    (uint16_t)(TME_APP_COUNT_BYTES + TME_MODEL_OUTPUT_BYTES));
    tme_proto_put(&tme_app_writer, count_bytes, sizeof count_bytes);
    tme_proto_put(&tme_app_writer, (const uint8_t *)tme_model_output(), TME_MODEL_OUTPUT_BYTES);
    tme_proto_end(&tme_app_writer);
}

/*
 * INFER_RANDOM (PROTOCOL.md §4.7): inputs made on the device, so that a thousand inferences do not
 * wait on the link (QEMU's UART takes one byte per main-loop pass: ~2-3 kB/s under load).
 * Input `index` of seed S: state = fmix32(S + index * 0x9E3779B9) (murmur3's finaliser, a
 * bijection: nearby indices give unrelated states; 0 becomes 1, xorshift's only forbidden state),
 * then byte k is the top byte of the state after the (k + 1)-th xorshift32 (13, 17, 5) step.
 * tinyml_exp/hardware/protocol.py (random_inputs) generates the same bytes.
 */
#define TME_APP_RANDOM_REQUEST_BYTES 10U
#define TME_APP_RANDOM_ENTRY_BYTES (TME_APP_COUNT_BYTES + TME_MODEL_OUTPUT_BYTES)
#define TME_APP_RANDOM_MAX_COUNT (TME_PROTO_MAX_PAYLOAD_BYTES / TME_APP_RANDOM_ENTRY_BYTES)

static uint32_t tme_app_random_state(uint32_t seed, uint32_t index)
{
    uint32_t x = seed + (index * 0x9E3779B9U);
    x ^= x >> 16;
    x *= 0x85EBCA6BU;
    x ^= x >> 13;
    x *= 0xC2B2AE35U;
    x ^= x >> 16;
    return (x == 0U) ? 1U : x;
}

static void tme_app_random_fill(uint8_t *dst, uint32_t state)
{
    for (uint32_t k = 0U; k < (uint32_t)TME_MODEL_INPUT_BYTES; k++) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        dst[k] = (uint8_t)(state >> 24);
    }
}

static uint32_t tme_app_get_u32(const uint8_t *src)
{
    return (uint32_t)src[0] | ((uint32_t)src[1] << 8) | ((uint32_t)src[2] << 16) | ((uint32_t)src[3] << 24);
}

static void tme_app_infer_random(const tme_proto_parser_t *frame)
{
    if (frame->length != TME_APP_RANDOM_REQUEST_BYTES) {
        tme_proto_send_error(&tme_app_writer, frame->seq, TME_ERR_BAD_LENGTH, frame->cmd,
                             TME_APP_RANDOM_REQUEST_BYTES);
        return;
    }
    uint32_t seed = tme_app_get_u32(&frame->payload[0]);
    uint32_t first = tme_app_get_u32(&frame->payload[4]);
    uint32_t count = (uint32_t)frame->payload[8] | ((uint32_t)frame->payload[9] << 8);
    if ((count == 0U) || (count > TME_APP_RANDOM_MAX_COUNT)) {
        tme_proto_send_error(&tme_app_writer, frame->seq, TME_ERR_BAD_LENGTH, frame->cmd,
                             (uint32_t)TME_APP_RANDOM_MAX_COUNT);
        return;
    }
    uint8_t seq = frame->seq; /* the frame's fields stay valid: no byte is parsed meanwhile */
    /* Streamed: each entry leaves as soon as its inference is done, with no reply-sized buffer. */
    tme_proto_begin(&tme_app_writer, TME_CMD_INFER_RANDOM | TME_CMD_REPLY_FLAG, seq,
                    (uint16_t)(count * TME_APP_RANDOM_ENTRY_BYTES));
    for (uint32_t i = 0U; i < count; i++) {
        uint8_t count_bytes[TME_APP_COUNT_BYTES];
        tme_app_random_fill((uint8_t *)tme_model_input(), tme_app_random_state(seed, first + i));
        tme_proto_put_u32(count_bytes, tme_runner_invoke_timed());
        tme_proto_put(&tme_app_writer, count_bytes, sizeof count_bytes);
        tme_proto_put(&tme_app_writer, (const uint8_t *)tme_model_output(), TME_MODEL_OUTPUT_BYTES);
        tme_port_watchdog_kick(); /* a long request is progress, like the text dialect's `infer N` */
    }
    tme_proto_end(&tme_app_writer);
}

#ifdef TME_PROFILE_LAYERS
_Static_assert(TME_MODEL_LAYERS * 4U <= TME_PROTO_MAX_PAYLOAD_BYTES,
               "protocol v2 carries at most 65535 payload bytes: too many layers for LAYERS");

/* LAYERS reply (PROTOCOL.md §4.6): one u32 per kernel call of the last inference, in order. */
static void tme_app_layers(uint8_t seq)
{
    tme_proto_begin(&tme_app_writer, TME_CMD_LAYERS | TME_CMD_REPLY_FLAG, seq,
                    (uint16_t)(TME_MODEL_LAYERS * 4U));
    for (uint32_t i = 0U; i < (uint32_t)TME_MODEL_LAYERS; i++) {
        uint8_t count_bytes[4];
        tme_proto_put_u32(count_bytes, tme_model_layer_counts[i]);
        tme_proto_put(&tme_app_writer, count_bytes, sizeof count_bytes);
    }
    tme_proto_end(&tme_app_writer);
}
#endif

#ifdef TME_TEST_HANG_AFTER
/* Test builds only: the device stops answering for good (no more watchdog kicks) once it has
 * answered TME_TEST_HANG_AFTER INFER requests since it booted, as a firmware bug would. */
static void tme_app_test_hang(void)
{
    static uint32_t answered;
    if (answered >= (uint32_t)(TME_TEST_HANG_AFTER)) {
        for (;;) {
            __asm__ volatile("" ::: "memory");
        }
    }
    answered++;
}
#endif

static void tme_app_dispatch(const tme_proto_parser_t *frame)
{
    switch (frame->cmd) {
    case TME_CMD_IDENTIFY:
        if (frame->length != 0U) {
            tme_proto_send_error(&tme_app_writer, frame->seq, TME_ERR_BAD_LENGTH, frame->cmd, 0U);
        } else {
            tme_app_identify(frame->seq);
        }
        break;
    case TME_CMD_INFER:
#ifdef TME_TEST_HANG_AFTER
        tme_app_test_hang();
#endif
        if (frame->length != TME_MODEL_INPUT_BYTES) {
            tme_proto_send_error(&tme_app_writer, frame->seq, TME_ERR_BAD_INPUT_SIZE, frame->cmd,
                                 (uint32_t)TME_MODEL_INPUT_BYTES);
        } else {
            tme_app_infer(frame->seq);
        }
        break;
    case TME_CMD_ECHO:
        tme_proto_send(&tme_app_writer, TME_CMD_ECHO | TME_CMD_REPLY_FLAG, frame->seq, frame->payload,
                       frame->length);
        break;
    case TME_CMD_INFER_RANDOM:
        tme_app_infer_random(frame);
        break;
#ifdef TME_PROFILE_LAYERS
    case TME_CMD_LAYERS:
        if (frame->length != 0U) {
            tme_proto_send_error(&tme_app_writer, frame->seq, TME_ERR_BAD_LENGTH, frame->cmd, 0U);
        } else {
            tme_app_layers(frame->seq);
        }
        break;
#endif
    default:
        tme_proto_send_error(&tme_app_writer, frame->seq, TME_ERR_UNKNOWN_COMMAND, frame->cmd, 0U);
        break;
    }
}

void tme_app_feed(const uint8_t *data, size_t len)
{
    for (size_t i = 0U; i < len; i++) {
        /* Dialect choice (PROTOCOL.md §6): between frames, printable ASCII is a text command. */
        if (tme_mlperf_line_active() ||
            (tme_proto_parser_hunting(&tme_app_parser) && tme_mlperf_starts_line(data[i]))) {
            if (tme_mlperf_feed(data[i])) {
                continue;
            }
        }
        tme_proto_event_t event = tme_proto_parser_feed(&tme_app_parser, data[i]);
        if (event == TME_PROTO_EVENT_FRAME) {
            tme_app_dispatch(&tme_app_parser);
        } else if (event == TME_PROTO_EVENT_ERROR) {
            tme_proto_send_error(&tme_app_writer, tme_app_parser.seq, tme_app_parser.error,
                                 tme_app_parser.cmd, tme_app_parser.error_detail);
        } else {
            /* byte consumed, nothing to answer yet */
        }
    }
}
