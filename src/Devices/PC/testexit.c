/* testexit.c - the test exit device: a guest write to port 0xf4 powers the VM off with that exit code. */

/*
 * Guest test programs end by writing their result to this port; vireo-vm then
 * exits with status (value & 0xff), so a test runner can tell pass from fail
 * without parsing output.  Byte, word and dword writes at the base port all
 * count; the other three ports of the dword window ignore writes.  Reads return 0.
 */

#include <stdint.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "testexit"

#define TESTEXIT_DEFAULT_PORT 0xf4
#define TESTEXIT_PORTS 4
#define TESTEXIT_SSM_VERSION 1

struct testexit {
    struct pdm_dev *dev;
    struct io_region *region;
};

static uint64_t testexit_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)size;
    return 0;
}

static void testexit_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct testexit *s = opaque;
    (void)size;
    if (offset != 0)
        return;
    int code = (int)(value & 0xff);
    LOG_INFO("guest requested exit with code %d", code);
    vm_request_poweroff(pdm_dev_vm(s->dev), code);
}

static const struct io_ops g_testexit_ops = {
    .read = testexit_read,
    .write = testexit_write,
    .min_access = 1,
    .max_access = 4,
};

static int testexit_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = {"iobase", NULL};
    struct testexit *s = pdm_dev_state(dev);
    s->dev = dev;
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), allowed);
    if (rc < 0)
        return rc;
    uint64_t iobase;
    rc = pdm_cfg_get_u64(cfg, "iobase", TESTEXIT_DEFAULT_PORT, &iobase);
    if (rc < 0)
        return rc;
    if (iobase > 0x10000 - TESTEXIT_PORTS) {
        LOG_ERR("%s: iobase 0x%llx out of range", pdm_dev_name(dev), (unsigned long long)iobase);
        return VERR_CFG_BAD_VALUE;
    }
    rc = iom_region_create(pdm_dev_vm(dev), pdm_dev_name(dev), TESTEXIT_PORTS, &g_testexit_ops, s, &s->region);
    if (rc < 0)
        return rc;
    rc = iom_region_map(s->region, (uint16_t)iobase);
    if (rc < 0)
        LOG_ERR("%s: port 0x%llx is taken", pdm_dev_name(dev), (unsigned long long)iobase);
    return rc;
}

static void testexit_reset(struct pdm_dev *dev)
{
    (void)dev;
}

static void testexit_destroy(struct pdm_dev *dev)
{
    struct testexit *s = pdm_dev_state(dev);
    if (s->region)
        iom_region_destroy(s->region);
    s->region = NULL;
}

/* No guest-visible state; the unit exists so saved states list every device. */
static int testexit_save(struct pdm_dev *dev, struct ssm *ssm)
{
    (void)dev;
    return ssm_status(ssm);
}

static int testexit_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    (void)dev;
    if (version != TESTEXIT_SSM_VERSION)
        return VERR_SSM_VERSION;
    return ssm_status(ssm);
}

const struct pdm_dev_desc g_dev_testexit = {
    .name = "testexit",
    .description = "test exit device (guest writes its exit code to port 0xf4)",
    .state_size = sizeof(struct testexit),
    .ssm_version = TESTEXIT_SSM_VERSION,
    .construct = testexit_construct,
    .reset = testexit_reset,
    .save = testexit_save,
    .load = testexit_load,
    .destroy = testexit_destroy,
};
