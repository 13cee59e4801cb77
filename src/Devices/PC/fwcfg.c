/* fwcfg.c - QEMU's fw_cfg interface (ports 0x510/0x511, DMA at 0x514) that SeaBIOS and OVMF read. */

/*
 * Design: the board fills numbered items and named files before the guest runs;
 * the guest reads them (QEMU docs/specs/fw_cfg.rst).  Items live in a small
 * array searched on select; the data port and DMA then use the cached index.
 * Files get keys from FW_CFG_FILE_FIRST (0x20) in the order they are added, and
 * the file directory item (FW_CFG_FILE_DIR) is rebuilt, sorted by name, on every
 * addition.  No item is writable by the guest: DMA writes end with the error bit,
 * and data-port writes are ignored as in QEMU since v2.4.
 *
 * DMA (fw_cfg.rst "Guest-side DMA Interface"): the guest writes the big-endian
 * address of a FWCfgDmaAccess {BE32 control, BE32 length, BE64 address} to
 * 0x514 (high half) and 0x518 (low half, which triggers).  The transfer checks
 * that the whole destination is writable guest RAM before copying anything; a
 * bad address or a length running past RAM ends with the error bit set.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"

#define LOG_COMPONENT "fwcfg"

#define FWCFG_PORT_SELECTOR 0x510 /* selector (16-bit) at 0x510, data (8-bit) at 0x511 */
#define FWCFG_PORT_DMA      0x514 /* 64-bit DMA address register, big-endian */

#define FWCFG_KEY_WRITE 0x4000u /* selector bit 14: write channel, ignored since QEMU v2.4 */
#define FWCFG_KEY_ARCH  0x8000u
#define FWCFG_KEY_INDEX 0x3fffu

#define FWCFG_ID_TRADITIONAL 0x1u
#define FWCFG_ID_DMA         0x2u

#define FWCFG_DMA_CTL_ERROR  0x01u
#define FWCFG_DMA_CTL_READ   0x02u
#define FWCFG_DMA_CTL_SKIP   0x04u
#define FWCFG_DMA_CTL_SELECT 0x08u
#define FWCFG_DMA_CTL_WRITE  0x10u

#define FWCFG_FILE_NAME_MAX   56 /* including the NUL */
#define FWCFG_DIR_ENTRY_BYTES 64
#define FWCFG_DMA_DESC_BYTES  16
#define FWCFG_PAGE            4096u

static const uint8_t g_dma_signature[8] = {'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G'};

struct fwcfg_item {
    uint16_t key; /* without the write bit */
    uint8_t *data;
    uint32_t len;
};

struct fwcfg_file {
    char name[FWCFG_FILE_NAME_MAX];
    uint16_t key;
    void (*select_hook)(void *opaque); /* called when the guest selects the file, before it reads */
    void *select_opaque;
};

struct fwcfg {
    struct pdm_dev *dev;
    struct vm *vm;
    bool dma_enabled;
    struct io_region *io_ctl, *io_dma;
    struct fwcfg_item *items;
    size_t item_count, item_cap;
    struct fwcfg_file *files; /* sorted by name */
    size_t file_count, file_cap;
    /* Guest-visible state. */
    uint16_t selector; /* as the guest wrote it */
    size_t cur;        /* index into items, or SIZE_MAX: no such item */
    uint32_t offset;
    uint8_t dma_addr[8]; /* the address register, big-endian bytes */
};

static struct fwcfg *fwcfg_of(struct pdm_dev *dev)
{
    if (!dev || pdm_dev_desc(dev) != &g_dev_fwcfg)
        return NULL;
    return pdm_dev_state(dev);
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* ---- items -------------------------------------------------------------------------- */

static size_t item_find(const struct fwcfg *s, uint16_t key)
{
    key &= (uint16_t)~FWCFG_KEY_WRITE;
    for (size_t i = 0; i < s->item_count; i++)
        if (s->items[i].key == key)
            return i;
    return SIZE_MAX;
}

/* Stores a copy of data under key, replacing an earlier value; the caller checked key and len. */
static int item_put(struct fwcfg *s, uint16_t key, const void *data, size_t len)
{
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return VERR_NO_MEMORY;
        memcpy(copy, data, len);
    }
    size_t i = item_find(s, key);
    if (i == SIZE_MAX) {
        if (s->item_count == s->item_cap) {
            size_t cap = s->item_cap ? s->item_cap * 2 : 32;
            struct fwcfg_item *n = realloc(s->items, cap * sizeof(*n));
            if (!n) {
                free(copy);
                return VERR_NO_MEMORY;
            }
            s->items = n;
            s->item_cap = cap;
        }
        i = s->item_count++;
        s->items[i].key = key;
        s->items[i].data = NULL;
    }
    free(s->items[i].data);
    s->items[i].data = copy;
    s->items[i].len = (uint32_t)len;
    return 0;
}

