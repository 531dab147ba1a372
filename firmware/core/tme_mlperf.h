/*
 * The MLPerf Tiny / EEMBC runner's ASCII command set, on the same UART as the binary protocol
 * (PROTOCOL.md §6). Commands end with '%'; every reply line ends with "\r\n" and every command's
 * reply ends with the line "m-ready":
 *
 *   name%            m-name-dut-[tinyml_exp]
 *   profile%         m-profile-[...] and m-model-[<model name>]
 *   help%            the command list
 *   timestamp%       m-lap-us-<microseconds of the board's counter>
 *   db load N%       m-[Expecting N bytes]           (N = the model input's byte size)
 *   db HHHH...%      hex bytes appended to the buffer; m-load-done once N bytes are in
 *   db print%        m-buffer-xx-xx-... (8 bytes per line)
 *   infer N [W]%     W warm-up runs (default 10), then N timed runs between two m-lap-us lines,
 *                    then m-results-[...] (the output tensor, dequantized, 3 decimals)
 *   results%         m-results-[...] of the last inference
 *
 * The loaded bytes are the raw input tensor (int8 values for an int8 model, little-endian float32
 * for a float model): the host quantizes, as with the binary INFER request.
 *
 * The dialect is chosen byte by byte: tme_app hands a byte to this module when the frame parser
 * is hunting and the byte is printable ASCII (or a text line is in progress). Any other byte
 * (the frame start marker 0xA5, the handshake's 0x00 filler) abandons a partial text line and goes
 * back to the frame parser, so garbage never blocks the binary protocol.
 */
#ifndef TME_MLPERF_H
#define TME_MLPERF_H

#include <stddef.h>
#include <stdint.h>

#include "tme_proto.h"

/*
 * `buffer` holds the bytes of `db` commands (shared with the frame parser's payload buffer: a
 * binary frame received between `db load` and `infer` replaces them). Replies go through `write`.
 */
void tme_mlperf_init(tme_proto_write_fn write, void *ctx, uint8_t *buffer, size_t capacity);

/* True while a text line is being collected (its bytes must come here, not to the frame parser). */
int tme_mlperf_line_active(void);

/* True if `byte` starts a text line: printable ASCII, 0x20 .. 0x7E. */
int tme_mlperf_starts_line(uint8_t byte);

/*
 * Offers one byte. Returns 1 if the text dialect consumed it (printable ASCII, or CR / LF / TAB
 * inside a line; '%' runs the command and writes its reply). Returns 0 for any other byte, after
 * abandoning a partial line: the caller passes that byte to the frame parser.
 */
int tme_mlperf_feed(uint8_t byte);

#endif /* TME_MLPERF_H */
