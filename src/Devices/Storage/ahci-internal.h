/* ahci-internal.h - the AHCI controller's register layout, state and the calls between ahci.c, ahci-port.c and ahci-ata.c. */
#ifndef VIREO_AHCI_INTERNAL_H
#define VIREO_AHCI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/pci.h"
#include "vireo/pdm.h"
#include "vireo/storage.h"
#include "vireo/vm.h"

#include "ata.h"
#include "atapi.h"

#define AHCI_PORTS      6
#define AHCI_SLOTS      32
#define AHCI_ABAR_BYTES 4096

/* ---- Generic host control (AHCI 1.3 section 3.1) ---- */
#define AHCI_HBA_CAP      0x00
#define AHCI_HBA_GHC      0x04
#define AHCI_HBA_IS       0x08
#define AHCI_HBA_PI       0x0c
#define AHCI_HBA_VS       0x10
#define AHCI_HBA_CCC_CTL  0x14
#define AHCI_HBA_CCC_PORTS 0x18
#define AHCI_HBA_EM_LOC   0x1c
#define AHCI_HBA_EM_CTL   0x20
#define AHCI_HBA_CAP2     0x24
#define AHCI_HBA_BOHC     0x28
#define AHCI_PORT_BASE    0x100
#define AHCI_PORT_STRIDE  0x80

#define AHCI_CAP_S64A  (1u << 31)
#define AHCI_CAP_SNCQ  (1u << 30)
#define AHCI_CAP_SSNTF (1u << 29)
#define AHCI_CAP_SAL   (1u << 25)
#define AHCI_CAP_SCLO  (1u << 24)
#define AHCI_CAP_ISS_GEN3 (3u << 20)
#define AHCI_CAP_SAM   (1u << 18)
#define AHCI_CAP_NCS_SHIFT 8

#define AHCI_GHC_AE (1u << 31)
#define AHCI_GHC_IE (1u << 1)
#define AHCI_GHC_HR (1u << 0)

#define AHCI_VERSION_1_3 0x00010300u

/* ---- Port registers (section 3.3), offsets inside a port's 0x80 bytes ---- */
#define AHCI_PX_CLB  0x00
#define AHCI_PX_CLBU 0x04
#define AHCI_PX_FB   0x08
#define AHCI_PX_FBU  0x0c
#define AHCI_PX_IS   0x10
#define AHCI_PX_IE   0x14
#define AHCI_PX_CMD  0x18
#define AHCI_PX_TFD  0x20
#define AHCI_PX_SIG  0x24
#define AHCI_PX_SSTS 0x28
#define AHCI_PX_SCTL 0x2c
#define AHCI_PX_SERR 0x30
#define AHCI_PX_SACT 0x34
#define AHCI_PX_CI   0x38
#define AHCI_PX_SNTF 0x3c
#define AHCI_PX_FBS  0x40

/* PxIS / PxIE bits (3.3.5, 3.3.6). */
#define AHCI_PX_IS_DHRS (1u << 0)
#define AHCI_PX_IS_PSS  (1u << 1)
#define AHCI_PX_IS_DSS  (1u << 2)
#define AHCI_PX_IS_SDBS (1u << 3)
#define AHCI_PX_IS_UFS  (1u << 4)
#define AHCI_PX_IS_DPS  (1u << 5)
#define AHCI_PX_IS_PCS  (1u << 6)
#define AHCI_PX_IS_DMPS (1u << 7)
#define AHCI_PX_IS_PRCS (1u << 22)
#define AHCI_PX_IS_IPMS (1u << 23)
#define AHCI_PX_IS_OFS  (1u << 24)
#define AHCI_PX_IS_INFS (1u << 26)
#define AHCI_PX_IS_IFS  (1u << 27)
#define AHCI_PX_IS_HBDS (1u << 28)
#define AHCI_PX_IS_HBFS (1u << 29)
#define AHCI_PX_IS_TFES (1u << 30)
#define AHCI_PX_IS_CPDS (1u << 31)
/* PCS and PRCS mirror PxSERR.DIAG bits and are not write-one-to-clear; CPDS and DMPS need features we lack. */
#define AHCI_PX_IS_W1C  0x7d8000bfu
#define AHCI_PX_IE_MASK 0xfdc000ffu

