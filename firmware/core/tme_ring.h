/*
 * Single-producer / single-consumer byte ring for a UART receive interrupt: the ISR pushes, the
 * main loop pops. No locks: each index is written by one side only, and on a single Cortex-M core
 * aligned 32-bit loads and stores are atomic. The indices run freely; size is a power of two.
 */
#ifndef TME_RING_H
#define TME_RING_H

#include <stddef.h>
#include <stdint.h>

#ifndef TME_RING_BYTES /* a test build makes it tiny, to force the ring-full path */
#define TME_RING_BYTES 256U
#endif
#if (TME_RING_BYTES & (TME_RING_BYTES - 1U)) != 0U
#error "TME_RING_BYTES must be a power of two"
#endif

typedef struct {
    volatile uint32_t head; /* written by the producer (ISR) only */
    volatile uint32_t tail; /* written by the consumer (main loop) only */
    uint8_t data[TME_RING_BYTES];
} tme_ring_t;

static inline int tme_ring_full(const tme_ring_t *ring)
{
    return (ring->head - ring->tail) >= TME_RING_BYTES;
}

static inline int tme_ring_empty(const tme_ring_t *ring)
{
    return ring->head == ring->tail;
}

/* Producer side; the caller checks tme_ring_full() first. */
static inline void tme_ring_push(tme_ring_t *ring, uint8_t byte)
{
    uint32_t head = ring->head;
    ring->data[head & (TME_RING_BYTES - 1U)] = byte;
    __asm__ volatile("" ::: "memory"); /* the byte is stored before the index publishes it */
    ring->head = head + 1U;
}

/* Consumer side. */
static inline size_t tme_ring_pop(tme_ring_t *ring, uint8_t *out, size_t capacity)
{
    uint32_t tail = ring->tail;
    uint32_t available = ring->head - tail;
    size_t n = (available < capacity) ? (size_t)available : capacity;
    for (size_t i = 0U; i < n; i++) {
        out[i] = ring->data[(tail + (uint32_t)i) & (TME_RING_BYTES - 1U)];
    }
    __asm__ volatile("" ::: "memory"); /* the bytes are read before the slots are released */
    ring->tail = tail + (uint32_t)n;
    return n;
}

#endif /* TME_RING_H */
