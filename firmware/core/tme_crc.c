#include "tme_crc.h"

uint8_t tme_crc8(uint8_t init, const uint8_t *data, size_t len)
{
    uint32_t crc = init;
    for (size_t i = 0U; i < len; i++) {
        crc ^= data[i];
        for (uint32_t bit = 0U; bit < 8U; bit++) {
            crc = ((crc & 0x80U) != 0U) ? ((crc << 1) ^ 0x07U) : (crc << 1);
        }
        crc &= 0xFFU;
    }
    return (uint8_t)crc;
}

/*
 * Half-byte table: 64 bytes of flash instead of 1 KB for the byte-wise table, at two lookups per
 * byte. Entry i is the reflected CRC-32 of the 4-bit value i.
 */
static const uint32_t tme_crc32_nibble[16] = {
    0x00000000U, 0x1DB71064U, 0x3B6E20C8U, 0x26D930ACU, 0x76DC4190U, 0x6B6B51F4U,
    0x4DB26158U, 0x5005713CU, 0xEDB88320U, 0xF00F9344U, 0xD6D6A3E8U, 0xCB61B38CU,
    0x9B64C2B0U, 0x86D3D2D4U, 0xA00AE278U, 0xBDBDF21CU,
};

uint32_t tme_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0U; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ tme_crc32_nibble[crc & 0x0FU];
        crc = (crc >> 4) ^ tme_crc32_nibble[crc & 0x0FU];
    }
    return ~crc;
}
