/* formats.c - the image formats blk_open probes, in probing order (ties go to the earlier entry); each format adds its own line. */
#include "block-core.h"

const struct blk_format_ops *const g_blk_formats[] = {
    &g_blk_format_raw,
    &g_blk_format_iso,
    &g_blk_format_vdi,
    &g_blk_format_qcow2,
    &g_blk_format_vmdk,
    NULL,
};