static bool key_is_settable(uint16_t key)
{
    if (key & FWCFG_KEY_WRITE)
        return false;
    /* The directory and the file keys belong to fwcfg_add_file. */
    if (key == FWCFG_FILE_DIR || (!(key & FWCFG_KEY_ARCH) && key >= FWCFG_FILE_FIRST))
        return false;
    return true;
}

int fwcfg_set_item(struct pdm_dev *fwcfg, uint16_t key, const void *data, size_t len)
{
    struct fwcfg *s = fwcfg_of(fwcfg);
    if (!s || (len && !data) || !key_is_settable(key))
        return VERR_INVALID_PARAMETER;
    if (len > UINT32_MAX)
        return VERR_TOO_LARGE;
    vm_lock(s->vm);
    int rc = item_put(s, key, data, len);
    vm_unlock(s->vm);
    return rc;
}

/* Numeric items are little-endian in the fw_cfg ABI (fw_cfg.rst, FW_CFG_ID). */
int fwcfg_set_u16(struct pdm_dev *fwcfg, uint16_t key, uint16_t value)
{
    uint8_t b[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
    return fwcfg_set_item(fwcfg, key, b, sizeof(b));
}

int fwcfg_set_u32(struct pdm_dev *fwcfg, uint16_t key, uint32_t value)
{
    uint8_t b[4];
    for (unsigned i = 0; i < 4; i++)
        b[i] = (uint8_t)(value >> (8 * i));
    return fwcfg_set_item(fwcfg, key, b, sizeof(b));
}

int fwcfg_set_u64(struct pdm_dev *fwcfg, uint16_t key, uint64_t value)
{
    uint8_t b[8];
    for (unsigned i = 0; i < 8; i++)
        b[i] = (uint8_t)(value >> (8 * i));
    return fwcfg_set_item(fwcfg, key, b, sizeof(b));
}

/* ---- files ----------------------------------------------------------------------------- */

static size_t file_find(const struct fwcfg *s, const char *name)
{
    for (size_t i = 0; i < s->file_count; i++)
        if (strcmp(s->files[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* The directory (fw_cfg.rst, FW_CFG_FILE_DIR): BE32 count, then {BE32 size, BE16 select, BE16 0, name[56]}. */
static void dir_fill(const struct fwcfg *s, uint8_t *dir)
{
    be32_put(dir, (uint32_t)s->file_count);
    for (size_t i = 0; i < s->file_count; i++) {
        uint8_t *e = dir + 4 + i * FWCFG_DIR_ENTRY_BYTES;
        size_t it = item_find(s, s->files[i].key);
        be32_put(e, it == SIZE_MAX ? 0 : s->items[it].len);
        be16_put(e + 4, s->files[i].key);
        be16_put(e + 6, 0);
        memset(e + 8, 0, FWCFG_FILE_NAME_MAX);
        memcpy(e + 8, s->files[i].name, strlen(s->files[i].name));
    }
}

int fwcfg_add_file(struct pdm_dev *fwcfg, const char *name, const void *data, size_t len)
{
    struct fwcfg *s = fwcfg_of(fwcfg);
    if (!s || !name || (len && !data))
        return VERR_INVALID_PARAMETER;
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len >= FWCFG_FILE_NAME_MAX) {
        LOG_ERR("fw_cfg file name '%s' is empty or longer than %d characters", name, FWCFG_FILE_NAME_MAX - 1);
        return VERR_INVALID_PARAMETER;
    }
    if (len > UINT32_MAX)
        return VERR_TOO_LARGE;
    vm_lock(s->vm);
    size_t existing = file_find(s, name);
    size_t count = s->file_count + (existing == SIZE_MAX ? 1 : 0);
    uint16_t key = existing == SIZE_MAX ? (uint16_t)(FWCFG_FILE_FIRST + s->file_count) : s->files[existing].key;
    int rc = 0;
    if (existing == SIZE_MAX && FWCFG_FILE_FIRST + s->file_count > FWCFG_KEY_INDEX)
        rc = VERR_TOO_LARGE;
    if (!rc && s->file_count == s->file_cap) {
        size_t cap = s->file_cap ? s->file_cap * 2 : 16;
        struct fwcfg_file *n = realloc(s->files, cap * sizeof(*n));
        if (n) {
            s->files = n;
            s->file_cap = cap;
        } else {
            rc = VERR_NO_MEMORY;
        }
    }
    /* Everything that can fail happens before the first change, so a failure leaves the device as it was. */
    size_t dir_len = 4 + count * FWCFG_DIR_ENTRY_BYTES;
    uint8_t *dir = rc ? NULL : malloc(dir_len);
    if (!rc && !dir)
        rc = VERR_NO_MEMORY;
    if (!rc)
        rc = item_put(s, key, data, len);
    if (rc) {
        free(dir);
        vm_unlock(s->vm);
        return rc;
    }
    if (existing == SIZE_MAX) {
        /* Insert in name order so the directory comes out sorted; an added-again file keeps its key. */
        size_t pos = 0;
        while (pos < s->file_count && strcmp(s->files[pos].name, name) < 0)
            pos++;
        memmove(&s->files[pos + 1], &s->files[pos], (s->file_count - pos) * sizeof(*s->files));
        memset(&s->files[pos], 0, sizeof(s->files[pos]));
        memcpy(s->files[pos].name, name, name_len);
        s->files[pos].key = key;
        s->file_count++;
    }
    dir_fill(s, dir);
    /* The directory item exists from construction on: hand it the new buffer. */
    struct fwcfg_item *it = &s->items[item_find(s, FWCFG_FILE_DIR)];
    free(it->data);
    it->data = dir;
    it->len = (uint32_t)dir_len;
    vm_unlock(s->vm);
    return 0;
}

int fwcfg_set_file_hook(struct pdm_dev *fwcfg, const char *name, void (*fn)(void *opaque), void *opaque)
{
    struct fwcfg *s = fwcfg_of(fwcfg);
    if (!s || !name)
        return VERR_INVALID_PARAMETER;
    vm_lock(s->vm);
    size_t i = file_find(s, name);
    if (i != SIZE_MAX) {
        s->files[i].select_hook = fn;
        s->files[i].select_opaque = opaque;
    }
    vm_unlock(s->vm);
    return i == SIZE_MAX ? VERR_NOT_FOUND : 0;
}

/* ---- guest interface -------------------------------------------------------------------- */

static void fwcfg_select(struct fwcfg *s, uint16_t key)
{
    uint16_t plain = key & (uint16_t)~FWCFG_KEY_WRITE;
    for (size_t i = 0; i < s->file_count; i++) {
        if (s->files[i].key == plain && s->files[i].select_hook) {
            /* The hook may replace the file's contents (fwcfg_add_file keeps its key). */
            s->files[i].select_hook(s->files[i].select_opaque);
            break;
        }
    }
    s->selector = key;
    s->cur = item_find(s, key);
    s->offset = 0;
}

static uint8_t data_read_byte(struct fwcfg *s)
{
    if (s->cur >= s->item_count)
        return 0;
    const struct fwcfg_item *it = &s->items[s->cur];
    if (s->offset >= it->len)
        return 0;
    return it->data[s->offset++];
}

static uint64_t ctl_read(void *opaque, uint64_t offset, unsigned size)
{
    struct fwcfg *s = opaque;
    /* The data register is byte-wide at 0x511; the selector is write-only. */
    if (offset == 1 && size == 1)
        return data_read_byte(s);
    return 0;
}

static void ctl_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct fwcfg *s = opaque;
    if (offset == 0 && size == 2)
        fwcfg_select(s, (uint16_t)value);
}

static const struct io_ops g_ctl_ops = {
    .read = ctl_read,
    .write = ctl_write,
    .min_access = 1,
    .max_access = 2,
};

/* Whether [gpa, gpa+len) is all writable guest RAM; checks page by page where one lookup does not cover it. */
static bool dma_range_ok(struct vm *vm, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        return true;
    if (gpa + len < gpa)
        return false;
    if (len <= SIZE_MAX && mem_gpa_to_hva(vm, gpa, (size_t)len, true))
        return true;
    uint64_t end = gpa + len;
    while (gpa < end) {
        uint64_t chunk = RT_MIN(end - gpa, FWCFG_PAGE - (gpa & (FWCFG_PAGE - 1)));
        if (!mem_gpa_to_hva(vm, gpa, (size_t)chunk, true))
            return false;
        gpa += chunk;
    }
    return true;
}

/* Copies length bytes of the selected item (zeros past its end) to guest memory; 0 or the error bit. */
static uint32_t dma_read(struct fwcfg *s, uint64_t gpa, uint32_t length)
{
    static const uint8_t zeros[FWCFG_PAGE];
    if (!dma_range_ok(s->vm, gpa, length))
        return FWCFG_DMA_CTL_ERROR;
    uint32_t done = 0;
    if (s->cur < s->item_count) {
        const struct fwcfg_item *it = &s->items[s->cur];
        if (s->offset < it->len) {
            uint32_t n = RT_MIN(length, it->len - s->offset);
            if (mem_write(s->vm, gpa, it->data + s->offset, n) != 0)
                return FWCFG_DMA_CTL_ERROR;
            s->offset += n;
            done = n;
        }
    }
    while (done < length) {
        uint32_t n = RT_MIN(length - done, (uint32_t)sizeof(zeros));
        if (mem_write(s->vm, gpa + done, zeros, n) != 0)
            return FWCFG_DMA_CTL_ERROR;
        done += n;
    }
    return 0;
}

static void dma_skip(struct fwcfg *s, uint32_t length)
{
    if (s->cur >= s->item_count)
        return;
    uint32_t len = s->items[s->cur].len;
    s->offset = s->offset >= len ? s->offset : (uint32_t)RT_MIN((uint64_t)s->offset + length, (uint64_t)len);
}

static void dma_transfer(struct fwcfg *s, uint64_t desc_gpa)
{
    uint8_t desc[FWCFG_DMA_DESC_BYTES];
    if (!dma_range_ok(s->vm, desc_gpa, sizeof(desc))) {
        LOG_DEBUG("DMA descriptor at 0x%llx is not in RAM; ignored", (unsigned long long)desc_gpa);
        return;
    }
    if (mem_read(s->vm, desc_gpa, desc, sizeof(desc)) != 0)
        return;
    uint32_t control = be32_get(desc);
    uint32_t length = be32_get(desc + 4);
    uint64_t addr = (uint64_t)be32_get(desc + 8) << 32 | be32_get(desc + 12);

    if (control & FWCFG_DMA_CTL_SELECT)
        fwcfg_select(s, (uint16_t)(control >> 16));
    uint32_t result = 0;
    if (control & FWCFG_DMA_CTL_READ) {
        result = dma_read(s, addr, length);
    } else if (control & FWCFG_DMA_CTL_WRITE) {
        /* No item is guest-writable in Vireo: any write of data is refused. */
        if (length > 0)
            result = FWCFG_DMA_CTL_ERROR;
    } else if (control & FWCFG_DMA_CTL_SKIP) {
        dma_skip(s, length);
    }
    uint8_t out[4];
    be32_put(out, result);
    mem_write(s->vm, desc_gpa, out, sizeof(out));
}

static uint64_t dma_port_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    /* Reads give the signature "QEMU CFG" as a big-endian 64-bit value, whatever was written. */
    uint64_t v = 0;
    for (unsigned i = 0; i < size && offset + i < sizeof(g_dma_signature); i++)
        v |= (uint64_t)g_dma_signature[offset + i] << (8 * i);
    return v;
}

static void dma_port_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct fwcfg *s = opaque;
    if (size != 4 || (offset != 0 && offset != 4))
        return;
    /* The port carries the register's bytes in memory order: the value is big-endian on the wire. */
    for (unsigned i = 0; i < 4; i++)
        s->dma_addr[offset + i] = (uint8_t)(value >> (8 * i));
    if (offset != 4)
        return;
    uint64_t addr = (uint64_t)be32_get(s->dma_addr) << 32 | be32_get(s->dma_addr + 4);
    memset(s->dma_addr, 0, sizeof(s->dma_addr));
    dma_transfer(s, addr);
}

static const struct io_ops g_dma_ops = {
    .read = dma_port_read,
    .write = dma_port_write,
    .min_access = 1,
    .max_access = 4,
};

/* ---- lifecycle -------------------------------------------------------------------------- */

static void fwcfg_reset(struct pdm_dev *dev)
{
    struct fwcfg *s = pdm_dev_state(dev);
    fwcfg_select(s, FWCFG_SIGNATURE);
    memset(s->dma_addr, 0, sizeof(s->dma_addr));
}

static int fwcfg_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = {"dma", NULL};
    struct fwcfg *s = pdm_dev_state(dev);
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), allowed);
    if (!rc)
        rc = pdm_cfg_get_bool(cfg, "dma", true, &s->dma_enabled);
    if (rc)
        return rc;
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    s->cur = SIZE_MAX;

    static const char signature[4] = {'Q', 'E', 'M', 'U'};
    rc = item_put(s, FWCFG_SIGNATURE, signature, sizeof(signature));
    if (!rc)
        rc = fwcfg_set_u32(dev, FWCFG_ID, FWCFG_ID_TRADITIONAL | (s->dma_enabled ? FWCFG_ID_DMA : 0));
    if (!rc) {
        /* An empty directory until the board adds files. */
        uint8_t empty[4] = {0};
        rc = item_put(s, FWCFG_FILE_DIR, empty, sizeof(empty));
    }
    if (!rc)
        rc = iom_region_create(s->vm, "fwcfg", 2, &g_ctl_ops, s, &s->io_ctl);
    if (!rc)
        rc = iom_region_map(s->io_ctl, FWCFG_PORT_SELECTOR);
    if (!rc && s->dma_enabled) {
        rc = iom_region_create(s->vm, "fwcfg-dma", 8, &g_dma_ops, s, &s->io_dma);
        if (!rc)
            rc = iom_region_map(s->io_dma, FWCFG_PORT_DMA);
    }
    if (rc)
        return rc;
    fwcfg_reset(dev);
    return 0;
}

