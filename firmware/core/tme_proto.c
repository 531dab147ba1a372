#include "tme_proto.h"

#include "tme_crc.h"

enum {
    TME_PROTO_STATE_HUNT = 0, /* discarding bytes until a start marker */
    TME_PROTO_STATE_HEADER,   /* collecting VER .. HCRC */
    TME_PROTO_STATE_PAYLOAD,  /* collecting LEN payload bytes */
    TME_PROTO_STATE_CRC,      /* collecting the 4 CRC-32 bytes */
    TME_PROTO_STATE_DRAIN,    /* skipping the body of a frame that was already answered */
};

void tme_proto_parser_init(tme_proto_parser_t *parser, uint8_t *payload, uint16_t capacity)
{
    *parser = (tme_proto_parser_t){0};
    parser->payload = payload;
    parser->capacity = capacity;
    parser->state = TME_PROTO_STATE_HUNT;
}

static tme_proto_event_t tme_proto_report(tme_proto_parser_t *parser, uint8_t error, uint32_t detail)
{
    parser->error = error;
    parser->error_detail = detail;
    return TME_PROTO_EVENT_ERROR;
}

/*
 * The header CRC failed, so header[0] was a stray 0xA5, not a start marker. A real marker may be
 * among the bytes collected after it: restart from the first one instead of losing that frame.
 * Fewer than TME_PROTO_HEADER_BYTES bytes remain, so this cannot complete a header by itself.
 */
static void tme_proto_resync_header(tme_proto_parser_t *parser)
{
    uint8_t start = 1U;
    while ((start < parser->header_fill) && (parser->header[start] != TME_PROTO_SOF)) {
        start++;
    }
    if (start >= parser->header_fill) {
        parser->header_fill = 0U;
        parser->state = TME_PROTO_STATE_HUNT;
        return;
    }
    for (uint8_t i = start; i < parser->header_fill; i++) {
        parser->header[i - start] = parser->header[i];
    }
    parser->header_fill = (uint8_t)(parser->header_fill - start);
}

uint8_t tme_proto_header_crc(const uint8_t *h)
{
    uint8_t init = (h[0] == 1U) ? TME_PROTO_HCRC_INIT_V1 : TME_PROTO_HCRC_INIT;
    return tme_crc8(init, h, 5U);
}

static tme_proto_event_t tme_proto_header_complete(tme_proto_parser_t *parser)
{
    const uint8_t *h = parser->header;
    if (tme_proto_header_crc(&h[1]) != h[6]) {
        tme_proto_resync_header(parser);
        return TME_PROTO_EVENT_NONE;
    }
    parser->header_fill = 0U;
    parser->cmd = h[2];
    parser->seq = h[3];
    parser->length = (uint16_t)(h[4] | ((uint16_t)h[5] << 8));
    if (parser->length > parser->capacity) {
        /* Bounded before anything is skipped: an 8-bit check passes one stray header in 256, and
         * trusting its LEN would make the device deaf for up to 65 kB. The body of a real
         * oversized frame is hunted through instead (its bytes fail as headers or frames). */
        parser->state = TME_PROTO_STATE_HUNT;
        if (h[1] != TME_PROTO_VERSION) {
            return tme_proto_report(parser, TME_ERR_UNSUPPORTED_VERSION, TME_PROTO_VERSION);
        }
        return tme_proto_report(parser, TME_ERR_BAD_LENGTH, parser->capacity);
    }
    if (h[1] != TME_PROTO_VERSION) {
        /* Answer now and skip the body (at most capacity + 4 bytes): the header layout is frozen
         * across protocol versions, so LEN is meaningful even for another version. */
        parser->drain_left = (uint32_t)parser->length + TME_PROTO_CRC_BYTES;
        parser->state = TME_PROTO_STATE_DRAIN;
        return tme_proto_report(parser, TME_ERR_UNSUPPORTED_VERSION, TME_PROTO_VERSION);
    }
    parser->crc_running = tme_crc32(0U, &h[1], TME_PROTO_HEADER_BYTES - 1U);
    parser->payload_fill = 0U;
    parser->crc_fill = 0U;
    parser->crc_received = 0U;
    parser->state = (parser->length == 0U) ? TME_PROTO_STATE_CRC : TME_PROTO_STATE_PAYLOAD;
    return TME_PROTO_EVENT_NONE;
}

