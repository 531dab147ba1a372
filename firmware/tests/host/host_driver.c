/*
 * Host driver for the board-independent core (tme_proto, tme_app with the fixture model).
 *
 *   host_driver fuzz SEED FRAMES   random and mutated frames through the parser and the app; exits
 *                                  non-zero on the first broken expectation; meant to run under
 *                                  -fsanitize=address,undefined
 *   host_driver decode CAPACITY    stdin -> parser; one line per event on stdout
 *   host_driver app                stdin -> tme_app_feed; the device's replies on stdout
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "tme_app.h"
#include "tme_crc.h"
#include "tme_port.h"
#include "tme_proto.h"

#define HOST_MAX_FRAME (TME_PROTO_MAX_PAYLOAD_BYTES + TME_PROTO_OVERHEAD_BYTES)
#define HOST_FAIL(...)                                                   \
    do {                                                                 \
        fprintf(stderr, "FAIL %s:%d (case %lu): ", __FILE__, __LINE__, host_case); \
        fprintf(stderr, __VA_ARGS__);                                    \
        fputc('\n', stderr);                                             \
        exit(1);                                                         \
    } while (0)
#define HOST_CHECK(cond, ...)      \
    do {                           \
        if (!(cond)) {             \
            HOST_FAIL(__VA_ARGS__); \
        }                          \
    } while (0)

static unsigned long host_case;
static uint32_t host_counter;
static uint64_t host_rng = 0x9E3779B97F4A7C15ULL;

uint32_t tme_host_counter_read(void)
{
    host_counter += TME_HOST_COUNTER_STEP;
    return host_counter;
}

static uint32_t host_rand(void) /* xorshift64* */
{
    host_rng ^= host_rng >> 12;
    host_rng ^= host_rng << 25;
    host_rng ^= host_rng >> 27;
    return (uint32_t)((host_rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static uint32_t host_below(uint32_t n)
{
    return (n == 0U) ? 0U : (host_rand() % n);
}

static void host_fill(uint8_t *dst, size_t n)
{
    for (size_t i = 0U; i < n; i++) {
        dst[i] = (uint8_t)host_rand();
    }
}

/* Random bytes that are never a start marker, so they cannot start a frame. */
static void host_fill_garbage(uint8_t *dst, size_t n)
{
    for (size_t i = 0U; i < n; i++) {
        do {
            dst[i] = (uint8_t)host_rand();
        } while (dst[i] == TME_PROTO_SOF);
    }
}

/* Frame builder written from PROTOCOL.md independently of tme_proto's writer. */
static size_t host_build(uint8_t *out, uint8_t version, uint8_t cmd, uint8_t seq, const uint8_t *payload,
                         uint16_t len)
{
    out[0] = TME_PROTO_SOF;
    out[1] = version;
    out[2] = cmd;
    out[3] = seq;
    out[4] = (uint8_t)len;
    out[5] = (uint8_t)(len >> 8);
    /* PROTOCOL.md §2: HCRC initial value 0x00 for VER 1, 0xFF for every other VER. */
    out[6] = tme_crc8((version == 1U) ? 0x00U : 0xFFU, &out[1], 5U);
    memcpy(&out[7], payload, len);
    uint32_t crc = tme_crc32(0U, &out[1], 6U + (size_t)len);
    tme_proto_put_u32(&out[7U + len], crc);
    return TME_PROTO_OVERHEAD_BYTES + (size_t)len;
}

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} host_sink_t;

static void host_sink_write(void *ctx, const uint8_t *data, size_t len)
{
    host_sink_t *sink = ctx;
    HOST_CHECK(sink->len + len <= sink->cap, "sink overflow: %zu + %zu > %zu", sink->len, len, sink->cap);
    memcpy(&sink->data[sink->len], data, len);
    sink->len += len;
}

typedef struct {
    unsigned long frames;
    unsigned long bytes;
    unsigned long events_frame;
    unsigned long events_error;
} host_stats_t;

static host_stats_t host_stats;

/* Feeds n bytes; returns the number of FRAME events, the last one's position in *at. */
static tme_proto_event_t host_feed(tme_proto_parser_t *p, const uint8_t *data, size_t n, size_t *events,
                                   size_t *last_at)
{
    tme_proto_event_t last = TME_PROTO_EVENT_NONE;
    for (size_t i = 0U; i < n; i++) {
        tme_proto_event_t ev = tme_proto_parser_feed(p, data[i]);
        if (ev == TME_PROTO_EVENT_NONE) {
            continue;
        }
        HOST_CHECK(ev == TME_PROTO_EVENT_FRAME || ev == TME_PROTO_EVENT_ERROR, "bad event %d", (int)ev);
        if (ev == TME_PROTO_EVENT_FRAME) {
            HOST_CHECK(p->length <= p->capacity, "frame of %u bytes in a %u-byte buffer", p->length,
                       p->capacity);
            host_stats.events_frame++;
        } else {
            HOST_CHECK(p->error >= TME_ERR_BAD_CRC && p->error <= TME_ERR_UNSUPPORTED_VERSION,
                       "error code %u", p->error);
            host_stats.events_error++;
        }
        (*events)++;
        *last_at = i;
        last = ev;
    }
    host_stats.bytes += n;
    return last;
}

/* A valid frame after up to 16 garbage bytes decodes exactly; tme_proto's writer matches. */
static void host_case_roundtrip(uint8_t *frame, uint8_t *payload_in)
{
    uint16_t cap = (uint16_t)host_below(1025U);
    uint8_t *buf = malloc(cap); /* exact size: ASan reports any write past it */
    tme_proto_parser_t p;
    tme_proto_parser_init(&p, buf, cap);
    uint16_t len = (uint16_t)host_below((uint32_t)cap + 1U);
    uint8_t cmd = (uint8_t)host_rand();
    uint8_t seq = (uint8_t)host_rand();
    size_t garbage = host_below(17U);
    host_fill_garbage(frame, garbage);
    host_fill(payload_in, len);
    size_t n = garbage + host_build(&frame[garbage], TME_PROTO_VERSION, cmd, seq, payload_in, len);

    static uint8_t written[HOST_MAX_FRAME];
    host_sink_t sink = {written, 0U, sizeof written};
    tme_proto_writer_t w;
    tme_proto_writer_init(&w, host_sink_write, &sink);
    tme_proto_send(&w, cmd, seq, payload_in, len);
    HOST_CHECK(sink.len == n - garbage && memcmp(written, &frame[garbage], sink.len) == 0,
               "writer output differs from the reference frame");

    size_t events = 0U, at = 0U;
    tme_proto_event_t ev = host_feed(&p, frame, n, &events, &at);
    HOST_CHECK(events == 1U && ev == TME_PROTO_EVENT_FRAME && at == n - 1U, "expected one frame at the end");
    HOST_CHECK(p.cmd == cmd && p.seq == seq && p.length == len, "header fields differ");
    HOST_CHECK(len == 0U || memcmp(buf, payload_in, len) == 0, "payload differs");
    free(buf);
}

/* Oversized length, other version, or corrupted body: one ERROR, then the next frame decodes. */
static void host_case_error(uint8_t *frame, uint8_t *payload_in)
{
    uint16_t cap = (uint16_t)host_below(257U);
    uint8_t *buf = malloc(cap);
    tme_proto_parser_t p;
    tme_proto_parser_init(&p, buf, cap);
    uint32_t kind = host_below(3U);
    uint8_t version = TME_PROTO_VERSION;
    uint16_t len = (uint16_t)host_below((uint32_t)cap + 1U);
    uint8_t expected_error = TME_ERR_BAD_CRC;
    if (kind == 0U) {
        len = (uint16_t)(cap + 1U + host_below(2000U));
        expected_error = TME_ERR_BAD_LENGTH;
    } else if (kind == 1U) {
        version = (uint8_t)host_below(255U); /* any version but ours (the v1 header CRC included) */
        version = (version >= TME_PROTO_VERSION) ? (uint8_t)(version + 1U) : version;
        expected_error = TME_ERR_UNSUPPORTED_VERSION;
    }
    uint8_t cmd = (uint8_t)host_rand();
    uint8_t seq = (uint8_t)host_rand();
    if (kind == 0U) {
        /* Not skipped any more, but hunted through: garbage cannot start a frame there. */
        host_fill_garbage(payload_in, len);
    } else {
        host_fill(payload_in, len);
    }
    size_t n = host_build(frame, version, cmd, seq, payload_in, len);
    if (kind == 2U) { /* flip one bit after the header */
        size_t bit = host_below((uint32_t)(n - TME_PROTO_HEADER_BYTES) * 8U);
        frame[TME_PROTO_HEADER_BYTES + bit / 8U] ^= (uint8_t)(1U << (bit % 8U));
    }
    size_t events = 0U, at = 0U;
    tme_proto_event_t ev = host_feed(&p, frame, n, &events, &at);
    HOST_CHECK(events == 1U && ev == TME_PROTO_EVENT_ERROR, "expected one error, got %zu events", events);
    HOST_CHECK(p.error == expected_error && p.cmd == cmd && p.seq == seq, "error %u for %u", p.error,
               expected_error);
    HOST_CHECK(kind == 2U || at == TME_PROTO_HEADER_BYTES - 1U, "header error reported late (byte %zu)", at);
    if (kind == 0U) { /* LEN bounded before draining: hunting again right after the header */
        size_t events0 = 0U, at0 = 0U;
        tme_proto_parser_t q;
        tme_proto_parser_init(&q, buf, cap);
        (void)host_feed(&q, frame, TME_PROTO_HEADER_BYTES, &events0, &at0);
        HOST_CHECK(events0 == 1U && tme_proto_parser_hunting(&q), "oversized LEN is drained, not hunted");
    }

    uint16_t len2 = (uint16_t)host_below((uint32_t)cap + 1U);
    host_fill(payload_in, len2);
    n = host_build(frame, TME_PROTO_VERSION, 0x42U, 7U, payload_in, len2);
    events = 0U;
    ev = host_feed(&p, frame, n, &events, &at);
    HOST_CHECK(events == 1U && ev == TME_PROTO_EVENT_FRAME && p.length == len2, "no recovery after an error");
    free(buf);
}

/* Random mutations of valid frames and raw noise: must not crash, overflow or report nonsense. */
static void host_case_mutated(tme_proto_parser_t *p, uint8_t *frame, uint8_t *payload_in)
{
    uint16_t len = (uint16_t)host_below((uint32_t)p->capacity + 64U);
    host_fill(payload_in, len);
    size_t n = host_build(frame, TME_PROTO_VERSION, (uint8_t)host_rand(), (uint8_t)host_rand(), payload_in,
                          len);
    uint32_t mutations = 1U + host_below(4U);
    for (uint32_t m = 0U; m < mutations; m++) {
        size_t pos = host_below((uint32_t)n);
        switch (host_below(6U)) {
        case 0: frame[pos] ^= (uint8_t)(1U << host_below(8U)); break;
        case 1: frame[pos] = (uint8_t)host_rand(); break;
        case 2: frame[pos] = TME_PROTO_SOF; break;
        case 3: n = pos; break;                                       /* truncate */
        case 4:                                                       /* delete one byte */
            memmove(&frame[pos], &frame[pos + 1U], n - pos - 1U);
            n--;
            break;
        default:                                                      /* insert one byte */
            memmove(&frame[pos + 1U], &frame[pos], n - pos);
            frame[pos] = (uint8_t)host_rand();
            n++;
            break;
        }
        if (n == 0U) {
            break;
        }
    }
    if (host_below(8U) == 0U) { /* pure noise, start markers made frequent */
        n = host_below(600U);
        for (size_t i = 0U; i < n; i++) {
            frame[i] = (host_below(8U) == 0U) ? (uint8_t)TME_PROTO_SOF : (uint8_t)host_rand();
        }
    }
    size_t events = 0U, at = 0U;
    (void)host_feed(p, frame, n, &events, &at);
}

/* Fixture model reference (model.h): out[k] = clamp(sum of in[i], i % 10 == k, >> 3). */
static void host_fixture_reference(const int8_t *in, int8_t *out)
{
    int32_t sums[10] = {0};
    for (int32_t i = 0; i < TME_MODEL_INPUT_BYTES; i++) {
        sums[i % 10] += in[i];
    }
    for (int32_t k = 0; k < 10; k++) {
        int32_t v = sums[k] >> 3;
        out[k] = (int8_t)((v > 127) ? 127 : ((v < -128) ? -128 : v));
    }
}

/* A request through tme_app; its reply must be one well-formed frame with the expected content. */
static void host_case_app(uint8_t *frame, uint8_t *payload_in, host_sink_t *sink)
{
    uint8_t seq = (uint8_t)host_rand();
    uint8_t expect_cmd;
    size_t n;
    uint32_t kind = host_below(6U);
    uint16_t len = 0U;
    if (kind == 0U) {
        n = host_build(frame, TME_PROTO_VERSION, TME_CMD_IDENTIFY, seq, payload_in, 0U);
        expect_cmd = TME_CMD_IDENTIFY | TME_CMD_REPLY_FLAG;
    } else if (kind <= 2U) {
        len = TME_MODEL_INPUT_BYTES;
        host_fill(payload_in, len);
        n = host_build(frame, TME_PROTO_VERSION, TME_CMD_INFER, seq, payload_in, len);
        expect_cmd = TME_CMD_INFER | TME_CMD_REPLY_FLAG;
    } else if (kind == 3U) {
        len = (uint16_t)host_below(257U);
        host_fill(payload_in, len);
        n = host_build(frame, TME_PROTO_VERSION, TME_CMD_ECHO, seq, payload_in, len);
        expect_cmd = TME_CMD_ECHO | TME_CMD_REPLY_FLAG;
    } else if (kind == 4U) {
        len = (uint16_t)host_below(TME_MODEL_INPUT_BYTES);
        n = host_build(frame, TME_PROTO_VERSION, TME_CMD_INFER, seq, payload_in, len);
        expect_cmd = TME_CMD_ERROR;
    } else {
        n = host_build(frame, TME_PROTO_VERSION, (uint8_t)(0x10U + host_below(0x60U)), seq, payload_in, 0U);
        expect_cmd = TME_CMD_ERROR;
    }
    size_t garbage = host_below(9U);
    uint8_t noise[8];
    host_fill_garbage(noise, garbage);
    sink->len = 0U;
    tme_app_feed(noise, garbage);
    tme_app_feed(frame, n);

    static uint8_t reply[HOST_MAX_FRAME];
    tme_proto_parser_t p;
    tme_proto_parser_init(&p, reply, (uint16_t)TME_PROTO_MAX_PAYLOAD_BYTES);
    size_t events = 0U, at = 0U;
    tme_proto_event_t ev = host_feed(&p, sink->data, sink->len, &events, &at);
    HOST_CHECK(events == 1U && ev == TME_PROTO_EVENT_FRAME && at == sink->len - 1U,
               "app reply is not exactly one valid frame (%zu events, %zu bytes)", events, sink->len);
    HOST_CHECK(p.cmd == expect_cmd && p.seq == seq, "reply cmd 0x%02x seq %u, expected 0x%02x seq %u", p.cmd,
               p.seq, expect_cmd, seq);
    if (kind == 1U || kind == 2U) {
        int8_t expected[TME_MODEL_OUTPUT_BYTES];
        host_fixture_reference((const int8_t *)payload_in, expected);
        HOST_CHECK(p.length == 4U + TME_MODEL_OUTPUT_BYTES, "infer reply length %u", p.length);
        uint32_t count = (uint32_t)reply[0] | ((uint32_t)reply[1] << 8) | ((uint32_t)reply[2] << 16) |
                         ((uint32_t)reply[3] << 24);
        HOST_CHECK(count == TME_HOST_COUNTER_STEP, "count %u", count);
        HOST_CHECK(memcmp(&reply[4], expected, sizeof expected) == 0, "infer output differs");
    } else if (kind == 3U) {
        HOST_CHECK(p.length == len && memcmp(reply, payload_in, len) == 0, "echo differs");
    } else if (kind == 4U) {
        HOST_CHECK(p.length == 6U && reply[0] == TME_ERR_BAD_INPUT_SIZE && reply[1] == TME_CMD_INFER,
                   "expected BAD_INPUT_SIZE");
    } else if (kind == 5U) {
        HOST_CHECK(p.length == 6U && reply[0] == TME_ERR_UNKNOWN_COMMAND, "expected UNKNOWN_COMMAND");
    }
}

static int host_fuzz(uint64_t seed, unsigned long frames)
{
    static uint8_t frame[HOST_MAX_FRAME + 64U];
    static uint8_t payload_in[TME_PROTO_MAX_PAYLOAD_BYTES];
    static uint8_t sink_data[HOST_MAX_FRAME];
    host_sink_t sink = {sink_data, 0U, sizeof sink_data};
    /* splitmix64 step: any seed, 0 included, gives a non-zero xorshift state */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    host_rng = (z ^ (z >> 31)) | 1U;
    tme_app_init(host_sink_write, &sink);

    static uint8_t mutated_buf[300];
    tme_proto_parser_t mutated;
    tme_proto_parser_init(&mutated, mutated_buf, (uint16_t)sizeof mutated_buf);

    clock_t start = clock();
    for (host_case = 0U; host_case < frames; host_case++) {
        uint32_t phase = host_below(10U);
        if (phase < 3U) {
            host_case_roundtrip(frame, payload_in);
        } else if (phase < 5U) {
            host_case_error(frame, payload_in);
        } else if (phase < 8U) {
            host_case_mutated(&mutated, frame, payload_in);
        } else {
            host_case_app(frame, payload_in, &sink);
        }
        host_stats.frames++;
    }
    double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
#if defined(__SANITIZE_ADDRESS__)
    int asan = 1;
#else
    int asan = 0;
#endif
    printf("frames=%lu bytes=%lu frame_events=%lu error_events=%lu seconds=%.3f asan=%d\n", host_stats.frames,
           host_stats.bytes, host_stats.events_frame, host_stats.events_error, seconds, asan);
    return 0;
}

static size_t host_read_stdin(uint8_t **out)
{
    size_t cap = 4096U, len = 0U;
    uint8_t *buf = malloc(cap);
    size_t got;
    while ((got = fread(&buf[len], 1U, cap - len, stdin)) > 0U) {
        len += got;
        if (len == cap) {
            cap *= 2U;
            buf = realloc(buf, cap);
        }
    }
    *out = buf;
    return len;
}

static int host_decode(unsigned long capacity)
{
    uint8_t *in;
    size_t n = host_read_stdin(&in);
    uint8_t *buf = malloc(capacity);
    tme_proto_parser_t p;
    tme_proto_parser_init(&p, buf, (uint16_t)capacity);
    for (size_t i = 0U; i < n; i++) {
        tme_proto_event_t ev = tme_proto_parser_feed(&p, in[i]);
        if (ev == TME_PROTO_EVENT_FRAME) {
            printf("FRAME %u %u %u %08x\n", p.cmd, p.seq, p.length, tme_crc32(0U, buf, p.length));
        } else if (ev == TME_PROTO_EVENT_ERROR) {
            printf("ERROR %u %u %u %u\n", p.error, p.cmd, p.seq, p.error_detail);
        }
    }
    free(buf);
    free(in);
    return 0;
}

static void host_stdout_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    fwrite(data, 1U, len, stdout);
}

static int host_app(void)
{
    uint8_t *in;
    size_t n = host_read_stdin(&in);
    tme_app_init(host_stdout_write, NULL);
    tme_app_feed(in, n);
    free(in);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "fuzz") == 0) {
        return host_fuzz(strtoull(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
    }
    if (argc == 3 && strcmp(argv[1], "decode") == 0) {
        unsigned long capacity = strtoul(argv[2], NULL, 0);
        if (capacity > TME_PROTO_MAX_PAYLOAD_BYTES) {
            fprintf(stderr, "capacity %lu > %u\n", capacity, TME_PROTO_MAX_PAYLOAD_BYTES);
            return 2;
        }
        return host_decode(capacity);
    }
    if (argc == 2 && strcmp(argv[1], "app") == 0) {
        return host_app();
    }
    fprintf(stderr, "usage: %s fuzz SEED FRAMES | decode CAPACITY | app\n", argv[0]);
    return 2;
}