/* PxCMD bits (3.3.7). */
#define AHCI_PX_CMD_ST    (1u << 0)
#define AHCI_PX_CMD_SUD   (1u << 1)
#define AHCI_PX_CMD_POD   (1u << 2)
#define AHCI_PX_CMD_CLO   (1u << 3)
#define AHCI_PX_CMD_FRE   (1u << 4)
#define AHCI_PX_CMD_CCS_SHIFT 8
#define AHCI_PX_CMD_CCS_MASK  (0x1fu << 8)
#define AHCI_PX_CMD_FR    (1u << 14)
#define AHCI_PX_CMD_CR    (1u << 15)
#define AHCI_PX_CMD_ATAPI (1u << 24)
#define AHCI_PX_CMD_DLAE  (1u << 25)
#define AHCI_PX_CMD_ICC_SHIFT 28

/* PxTFD after reset without a device (3.3.8) and PxSSTS with one: DET=3, Gen3, IPM active (3.3.10). */
#define AHCI_TFD_NO_DEVICE 0x7fu
#define AHCI_SSTS_ONLINE   0x133u
#define AHCI_SCTL_DET_MASK 0xfu

#define AHCI_SIG_DISK  0x00000101u
#define AHCI_SIG_ATAPI 0xeb140101u

/* FIS types (SATA 3.x section 10.3) and the received-FIS area layout (AHCI 4.2.1). */
#define FIS_TYPE_REG_H2D   0x27
#define FIS_TYPE_REG_D2H   0x34
#define FIS_TYPE_DMA_SETUP 0x41
#define FIS_TYPE_PIO_SETUP 0x5f
#define FIS_TYPE_SDB       0xa1
#define AHCI_RFIS_DSFIS 0x00
#define AHCI_RFIS_PSFIS 0x20
#define AHCI_RFIS_RFIS  0x40
#define AHCI_RFIS_SDBFIS 0x58

/* Command header DW0 (4.2.2). */
#define AHCI_HDR_CFL_MASK 0x1fu
#define AHCI_HDR_A        (1u << 5)
#define AHCI_HDR_W        (1u << 6)
#define AHCI_HDR_R        (1u << 8)
#define AHCI_HDR_B        (1u << 9)
#define AHCI_HDR_C        (1u << 10)
#define AHCI_HDR_PRDTL_SHIFT 16

/* Command table layout (4.2.3). */
#define AHCI_CT_CFIS 0x00
#define AHCI_CT_ACMD 0x40
#define AHCI_CT_PRDT 0x80
#define AHCI_PRD_BYTES 16
#define AHCI_PRD_DBC_MASK 0x3fffffu
#define AHCI_PRD_I (1u << 31)

/* How a command moves data, which decides the FISes the device sends. */
enum ahci_proto {
    AHCI_PROTO_NONDATA,
    AHCI_PROTO_PIO_IN,        /* ATA PIO data-in: the PIO setup FIS carries the ending status */
    AHCI_PROTO_PACKET_PIO_IN, /* ATAPI PIO data-in: PIO setup, then a D2H register FIS */
    AHCI_PROTO_PIO_OUT,
    AHCI_PROTO_DMA_IN,
    AHCI_PROTO_DMA_OUT,
    AHCI_PROTO_NCQ,
};

struct ahci_port;

/* One command slot while its command runs. */
struct ahci_cmd {
    struct ahci_port *port;
    unsigned slot;
    unsigned tag;        /* NCQ tag (the SActive bit), else == slot */
    uint8_t cfis[20];    /* the H2D register FIS */
    uint8_t acmd[16];    /* ATAPI command packet */
    uint64_t ctba;       /* command table address */
    unsigned prdtl;
    enum ahci_proto proto;
    bool is_write;       /* data from guest memory to the medium */
    bool fua;            /* write through: flush after the write */
    bool aborted;        /* the port was reset or stopped: the result is dropped */
    bool prd_irq;        /* a PRD entry with the I bit was consumed (PxIS.DPS) */
    struct drive_sg *sg; /* the PRDT as guest-physical ranges (malloc'ed) */
    unsigned sg_count;
    uint64_t sg_bytes;   /* total bytes the PRDT describes */
    uint64_t xfer_bytes; /* bytes the command moves */
    uint64_t done_bytes; /* PRDBC at the end */
    /* Follow-up work done from the completion (FUA flush, discard ranges). */
    unsigned stage;
    uint8_t *buf;        /* controller-owned data (DSM ranges) */
    uint32_t buf_len;
    uint32_t buf_pos;
    struct ata_cmd ata;  /* the decoded ATA command (NCQ commands fill it too) */
    struct atapi_cmd pkt;
    struct drive_req req;
};