tme_proto_event_t tme_proto_parser_feed(tme_proto_parser_t *parser, uint8_t byte)
{
    switch (parser->state) {
    case TME_PROTO_STATE_HUNT:
        if (byte == TME_PROTO_SOF) {
            parser->header[0] = byte;
            parser->header_fill = 1U;
            parser->state = TME_PROTO_STATE_HEADER;
        }
        return TME_PROTO_EVENT_NONE;

    case TME_PROTO_STATE_HEADER:
        parser->header[parser->header_fill] = byte;
        parser->header_fill++;
        if (parser->header_fill < TME_PROTO_HEADER_BYTES) {
            return TME_PROTO_EVENT_NONE;
        }
        return tme_proto_header_complete(parser);

    case TME_PROTO_STATE_PAYLOAD:
        /* length <= capacity was checked with the header; the second bound keeps the write in
         * the buffer even if that invariant were ever broken. */
        if (parser->payload_fill >= parser->capacity) {
            parser->state = TME_PROTO_STATE_HUNT;
            return TME_PROTO_EVENT_NONE;
        }
        parser->payload[parser->payload_fill] = byte;
        parser->payload_fill++;
        parser->crc_running = tme_crc32(parser->crc_running, &byte, 1U);
        if (parser->payload_fill == parser->length) {
            parser->state = TME_PROTO_STATE_CRC;
        }
        return TME_PROTO_EVENT_NONE;

    case TME_PROTO_STATE_CRC:
        parser->crc_received |= (uint32_t)byte << (8U * parser->crc_fill);
        parser->crc_fill++;
        if (parser->crc_fill < TME_PROTO_CRC_BYTES) {
            return TME_PROTO_EVENT_NONE;
        }
        parser->state = TME_PROTO_STATE_HUNT;
        if (parser->crc_received != parser->crc_running) {
            return tme_proto_report(parser, TME_ERR_BAD_CRC, parser->crc_running);
        }
        return TME_PROTO_EVENT_FRAME;

    case TME_PROTO_STATE_DRAIN:
        parser->drain_left--;
        if (parser->drain_left == 0U) {
            parser->state = TME_PROTO_STATE_HUNT;
        }
        return TME_PROTO_EVENT_NONE;

    default:
        parser->state = TME_PROTO_STATE_HUNT;
        return TME_PROTO_EVENT_NONE;
    }
}

int tme_proto_parser_hunting(const tme_proto_parser_t *parser)
{
    return parser->state == TME_PROTO_STATE_HUNT;
}

void tme_proto_writer_init(tme_proto_writer_t *writer, tme_proto_write_fn write, void *ctx)
{
    writer->write = write;
    writer->ctx = ctx;
    writer->crc_running = 0U;
}

void tme_proto_begin(tme_proto_writer_t *writer, uint8_t cmd, uint8_t seq, uint16_t length)
{
    uint8_t header[TME_PROTO_HEADER_BYTES];
    header[0] = TME_PROTO_SOF;
    header[1] = TME_PROTO_VERSION;
    header[2] = cmd;
    header[3] = seq;
    tme_proto_put_u16(&header[4], length);
    header[6] = tme_proto_header_crc(&header[1]);
    writer->crc_running = tme_crc32(0U, &header[1], TME_PROTO_HEADER_BYTES - 1U);
    writer->write(writer->ctx, header, sizeof header);
}

void tme_proto_put(tme_proto_writer_t *writer, const uint8_t *data, size_t len)
{
    if (len == 0U) {
        return;
    }
    writer->crc_running = tme_crc32(writer->crc_running, data, len);
    writer->write(writer->ctx, data, len);
}

void tme_proto_end(tme_proto_writer_t *writer)
{
    uint8_t trailer[TME_PROTO_CRC_BYTES];
    tme_proto_put_u32(trailer, writer->crc_running);
    writer->write(writer->ctx, trailer, sizeof trailer);
}

void tme_proto_send(tme_proto_writer_t *writer, uint8_t cmd, uint8_t seq, const uint8_t *payload,
                    uint16_t length)
{
    tme_proto_begin(writer, cmd, seq, length);
    tme_proto_put(writer, payload, length);
    tme_proto_end(writer);
}

void tme_proto_send_error(tme_proto_writer_t *writer, uint8_t seq, uint8_t error, uint8_t cmd,
                          uint32_t detail)
{
    uint8_t payload[TME_PROTO_ERROR_PAYLOAD_BYTES];
    payload[0] = error;
    payload[1] = cmd;
    tme_proto_put_u32(&payload[2], detail);
    tme_proto_send(writer, TME_CMD_ERROR, seq, payload, (uint16_t)sizeof payload);
}
