/*
 * MLPerf Tiny runner dialect (see tme_mlperf.h and PROTOCOL.md §6). Written from the command set
 * the mlcommons/tiny runner sends (benchmark/runner/device_under_test.py) and the replies its
 * parser expects (benchmark/runner/script.py, benchmark/api/internally_implemented.cpp): lines
 * starting with "m-" (messages) or "e-[" (errors), each command closed by "m-ready".
 */
#include "tme_mlperf.h"

#include <string.h>

#include "model.h"
#include "tme_mlperf_io.h"
#include "tme_port.h"
#include "tme_runner.h"

/* The reference firmware accepts 80 characters per command and its runner sends at most
 * "db " + 31 bytes as hex (65 characters); twice that leaves room for other hosts. */
#define TME_MLPERF_LINE_BYTES 160U
#define TME_MLPERF_MAX_TOKENS 4U
#define TME_MLPERF_DEFAULT_WARMUPS 10U /* the reference's default for `infer N` without W */
#define TME_MLPERF_BYTES_PER_PRINT_LINE 8U
#define TME_MLPERF_CHAR_TERMINATOR '%'

static struct {
    uint8_t *buffer;
    size_t capacity;
    size_t expected;  /* bytes announced by `db load N` */
    size_t loaded;    /* bytes received since */
    char line[TME_MLPERF_LINE_BYTES + 1U];
    size_t line_len;
    int line_active;
    int line_overflow;
} tme_mlperf;

void tme_mlperf_init(tme_proto_write_fn write, void *ctx, uint8_t *buffer, size_t capacity)
{
    memset(&tme_mlperf, 0, sizeof tme_mlperf);
    tme_mlperf_io_init(write, ctx);
    tme_mlperf.buffer = buffer;
    tme_mlperf.capacity = capacity;
}

/* --- commands -------------------------------------------------------------------------------- */

/* Decimal without sign; 0 on an empty string, a non-digit or a value above 2^32 - 1. */
static int tme_mlperf_parse_u32(const char *text, uint32_t *value)
{
    uint32_t result = 0U;
    if (*text == '\0') {
        return 0;
    }
    for (; *text != '\0'; text++) {
        uint32_t digit = (uint32_t)(*text - '0');
        if ((*text < '0') || (*text > '9') || (result > ((0xFFFFFFFFU - digit) / 10U))) {
            return 0;
        }
        result = (result * 10U) + digit;
    }
    *value = result;
    return 1;
}

static int tme_mlperf_hex_digit(char c)
{
    if ((c >= '0') && (c <= '9')) {
        return c - '0';
    }
    if ((c >= 'a') && (c <= 'f')) {
        return c - 'a' + 10;
    }
    if ((c >= 'A') && (c <= 'F')) {
        return c - 'A' + 10;
    }
    return -1;
}

static void tme_mlperf_db_load(const char *count)
{
    uint32_t n = 0U;
    if ((count == NULL) || !tme_mlperf_parse_u32(count, &n) || (n == 0U)) {
        tme_mlperf_error("Command 'db load' requires the number of bytes, > 0");
    } else if (n > tme_mlperf.capacity) {
        tme_mlperf_puts("e-[Supplied buffer size ");
        tme_mlperf_put_u32(n);
        tme_mlperf_puts(" exceeds maximum of ");
        tme_mlperf_put_u32(tme_mlperf.capacity);
        tme_mlperf_puts("]");
        tme_mlperf_line_end();
    } else {
        tme_mlperf.expected = n;
        tme_mlperf.loaded = 0U;
        tme_mlperf_puts("m-[Expecting ");
        tme_mlperf_put_u32(n);
        tme_mlperf_puts(" bytes]");
        tme_mlperf_line_end();
    }
}

static void tme_mlperf_db_hex(const char *hex)
{
    size_t digits = tme_mlperf_length(hex);
    if (tme_mlperf.expected == 0U) {
        tme_mlperf_error("Command 'db load N' must come first");
        return;
    }
    if ((digits & 1U) != 0U) {
        tme_mlperf_error("Insufficient number of hex digits");
        return;
    }
    for (size_t i = 0U; (i < digits) && (tme_mlperf.loaded < tme_mlperf.expected); i += 2U) {
        int high = tme_mlperf_hex_digit(hex[i]);
        int low = tme_mlperf_hex_digit(hex[i + 1U]);
        if ((high < 0) || (low < 0)) {
            char bad[3] = {hex[i], hex[i + 1U], '\0'};
            tme_mlperf_puts("e-[Invalid hex digit '");
            tme_mlperf_puts(bad);
            tme_mlperf_puts("']");
            tme_mlperf_line_end();
            return;
        }
        tme_mlperf.buffer[tme_mlperf.loaded] = (uint8_t)((high << 4) | low);
        tme_mlperf.loaded++;
        if (tme_mlperf.loaded == tme_mlperf.expected) {
            tme_mlperf_puts("m-load-done");
            tme_mlperf_line_end();
        }
    }
}

