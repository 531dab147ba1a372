/*
 * The device side of the protocol: feeds received bytes to the frame parser and answers each
 * frame (IDENTIFY, INFER, ECHO, errors); printable ASCII between frames goes to the MLPerf Tiny
 * text dialect (tme_mlperf.h). Board-independent: replies leave through the write callback given
 * to tme_app_init, so the host compiles this module for tests as well.
 */
#ifndef TME_APP_H
#define TME_APP_H

#include <stddef.h>
#include <stdint.h>

#include "tme_proto.h"

void tme_app_init(tme_proto_write_fn write, void *ctx);

/* Announces a (re)start with an unsolicited BOOT frame; lost if nobody listens yet. */
void tme_app_send_boot(void);

/* Processes received bytes; replies are written before this returns. */
void tme_app_feed(const uint8_t *data, size_t len);

#endif /* TME_APP_H */
