/* perf-work.h - the interpreter's throughput workload: an adaptive binary range coder round trip, compiled both for the host (reference) and, by tools/iem-perf-gen.sh, into guest code. */
#ifndef VIREO_IEM_PERF_WORK_H
#define VIREO_IEM_PERF_WORK_H

/*
 * The shape of the Linux kernel's XZ (LZMA2) decompression, the longest phase of a direct
 * kernel boot on the software CPU: probability-modelled bit coding (loads and stores of
 * 16-bit probabilities, 32-bit multiplies, compares and branches), byte-granular
 * normalisation, LZ-style back-reference copies, and a few calls.  Everything is
 * freestanding (no library calls, no tables in .rodata) so the same source runs on the
 * host and, as position-independent bytes, in the guest.
 */

#include <stdint.h>

#define PERF_RC_TOP (1u << 24)
#define PERF_PROB_INIT 1024u
#define PERF_CTX 8u

struct perf_enc {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t cache_size;
    uint8_t *out;
};

struct perf_dec {
    uint32_t range, code;
    const uint8_t *in;
};

static inline __attribute__((always_inline)) void perf_enc_shift(struct perf_enc *e)
{
    if ((uint32_t)e->low < 0xff000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t temp = e->cache;
        do {
            *e->out++ = (uint8_t)(temp + carry);
            temp = 0xff;
        } while (--e->cache_size != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->cache_size++;
    e->low = (e->low & 0x00ffffffu) << 8;
}

static inline __attribute__((always_inline)) void perf_enc_bit(struct perf_enc *e, uint16_t *p, unsigned bit)
{
    uint32_t bound = (e->range >> 11) * *p;
    if (!bit) {
        e->range = bound;
        *p = (uint16_t)(*p + ((2048u - *p) >> 5));
    } else {
        e->low += bound;
        e->range -= bound;
        *p = (uint16_t)(*p - (*p >> 5));
    }
    while (e->range < PERF_RC_TOP) {
        e->range <<= 8;
        perf_enc_shift(e);
    }
}

static __attribute__((noinline)) void perf_enc_byte(struct perf_enc *e, uint16_t *probs, unsigned byte)
{
    unsigned m = 1;
    for (int i = 7; i >= 0; i--) {
        unsigned bit = (byte >> i) & 1;
        perf_enc_bit(e, &probs[m], bit);
        m = (m << 1) | bit;
    }
}

static __attribute__((noinline)) unsigned perf_dec_byte(struct perf_dec *d, uint16_t *probs)
{
    unsigned m = 1;
    do {
        uint16_t *p = &probs[m];
        uint32_t bound = (d->range >> 11) * *p;
        if (d->code < bound) {
            d->range = bound;
            *p = (uint16_t)(*p + ((2048u - *p) >> 5));
            m <<= 1;
        } else {
            d->code -= bound;
            d->range -= bound;
            *p = (uint16_t)(*p - (*p >> 5));
            m = (m << 1) | 1;
        }
        if (d->range < PERF_RC_TOP) {
            d->range <<= 8;
            d->code = (d->code << 8) | *d->in++;
        }
    } while (m < 0x100);
    return m & 0xff;
}

static __attribute__((noinline)) void perf_fill(uint8_t *src, uint32_t n, uint32_t seed)
{
    uint32_t x = seed;
    uint32_t i = 0;
    while (i < n) {
        x = x * 1103515245u + 12345u;
        uint32_t len = 4 + ((x >> 24) & 31);
        uint32_t dist = 1 + ((x >> 8) & 255);
        if (((x >> 16) & 3) == 0 && i > dist) {
            /* A back-reference, copied byte by byte as LZ decoders do (the ranges may overlap). */
            for (uint32_t k = 0; k < len && i < n; k++, i++)
                src[i] = src[i - dist];
        } else {
            for (uint32_t k = 0; k < len && i < n; k++, i++) {
                x = x * 1103515245u + 12345u;
                src[i] = (uint8_t)('a' + ((x >> 20) & 15));
            }
        }
    }
}

/*
 * One round trip over n bytes in ws (which needs 2 * 2048 * PERF_CTX + 4 * n + 64 bytes):
 * generate, encode, decode, compare.  Returns a checksum of the coded stream and the decoded
 * bytes, with the number of mismatching bytes in the top 16 bits.
 */
static __attribute__((noinline)) uint64_t perf_work(uint8_t *ws, uint32_t n, uint32_t seed)
{
    uint16_t *probs = (uint16_t *)ws;
    uint8_t *src = ws + 2 * 256 * PERF_CTX;
    uint8_t *enc = src + n;
    uint8_t *dec = enc + 2 * n + 64;
    struct perf_enc e;
    struct perf_dec d;
    uint64_t sum = 0;
    uint32_t bad = 0, prev = 0;

    perf_fill(src, n, seed);
    for (uint32_t i = 0; i < 256 * PERF_CTX; i++)
        probs[i] = PERF_PROB_INIT;
    e.low = 0;
    e.range = 0xffffffffu;
    e.cache = 0;
    e.cache_size = 1;
    e.out = enc;
    for (uint32_t i = 0; i < n; i++) {
        perf_enc_byte(&e, &probs[(prev >> 5) * 256], src[i]);
        prev = src[i];
    }
    for (int i = 0; i < 5; i++)
        perf_enc_shift(&e);
    uint32_t enc_len = (uint32_t)(e.out - enc);

    for (uint32_t i = 0; i < 256 * PERF_CTX; i++)
        probs[i] = PERF_PROB_INIT;
    d.range = 0xffffffffu;
    d.code = 0;
    d.in = enc;
    for (int i = 0; i < 5; i++)
        d.code = (d.code << 8) | *d.in++;
    prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        prev = perf_dec_byte(&d, &probs[(prev >> 5) * 256]);
        dec[i] = (uint8_t)prev;
    }
    for (uint32_t i = 0; i < enc_len; i++)
        sum = (sum ^ enc[i]) * 0x100000001b3ull;
    for (uint32_t i = 0; i < n; i++) {
        sum = (sum ^ dec[i]) * 0x100000001b3ull;
        bad += dec[i] != src[i];
    }
    return (sum & 0xffffffffffffull) | ((uint64_t)(bad > 0xffff ? 0xffff : bad) << 48);
}

#endif