static void tme_mlperf_db_print(void)
{
    for (size_t i = 0U; i < tme_mlperf.loaded; i++) {
        tme_mlperf_puts(((i % TME_MLPERF_BYTES_PER_PRINT_LINE) == 0U) ? "m-buffer-" : "-");
        tme_mlperf_put_hex8(tme_mlperf.buffer[i]);
        if ((((i + 1U) % TME_MLPERF_BYTES_PER_PRINT_LINE) == 0U) || ((i + 1U) == tme_mlperf.loaded)) {
            tme_mlperf_line_end();
        }
    }
}

static void tme_mlperf_db(const char *const *tokens, size_t count)
{
    if (count < 2U) {
        tme_mlperf_error("Command 'db' requires a subcommand");
    } else if (tme_mlperf_differ(tokens[1], "load") == 0) {
        tme_mlperf_db_load((count > 2U) ? tokens[2] : NULL);
    } else if (tme_mlperf_differ(tokens[1], "print") == 0) {
        tme_mlperf_db_print();
    } else {
        tme_mlperf_db_hex(tokens[1]);
    }
}

/* One output element as a real number: scale * (q - zero_point) for quantized tensors. */
static float tme_mlperf_output_value(const uint8_t *data, size_t index)
{
    const tme_tensor_info_t *info = &tme_model_output_info;
    float raw;
    if (info->dtype == 0U) { /* float32 */
        memcpy(&raw, &data[4U * index], sizeof raw);
        return raw;
    }
    int32_t q;
    if (info->dtype == 9U) { /* int8 */
        q = (int8_t)data[index];
    } else if (info->dtype == 3U) { /* uint8 */
        q = data[index];
    } else if (info->dtype == 7U) { /* int16 */
        int16_t v;
        memcpy(&v, &data[2U * index], sizeof v);
        q = v;
    } else { /* int32 */
        memcpy(&q, &data[4U * index], sizeof q);
    }
    return (info->scale != 0.0f) ? (info->scale * (float)(q - info->zero_point)) : (float)q;
}

static size_t tme_mlperf_output_count(void)
{
    uint8_t dtype = tme_model_output_info.dtype;
    size_t itemsize = ((dtype == 9U) || (dtype == 3U)) ? 1U : ((dtype == 7U) ? 2U : 4U);
    return tme_model_output_info.bytes / itemsize;
}

static void tme_mlperf_results(void)
{
    const uint8_t *output = (const uint8_t *)tme_model_output();
    size_t n = tme_mlperf_output_count();
    tme_mlperf_puts("m-results-[");
    for (size_t i = 0U; i < n; i++) {
        if (i > 0U) {
            tme_mlperf_put(",", 1U);
        }
        tme_mlperf_put_fixed3(tme_mlperf_output_value(output, i));
    }
    tme_mlperf_puts("]");
    tme_mlperf_line_end();
}

static void tme_mlperf_run_once(void)
{
    /* The generated model may reuse its input buffer for activations: reload it every time. */
    memcpy(tme_model_input(), tme_mlperf.buffer, TME_MODEL_INPUT_BYTES);
    (void)tme_runner_invoke_timed();
    (void)tme_mlperf_clock();
    tme_port_watchdog_kick(); /* `infer N` may run for longer than the watchdog allows */
}

static void tme_mlperf_infer(const char *count, const char *warmups)
{
    uint32_t n = 1U;
    uint32_t w = TME_MLPERF_DEFAULT_WARMUPS;
    if ((count != NULL) && (!tme_mlperf_parse_u32(count, &n) || (n == 0U))) {
        tme_mlperf_error("Inference iterations must be >0");
        return;
    }
    if ((warmups != NULL) && !tme_mlperf_parse_u32(warmups, &w)) {
        tme_mlperf_error("Inference warmup must be >=0");
        return;
    }
    if (tme_mlperf.loaded != TME_MODEL_INPUT_BYTES) {
        tme_mlperf_puts("e-[Input not loaded: ");
        tme_mlperf_put_u32(tme_mlperf.loaded);
        tme_mlperf_puts(" bytes received, the model input is ");
        tme_mlperf_put_u32(TME_MODEL_INPUT_BYTES);
        tme_mlperf_puts(" (db load N, then db HH...)]");
        tme_mlperf_line_end();
        return;
    }
    tme_mlperf_message("m-warmup-start-", w);
    for (uint32_t i = 0U; i < w; i++) {
        tme_mlperf_run_once();
    }
    tme_mlperf_puts("m-warmup-done");
    tme_mlperf_line_end();
    tme_mlperf_message("m-infer-start-", n);
    tme_mlperf_lap(tme_mlperf_clock());
    for (uint32_t i = 0U; i < n; i++) {
        tme_mlperf_run_once();
    }
    tme_mlperf_lap(tme_mlperf_clock());
    tme_mlperf_puts("m-infer-done");
    tme_mlperf_line_end();
    tme_mlperf_results();
}