static void fwcfg_destroy(struct pdm_dev *dev)
{
    struct fwcfg *s = pdm_dev_state(dev);
    iom_region_destroy(s->io_ctl);
    iom_region_destroy(s->io_dma);
    s->io_ctl = s->io_dma = NULL;
    for (size_t i = 0; i < s->item_count; i++)
        free(s->items[i].data);
    free(s->items);
    free(s->files);
    s->items = NULL;
    s->files = NULL;
    s->item_count = s->file_count = 0;
}

static int fwcfg_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct fwcfg *s = pdm_dev_state(dev);
    ssm_put_u16(ssm, s->selector);
    ssm_put_u32(ssm, s->offset);
    ssm_put_bytes(ssm, s->dma_addr, sizeof(s->dma_addr));
    return ssm_status(ssm);
}

static int fwcfg_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct fwcfg *s = pdm_dev_state(dev);
    if (version != 1)
        return VERR_SSM_VERSION;
    uint16_t selector = 0;
    uint32_t offset = 0;
    uint8_t dma_addr[8] = {0};
    ssm_get_u16(ssm, &selector);
    ssm_get_u32(ssm, &offset);
    ssm_get_bytes(ssm, dma_addr, sizeof(dma_addr));
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    fwcfg_select(s, selector);
    /* The items come from the configuration; an offset past the item's end just reads zeros. */
    s->offset = offset;
    memcpy(s->dma_addr, dma_addr, sizeof(dma_addr));
    return 0;
}

const struct pdm_dev_desc g_dev_fwcfg = {
    .name = "fwcfg",
    .description = "QEMU fw_cfg interface (ports 0x510/0x511, DMA at 0x514) for SeaBIOS and OVMF",
    .state_size = sizeof(struct fwcfg),
    .ssm_version = 1,
    .construct = fwcfg_construct,
    .reset = fwcfg_reset,
    .save = fwcfg_save,
    .load = fwcfg_load,
    .destroy = fwcfg_destroy,
};
