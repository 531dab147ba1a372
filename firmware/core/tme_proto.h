/*
 * Framing of the binary serial protocol, version 2 (see firmware/PROTOCOL.md, which is normative).
 *
 *   offset  size  field
 *   0       1     SOF      0xA5, outside printable ASCII (leaves room for an ASCII dialect)
 *   1       1     VER      protocol version (2)
 *   2       1     CMD      command (host -> device) or reply / event code (device -> host)
 *   3       1     SEQ      sequence number, echoed in the reply
 *   4       2     LEN      payload length, little endian
 *   6       1     HCRC     CRC-8 of bytes 1..5, initial value 0xFF (0x00 in version 1)
 *   7       LEN   PAYLOAD
 *   7+LEN   4     CRC      CRC-32 of bytes 1 .. 6+LEN (VER through the payload), little endian
 *
 * This module knows nothing about commands: it turns bytes into checked frames and back. It is
 * plain C with no board dependency, so the host compiles it for the fuzz test.
 */
#ifndef TME_PROTO_H
#define TME_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TME_PROTO_VERSION 2U
/* Header CRC-8 initial value. Version 1 used 0x00, which let `A5 00 00 00 00 00 00` (a stray
 * marker before a run of zeros, such as the handshake filler) pass as a header; a header whose
 * VER is 1 is still checked with 0x00, only to answer it with UNSUPPORTED_VERSION. */
#define TME_PROTO_HCRC_INIT 0xFFU
#define TME_PROTO_HCRC_INIT_V1 0x00U
#define TME_PROTO_SOF 0xA5U
#define TME_PROTO_HEADER_BYTES 7U
#define TME_PROTO_CRC_BYTES 4U
#define TME_PROTO_OVERHEAD_BYTES (TME_PROTO_HEADER_BYTES + TME_PROTO_CRC_BYTES)
#define TME_PROTO_MAX_PAYLOAD_BYTES 0xFFFFU

/* Requests (host -> device). */
#define TME_CMD_IDENTIFY 0x01U
#define TME_CMD_INFER 0x02U
#define TME_CMD_ECHO 0x03U
/* Addition to version 2 (PROTOCOL.md §4.6): per-layer counts of the last inference; answered only
 * by a firmware built with -DTME_PROFILE_LAYERS (any other answers UNKNOWN_COMMAND). */
#define TME_CMD_LAYERS 0x04U
/* Addition to version 2 (PROTOCOL.md §4.7): the device generates `count` inputs from a seed with
 * the documented PRNG, runs the model on each and returns every count and output in one reply. */
#define TME_CMD_INFER_RANDOM 0x05U
/* A successful reply carries the request's code with this bit set. */
#define TME_CMD_REPLY_FLAG 0x80U
/* Device -> host frames that are not the echo of a request code. */
#define TME_CMD_ERROR 0xF0U
#define TME_CMD_BOOT 0xF1U

/* Error codes, first byte of an ERROR payload. */
#define TME_ERR_BAD_CRC 0x01U
#define TME_ERR_BAD_LENGTH 0x02U
#define TME_ERR_UNKNOWN_COMMAND 0x03U
#define TME_ERR_BAD_INPUT_SIZE 0x04U
#define TME_ERR_UNSUPPORTED_VERSION 0x05U
#define TME_PROTO_ERROR_PAYLOAD_BYTES 6U

typedef enum {
    TME_PROTO_EVENT_NONE = 0,  /* byte consumed; nothing to report yet */
    TME_PROTO_EVENT_FRAME = 1, /* a complete, checked frame: cmd, seq, length, payload */
    TME_PROTO_EVENT_ERROR = 2, /* a frame with a valid header failed: reply with error/detail */
} tme_proto_event_t;

typedef struct {
    /* Set by tme_proto_parser_init. */
    uint8_t *payload;
    uint16_t capacity;
    /* Results, valid after an event until the next call to tme_proto_parser_feed. */
    uint8_t cmd;
    uint8_t seq;
    uint8_t error;
    uint16_t length;
    uint32_t error_detail;
    /* Internal state. */
    uint8_t state;
    uint8_t header[TME_PROTO_HEADER_BYTES];
    uint8_t header_fill;
    uint8_t crc_fill;
    uint16_t payload_fill;
    uint32_t drain_left;
    uint32_t crc_running;
    uint32_t crc_received;
} tme_proto_parser_t;

/* The parser never writes more than `capacity` bytes into `payload`. */
void tme_proto_parser_init(tme_proto_parser_t *parser, uint8_t *payload, uint16_t capacity);

/*
 * Consumes one byte. Hunts for the start marker, checks the header CRC (a failed header is taken
 * for garbage: it is dropped silently and the hunt resumes at the next start marker inside it),
 * then collects the payload and checks the frame CRC.
 *   - LEN > capacity with a valid header: ERROR (BAD_LENGTH) at once, and the hunt resumes with
 *     the next byte: LEN is bounded by the buffer before anything is skipped, so a stray header
 *     with a large LEN cannot make the device deaf for up to 65 kB.
 *   - VER != 2 with a valid header and LEN <= capacity: ERROR (UNSUPPORTED_VERSION) at once, then
 *     the LEN + 4 bytes that follow are skipped.
 *   - frame CRC mismatch: ERROR (TME_ERR_BAD_CRC) with the header's cmd and seq.
 */
tme_proto_event_t tme_proto_parser_feed(tme_proto_parser_t *parser, uint8_t byte);

/* The HCRC byte a header with bytes 1..5 `h` must carry (the initial value depends on VER, h[0]). */
uint8_t tme_proto_header_crc(const uint8_t *h);

/* True while the parser is between frames, discarding bytes until a start marker. */
int tme_proto_parser_hunting(const tme_proto_parser_t *parser);

/* Output side: frames are streamed through a write callback, with no frame-sized buffer. */
typedef void (*tme_proto_write_fn)(void *ctx, const uint8_t *data, size_t len);

typedef struct {
    tme_proto_write_fn write;
    void *ctx;
    uint32_t crc_running;
} tme_proto_writer_t;

void tme_proto_writer_init(tme_proto_writer_t *writer, tme_proto_write_fn write, void *ctx);
/* A frame is begin(), then put() pieces totalling exactly `length` bytes, then end(). */
void tme_proto_begin(tme_proto_writer_t *writer, uint8_t cmd, uint8_t seq, uint16_t length);
void tme_proto_put(tme_proto_writer_t *writer, const uint8_t *data, size_t len);
void tme_proto_end(tme_proto_writer_t *writer);
void tme_proto_send(tme_proto_writer_t *writer, uint8_t cmd, uint8_t seq, const uint8_t *payload,
                    uint16_t length);
void tme_proto_send_error(tme_proto_writer_t *writer, uint8_t seq, uint8_t error, uint8_t cmd,
                          uint32_t detail);

/* Little-endian helpers for payload layouts. */
static inline void tme_proto_put_u16(uint8_t *dst, uint16_t value)
{
    dst[0] = (uint8_t)value;
    dst[1] = (uint8_t)(value >> 8);
}

static inline void tme_proto_put_u32(uint8_t *dst, uint32_t value)
{
    dst[0] = (uint8_t)value;
    dst[1] = (uint8_t)(value >> 8);
    dst[2] = (uint8_t)(value >> 16);
    dst[3] = (uint8_t)(value >> 24);
}

#endif /* TME_PROTO_H */