struct ahci_hba;

struct ahci_port {
    struct ahci_hba *hba;
    unsigned index;
    struct drive *drive; /* NULL: nothing attached */
    bool atapi;

    uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, ssts, sctl, serr, sact, ci, sntf;

    uint32_t busy;       /* slots whose command holds its struct ahci_cmd */
    uint32_t ncq_tags;   /* NCQ tags the device accepted and has not finished */
    bool nonq_active;    /* a non-queued command runs (the device takes one at a time) */
    bool halted;         /* a fatal error stopped command processing until ST is cleared */
    bool comreset;       /* PxSCTL.DET = 1: COMRESET asserted */
    bool srst;           /* a control FIS set SRST */
    bool ncq_error;      /* an NCQ command failed; the device aborts queued commands until log 10h is read */
    uint8_t ncq_log[16]; /* bytes 0..13 of log page 10h for the failed command */
    struct ata_dev ata;  /* the drive's ATA settings (multiple count, write cache, power) */
    struct atapi_dev cd; /* CD drives: the SCSI/MMC engine's state */
    uint8_t *reply;      /* CD drives: ATAPI_REPLY_MAX bytes for the engine's replies */
    bool an_enabled;     /* SATA asynchronous notification enabled (SET FEATURES 10h/05h) */
    uint32_t last_slot;  /* slot of the command started last (PxCMD.CCS) */

    struct ahci_cmd cmds[AHCI_SLOTS];
};

struct ahci_hba {
    struct pdm_dev *dev;
    struct vm *vm;
    struct pci_dev *pci;
    struct mem_region *abar;
    uint32_t ghc, is;
    bool quiesce;        /* reset, saved state: completions start no new commands */
    bool irq_level;
    struct ahci_port ports[AHCI_PORTS];
};

static inline uint32_t ahci_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void ahci_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ahci.c */
void ahci_hba_update_irq(struct ahci_hba *hba);

/* ahci-port.c */
uint32_t ahci_port_read(struct ahci_port *port, unsigned offset);
void ahci_port_write(struct ahci_port *port, unsigned offset, uint32_t value);
/* Power-on or HBA reset of the port and its device (hba_reset keeps PxCLB/PxFB as GHC.HR does). */
void ahci_port_reset(struct ahci_port *port, bool hba_reset);
/* Starts what PxCI holds and the port may run now. */
void ahci_port_process(struct ahci_port *port);
/* Waits for every drive request of the port (their completions run first). */
void ahci_port_drain(struct ahci_port *port);
/* Raises PxIS bits and updates the HBA's interrupt. */
void ahci_port_raise(struct ahci_port *port, uint32_t is_bits);
/*
 * Ends a command with the device's result: PRDBC, the FISes its protocol calls for,
 * PxTFD, PxCI or PxSACT, interrupts; an error halts the port (TFES).  Callers on the
 * completion path call ahci_port_process() afterwards.
 */
void ahci_cmd_finish(struct ahci_cmd *c, const struct ata_result *res);
/* Maps the PRDT for at most need bytes into c->sg; false when it describes fewer than need. */
bool ahci_cmd_map(struct ahci_cmd *c, uint64_t need);
/* NCQ: the device accepted the command (PxCI bit cleared, D2H FIS without interrupt). */
void ahci_cmd_ncq_accept(struct ahci_cmd *c);
/* Copies host bytes into (or out of) the command's PRDT ranges; returns the bytes moved. */
uint64_t ahci_cmd_copy_to_guest(struct ahci_cmd *c, const void *buf, uint64_t len);
uint64_t ahci_cmd_copy_from_guest(struct ahci_cmd *c, void *buf, uint64_t len);
/* The ATAPI engine's notification of a media change: asynchronous notification (SNTF, SDB FIS). */
void ahci_port_media_changed(void *opaque);
int ahci_port_save(struct ahci_port *port, struct ssm *ssm);
int ahci_port_load(struct ahci_port *port, struct ssm *ssm, uint32_t version);
/* The signature D2H FIS contents after a reset of the port's device. */
void ahci_port_signature(struct ahci_port *port, struct ata_result *res);

/*
 * ahci-ata.c: runs the command in c->cfis (and c->acmd) against the port's drive and
 * ends it with ahci_cmd_finish, at once or from the drive's done().
 */
void ahci_ata_execute(struct ahci_cmd *c);

#endif