static void tme_mlperf_help(void)
{
    static const char *const lines[] = {
        "tinyml_exp firmware, MLPerf Tiny runner commands (binary protocol v2 on the same port)",
        "name         : Print the name of the device",
        "profile      : Print the benchmark profile and the model",
        "timestamp    : Print the time (m-lap-us-N)",
        "db load N    : Expect N bytes (the raw input tensor)",
        "db HH[HH]*   : Load 8-bit hex byte(s) until N bytes",
        "db print     : Print the loaded bytes as hex",
        "infer N [W]  : Run W warm-up (default 10) then N timed inferences",
        "results      : Print the output of the last inference",
    };
    for (size_t i = 0U; i < (sizeof lines / sizeof lines[0]); i++) {
        tme_mlperf_puts(lines[i]);
        tme_mlperf_line_end();
    }
}

static void tme_mlperf_dispatch(const char *const *tokens, size_t count)
{
    const char *cmd = tokens[0];
    if (tme_mlperf_differ(cmd, "name") == 0) {
        tme_mlperf_puts("m-name-dut-[tinyml_exp]");
        tme_mlperf_line_end();
    } else if (tme_mlperf_differ(cmd, "profile") == 0) {
        tme_mlperf_puts("m-profile-[ULPMark for tinyML Firmware V0.0.1]");
        tme_mlperf_line_end();
        tme_mlperf_puts("m-model-[" TME_MODEL_NAME "]");
        tme_mlperf_line_end();
    } else if (tme_mlperf_differ(cmd, "help") == 0) {
        tme_mlperf_help();
    } else if (tme_mlperf_differ(cmd, "timestamp") == 0) {
        tme_mlperf_lap(tme_mlperf_clock());
    } else if (tme_mlperf_differ(cmd, "db") == 0) {
        tme_mlperf_db(tokens, count);
    } else if (tme_mlperf_differ(cmd, "infer") == 0) {
        tme_mlperf_infer((count > 1U) ? tokens[1] : NULL, (count > 2U) ? tokens[2] : NULL);
    } else if (tme_mlperf_differ(cmd, "results") == 0) {
        tme_mlperf_results();
    } else {
        tme_mlperf_puts("e-[Unknown command: ");
        tme_mlperf_puts(cmd);
        tme_mlperf_puts("]");
        tme_mlperf_line_end();
    }
    tme_mlperf_puts("m-ready");
    tme_mlperf_line_end();
}

/* Splits the line in place at spaces; an empty line (a lone '%') gets no reply at all. */
static void tme_mlperf_run_line(void)
{
    const char *tokens[TME_MLPERF_MAX_TOKENS];
    size_t count = 0U;
    char *p = tme_mlperf.line;
    tme_mlperf.line[tme_mlperf.line_len] = '\0';
    while ((*p != '\0') && (count < TME_MLPERF_MAX_TOKENS)) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        tokens[count++] = p;
        while ((*p != ' ') && (*p != '\0')) {
            p++;
        }
    }
    if (count > 0U) {
        tme_mlperf_dispatch(tokens, count);
    }
}

int tme_mlperf_line_active(void)
{
    return tme_mlperf.line_active;
}

int tme_mlperf_starts_line(uint8_t byte)
{
    return (byte >= 0x20U) && (byte <= 0x7EU);
}

int tme_mlperf_feed(uint8_t byte)
{
    if (!tme_mlperf_starts_line(byte)) {
        if (tme_mlperf.line_active && ((byte == '\r') || (byte == '\n') || (byte == '\t'))) {
            return 1; /* line-ending habits of terminals and other hosts: ignored */
        }
        tme_mlperf.line_active = 0; /* a binary frame (or noise) interrupts a partial line */
        return 0;
    }
    if (!tme_mlperf.line_active) {
        tme_mlperf.line_active = 1;
        tme_mlperf.line_len = 0U;
        tme_mlperf.line_overflow = 0;
    }
    if (byte == (uint8_t)TME_MLPERF_CHAR_TERMINATOR) {
        tme_mlperf.line_active = 0;
        if (tme_mlperf.line_overflow) {
            tme_mlperf_error("Command too long");
            tme_mlperf_puts("m-ready");
            tme_mlperf_line_end();
        } else {
            tme_mlperf_run_line();
        }
        return 1;
    }
    if (tme_mlperf.line_len < TME_MLPERF_LINE_BYTES) {
        tme_mlperf.line[tme_mlperf.line_len++] = (char)byte;
    } else {
        tme_mlperf.line_overflow = 1;
    }
    return 1;
}
