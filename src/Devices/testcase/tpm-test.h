/* tpm-test.h - driving the TPM TIS registers from tests as a guest driver does (locality 0..4, FIFO, polling). */
#ifndef VIREO_TPM_TEST_H
#define VIREO_TPM_TEST_H

#include <stdint.h>
#include <string.h>

#include "harness.h"

#define TIS_BASE        0xfed40000u
#define TIS_LOC(l)      (TIS_BASE + 0x1000u * (l))
#define TIS_ACCESS(l)   (TIS_LOC(l) + 0x00)
#define TIS_INT_EN(l)   (TIS_LOC(l) + 0x08)
#define TIS_INT_VEC(l)  (TIS_LOC(l) + 0x0c)
#define TIS_INT_STS(l)  (TIS_LOC(l) + 0x10)
#define TIS_INTF_CAP(l) (TIS_LOC(l) + 0x14)
#define TIS_STS(l)      (TIS_LOC(l) + 0x18)
#define TIS_FIFO(l)     (TIS_LOC(l) + 0x24)
#define TIS_IFACE_ID(l) (TIS_LOC(l) + 0x30)
#define TIS_XFIFO(l)    (TIS_LOC(l) + 0x80)
#define TIS_DID_VID(l)  (TIS_LOC(l) + 0xf00)
#define TIS_RID(l)      (TIS_LOC(l) + 0xf04)

#define ACC_ESTABLISHMENT 0x01u
#define ACC_REQUEST_USE   0x02u
#define ACC_PENDING       0x04u
#define ACC_SEIZE         0x08u
#define ACC_BEEN_SEIZED   0x10u
#define ACC_ACTIVE        0x20u
#define ACC_VALID         0x80u

#define STS_RETRY       0x02u
#define STS_SELFTEST    0x04u
#define STS_EXPECT      0x08u
#define STS_DATA_AVAIL  0x10u
#define STS_GO          0x20u
#define STS_CMD_READY   0x40u
#define STS_VALID       0x80u
#define STS_CANCEL      0x01000000u
#define STS_FAMILY_MASK 0x0c000000u
#define STS_FAMILY_20   0x04000000u

static inline uint32_t tis_rd(struct vm *vm, uint32_t gpa, unsigned size)
{
    return (uint32_t)mem_mmio_read(vm, gpa, size);
}

static inline void tis_wr(struct vm *vm, uint32_t gpa, uint32_t value, unsigned size)
{
    mem_mmio_write(vm, gpa, value, size);
}

static inline unsigned tis_burst(struct vm *vm, unsigned l)
{
    return tis_rd(vm, TIS_STS(l) + 1, 2);
}

/* Writes a command through the FIFO in burst-count pieces, as Linux's tpm_tis does; returns bytes taken. */
static inline size_t tis_send(struct vm *vm, unsigned l, const uint8_t *cmd, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        unsigned burst = tis_burst(vm, l);
        if (burst == 0)
            break;
        for (unsigned i = 0; i < burst && sent < len; i++)
            tis_wr(vm, TIS_FIFO(l), cmd[sent++], 1);
    }
    return sent;
}

/* Reads what the FIFO offers (dataAvail) into buf; returns the byte count. */
static inline size_t tis_recv(struct vm *vm, unsigned l, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap && (tis_rd(vm, TIS_STS(l), 1) & STS_DATA_AVAIL))
        buf[got++] = (uint8_t)tis_rd(vm, TIS_FIFO(l), 1);
    return got;
}

static inline uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
