/*
 * Checksums of the serial protocol (PROTOCOL.md §2).
 *
 * CRC-8   poly 0x07, no reflection, no final XOR, initial value given: 0xFF for the protocol's
 *         header (check value 0xFB), 0x00 only to recognise a version 1 peer ("CRC-8/SMBUS",
 *         check value 0xF4). Protects the 6 header bytes after the start marker.
 * CRC-32  the IEEE 802.3 / zlib CRC (reflected poly 0xEDB88320, init and final XOR 0xFFFFFFFF;
 *         check value 0xCBF43926), so the host computes it with Python's zlib.crc32.
 */
#ifndef TME_CRC_H
#define TME_CRC_H

#include <stddef.h>
#include <stdint.h>

uint8_t tme_crc8(uint8_t init, const uint8_t *data, size_t len);

/*
 * Continues a CRC-32 the way zlib.crc32(data, crc) does: start with crc = 0, feed the pieces in
 * order, and the last return value is the CRC of the concatenation.
 */
uint32_t tme_crc32(uint32_t crc, const uint8_t *data, size_t len);

#endif /* TME_CRC_H */
