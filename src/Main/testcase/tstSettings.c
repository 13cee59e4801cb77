/* tstSettings.c - unit tests for the settings model, XML round trips, schema 1 files, atomic saves, locks, paths and OS presets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/settings.h"

static int tst_setup(void **state)
{
    char dir[64];
    if (harness_dir_create("tstSettings", dir, sizeof(dir)) < 0)
        return -1;
    *state = strdup(dir);
    setenv("VIREO_USER_HOME", dir, 1);
    return *state ? 0 : -1;
}

static int tst_teardown(void **state)
{
    harness_dir_remove(*state);
    free(*state);
    return 0;
}

static char *tst_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char *buf;
    free(buf);
    buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static struct rt_uuid tst_uuid(uint8_t seed)
{
    struct rt_uuid u;
    for (unsigned i = 0; i < 16; i++)
        u.bytes[i] = (uint8_t)(seed * 17 + i);
    u.bytes[6] = (uint8_t)((u.bytes[6] & 0x0F) | 0x40);
    return u;
}

/* Hardware with every field away from its default; variant makes snapshot generations differ. */
static void tst_fill_hardware(struct cfg_hardware *hw, unsigned variant)
{
    hw->cpus = 3 + variant;
    hw->memory_mib = 3072 + variant * 512;
    hw->firmware = CFG_FW_EFI;
    hw->chipset = CFG_CHIPSET_ICH9;
    hw->boot[0] = CFG_BOOT_NET;
    hw->boot[1] = CFG_BOOT_DISK;
    hw->boot[2] = CFG_BOOT_NONE;
    hw->boot[3] = CFG_BOOT_FLOPPY;
    hw->ioapic = false;
    hw->hpet = true;
    hw->tpm = CFG_TPM_V2_0;
    hw->rtc_utc = true;
    assert_int_equal(cfg_controller_add(hw, "SATA", CFG_BUS_SATA, 6 + variant), 0);
    assert_int_equal(cfg_controller_add(hw, "VirtIO", CFG_BUS_VIRTIO, 3), 0);
    struct cfg_attachment a = { .controller = "SATA", .port = 5, .type = CFG_MEDIUM_HDD,
                                .medium = tst_uuid(1), .nonrotational = true, .hotpluggable = true };
    assert_int_equal(cfg_attachment_set(hw, &a), 0);
    struct cfg_attachment dvd = { .controller = "IDE", .port = 1, .device = 1, .type = CFG_MEDIUM_DVD };
    assert_int_equal(cfg_attachment_set(hw, &dvd), 0);
    struct cfg_attachment vd = { .controller = "VirtIO", .port = 2, .type = CFG_MEDIUM_HDD, .medium = tst_uuid(2) };
    assert_int_equal(cfg_attachment_set(hw, &vd), 0);

    for (unsigned n = 0; n < 2; n++) {
        struct cfg_nic *nic = &hw->nics[n * 3];
        nic->enabled = true;
        nic->type = n ? CFG_NIC_RTL8139 : CFG_NIC_VIRTIO;
        nic->attach = n ? CFG_NET_BRIDGED : CFG_NET_NAT;
        snprintf(nic->mac, sizeof(nic->mac), "0A00271234%02X", n + variant);
        nic->cable_connected = n == 0;
        nic->bridge_interface = n ? strdup("br0") : NULL;
        nic->network = n ? NULL : strdup("intnet \"x\"");
        nic->forward_count = 2;
        nic->forwards = calloc(2, sizeof(*nic->forwards));
        nic->forwards[0] = (struct cfg_port_forward){ .name = strdup("ssh"), .host_ip = strdup("127.0.0.1"),
                                                      .host_port = 2222, .guest_port = 22 };
        nic->forwards[1] = (struct cfg_port_forward){ .name = strdup("dns <udp>"), .udp = true,
                                                      .guest_ip = strdup("fe80::1"), .host_port = 5353,
                                                      .guest_port = 53 };
    }
    hw->audio = (struct cfg_audio){ .enabled = true, .driver = CFG_AUDIO_ALSA, .controller = CFG_AUDIO_SB16,
                                    .output = false, .input = true };
    hw->usb.enabled = true;
    hw->usb.controller = CFG_USB_XHCI;
    hw->usb.filter_count = 2;
    hw->usb.filters = calloc(2, sizeof(*hw->usb.filters));
    hw->usb.filters[0] = (struct cfg_usb_filter){ .name = strdup("Logitech"), .active = true,
                                                  .vendor_id = strdup("046d"), .product_id = strdup("C52B") };
    hw->usb.filters[1] = (struct cfg_usb_filter){ .name = strdup("stick"), .serial = strdup("SN-0001&2") };
    hw->display = (struct cfg_display){ .adapter = CFG_GFX_VIRTIO, .vram_mib = 128, .monitors = 3 };
    hw->remote = (struct cfg_remote){ .vnc_enabled = true, .vnc_port = 5901, .rdp_enabled = true,
                                      .rdp_port = 3390, .address = strdup("0.0.0.0"), .auth = CFG_AUTH_PASSWORD,
                                      .password = strdup("pa\"ss'<&>") };
    hw->shared_folder_count = 2;
    hw->shared_folders = calloc(2, sizeof(*hw->shared_folders));
    hw->shared_folders[0] = (struct cfg_shared_folder){ .name = strdup("data"), .host_path = strdup("/srv/data"),
                                                        .readonly = true, .automount = true,
                                                        .mount_point = strdup("/mnt/data") };
    hw->shared_folders[1] = (struct cfg_shared_folder){ .name = strdup("Ümlaut"), .host_path = strdup("/tmp/ü") };
    hw->serial[0] = (struct cfg_serial){ .enabled = true, .backend = strdup("tcp:127.0.0.1:4555") };
    hw->serial[2] = (struct cfg_serial){ .enabled = false, .backend = strdup("file:/tmp/com3.log") };
    hw->serial[3] = (struct cfg_serial){ .enabled = true, .backend = strdup("unix:/tmp/com4") };
}

static struct cfg_snapshot tst_snapshot(uint8_t seed, const char *name, unsigned variant)
{
    struct cfg_snapshot s = { .uuid = tst_uuid(seed), .name = strdup(name), .time_ns = 1000000000ull * seed,
                              .online = seed % 2, .description = seed == 11 ? strdup("first\nline 2") : NULL };
    if (s.online)
        s.state_file = rt_strdup_printf("Snapshots/{%u}.sav", seed);
    struct cfg_machine *tmp;
    assert_int_equal(cfg_machine_new("tmp", NULL, &tmp), 0);
    cfg_hardware_copy(&s.hw, &tmp->hw);
    cfg_machine_free(tmp);
    tst_fill_hardware(&s.hw, variant);
    return s;
}

static struct cfg_machine *tst_full_machine(void)
{
    struct cfg_machine *m;
    assert_int_equal(cfg_machine_new("Full \"machine\" <&>", "Debian_64", &m), 0);
    m->description = strdup("Line one\n\tLine two with <tags> & \"quotes\" and 'apostrophes'\r\nand ünïcödé ✓");
    tst_fill_hardware(&m->hw, 0);
    m->state = CFG_STATE_SAVED;
    m->state_changed_ns = 1712345678901234567ull;
    m->state_file = strdup("Saved/state.sav");
    m->snapshot_folder = strdup("Snaps");
    /* A three-level tree: root -> (child A -> grandchild), child B. */
    m->snapshot_count = 1;
    m->snapshots = calloc(1, sizeof(*m->snapshots));
    m->snapshots[0] = tst_snapshot(11, "root", 1);
    struct cfg_snapshot *root = &m->snapshots[0];
    root->child_count = 2;
    root->children = calloc(2, sizeof(*root->children));
    root->children[0] = tst_snapshot(12, "child A", 2);
    root->children[1] = tst_snapshot(13, "child B", 3);
    root->children[0].child_count = 1;
    root->children[0].children = calloc(1, sizeof(struct cfg_snapshot));
    root->children[0].children[0] = tst_snapshot(14, "grandchild ✓", 4);
    m->current_snapshot = tst_uuid(14);
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "tricky", "<&\"'>"), 0);
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "utf8/ключ", "значение ✓"), 0);
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "ws", " a\tb\nc\r "), 0);
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "empty", ""), 0);
    return m;
}

static void test_machine_roundtrip(void **state)
{
    struct cfg_machine *m = tst_full_machine();
    char *xml1, *xml2, *xml3;
    size_t len1, len2, len3;
    assert_int_equal(cfg_machine_format(m, &xml1, &len1), 0);
    assert_int_equal(strlen(xml1), len1);
    assert_int_equal(cfg_machine_format(m, &xml2, &len2), 0);
    assert_int_equal(len1, len2);
    assert_memory_equal(xml1, xml2, len1);

    struct cfg_machine *p;
    struct cfg_error err = { "" };
    int rc = cfg_machine_parse("mem.vireo", xml1, len1, &p, &err);
    if (rc)
        fprintf(stderr, "%s\n%s", err.msg, xml1);
    assert_int_equal(rc, 0);
    assert_int_equal(p->schema_version, CFG_SCHEMA_VERSION);
    assert_true(cfg_machine_equal(m, p));
    assert_int_equal(cfg_machine_format(p, &xml3, &len3), 0);
    assert_int_equal(len1, len3);
    assert_memory_equal(xml1, xml3, len1);

    const char *path = harness_path(*state, "full.vireo");
    assert_int_equal(cfg_machine_save(m, path, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct cfg_machine *l;
    assert_int_equal(cfg_machine_load(path, &l, &err), 0);
    assert_true(cfg_machine_equal(m, l));

    /* Every level of the tree came back with its own hardware. */
    struct cfg_snapshot *g = cfg_snapshot_find(l, &l->current_snapshot);
    assert_non_null(g);
    assert_string_equal(g->name, "grandchild ✓");
    assert_int_equal(g->hw.cpus, 7);
    assert_string_equal(cfg_snapshot_parent(l, g)->name, "child A");
    assert_int_equal(cfg_snapshot_parent(l, g)->hw.cpus, 5);
    assert_null(cfg_snapshot_parent(l, &l->snapshots[0]));
    assert_string_equal(cfg_extra_get(l->extra, l->extra_count, "ws"), " a\tb\nc\r ");
    assert_string_equal(l->description, m->description);

    /* A change anywhere makes them differ. */
    cfg_snapshot_find_name(l, "child B")->hw.nics[3].forwards[1].guest_port = 54;
    assert_false(cfg_machine_equal(m, l));

    struct cfg_machine *d;
    assert_int_equal(cfg_machine_dup(m, &d), 0);
    assert_true(cfg_machine_equal(m, d));
    d->hw.usb.filters[1].serial[0] = 'X';
    assert_false(cfg_machine_equal(m, d));
    cfg_machine_free(d);
    free(xml1);
    free(xml2);
    free(xml3);
    cfg_machine_free(l);
    cfg_machine_free(p);
    cfg_machine_free(m);
}

static void test_machine_defaults_and_edits(void **state)
{
    struct cfg_machine *m;
    assert_int_equal(cfg_machine_new("", NULL, &m), VERR_INVALID_PARAMETER);
    assert_int_equal(cfg_machine_new("New VM", "Other", &m), 0);
    assert_false(rt_uuid_is_null(&m->uuid));
    assert_int_equal(m->hw.cpus, 1);
    assert_int_equal(m->hw.memory_mib, 128);
    assert_int_equal(m->hw.firmware, CFG_FW_BIOS);
    assert_int_equal(m->hw.chipset, CFG_CHIPSET_PIIX3);
    assert_int_equal(m->hw.boot[0], CFG_BOOT_DVD);
    assert_int_equal(m->hw.boot[1], CFG_BOOT_DISK);
    assert_int_equal(m->hw.boot[2], CFG_BOOT_NONE);
    assert_int_equal(m->hw.controller_count, 1);
    assert_string_equal(m->hw.controllers[0].name, "IDE");
    assert_int_equal(m->hw.controllers[0].port_count, 2);
    for (unsigned i = 0; i < CFG_MAX_NICS; i++) {
        assert_false(m->hw.nics[i].enabled);
        assert_int_equal(strncmp(m->hw.nics[i].mac, "080027", 6), 0);
        assert_int_equal(strlen(m->hw.nics[i].mac), 12);
    }
    assert_string_not_equal(m->hw.nics[0].mac, m->hw.nics[1].mac);
    assert_false(m->hw.audio.enabled);
    assert_int_equal(m->hw.display.vram_mib, 16);
    assert_false(m->hw.remote.vnc_enabled || m->hw.remote.rdp_enabled);
    assert_false(m->hw.serial[0].enabled);
    /* No TPM by default, and then no element for it: such files stay as older builds wrote them. */
    assert_int_equal(m->hw.tpm, CFG_TPM_NONE);
    char *txt = NULL;
    size_t txt_len = 0;
    assert_int_equal(cfg_machine_format(m, &txt, &txt_len), 0);
    assert_null(strstr(txt, "TrustedPlatformModule"));
    free(txt);
    m->hw.tpm = CFG_TPM_V2_0;
    assert_int_equal(cfg_machine_format(m, &txt, &txt_len), 0);
    assert_non_null(strstr(txt, "<TrustedPlatformModule type=\"v2_0\"/>"));
    free(txt);
    m->hw.tpm = (enum cfg_tpm)7;
    assert_int_not_equal(cfg_machine_format(m, &txt, &txt_len), 0); /* the writer refuses what reading would */
    m->hw.tpm = CFG_TPM_NONE;

    struct cfg_hardware *hw = &m->hw;
    assert_int_equal(cfg_controller_add(hw, "IDE", CFG_BUS_IDE, 2), VERR_ALREADY_EXISTS);
    assert_int_equal(cfg_controller_add(hw, "S", CFG_BUS_SATA, 31), VERR_OUT_OF_RANGE);
    assert_int_equal(cfg_controller_add(hw, "S", CFG_BUS_SATA, 2), 0);
    struct cfg_attachment a = { .controller = "S", .port = 2, .type = CFG_MEDIUM_HDD, .medium = tst_uuid(3) };
    assert_int_equal(cfg_attachment_set(hw, &a), VERR_OUT_OF_RANGE);
    a.port = 1;
    a.device = 1;
    assert_int_equal(cfg_attachment_set(hw, &a), VERR_OUT_OF_RANGE);
    a.device = 0;
    assert_int_equal(cfg_attachment_set(hw, &a), 0);
    a.nonrotational = true;
    assert_int_equal(cfg_attachment_set(hw, &a), 0); /* replaces */
    assert_int_equal(hw->attachment_count, 1);
    assert_true(cfg_attachment_find(hw, "S", 1, 0)->nonrotational);
    a.controller = "nope";
    assert_int_equal(cfg_attachment_set(hw, &a), VERR_NOT_FOUND);
    struct cfg_attachment ide = { .controller = "IDE", .port = 1, .device = 1, .type = CFG_MEDIUM_DVD };
    assert_int_equal(cfg_attachment_set(hw, &ide), 0);
    assert_int_equal(cfg_controller_remove(hw, "S"), 0);
    assert_int_equal(hw->attachment_count, 1);
    assert_null(cfg_controller_find(hw, "S"));
    assert_int_equal(cfg_attachment_remove(hw, "IDE", 1, 1), 0);
    assert_int_equal(cfg_attachment_remove(hw, "IDE", 1, 1), VERR_NOT_FOUND);

    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "k", "v1"), 0);
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "k", "v2"), 0);
    assert_int_equal(m->extra_count, 1);
    assert_string_equal(cfg_extra_get(m->extra, m->extra_count, "k"), "v2");
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "k", NULL), 0);
    assert_null(cfg_extra_get(m->extra, m->extra_count, "k"));
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "", "x"), VERR_INVALID_PARAMETER);

    /* The fresh machine saves and loads as it is. */
    const char *path = harness_path(*state, "new.vireo");
    struct cfg_error err;
    assert_int_equal(cfg_machine_save(m, path, &err), 0);
    struct cfg_machine *l;
    assert_int_equal(cfg_machine_load(path, &l, &err), 0);
    assert_true(cfg_machine_equal(m, l));
    cfg_machine_free(l);
    cfg_machine_free(m);
}

static struct cfg_global *tst_full_global(void)
{
    struct cfg_global *g;
    assert_int_equal(cfg_global_new(&g), 0);
    g->default_machine_folder = strdup("/data/VMs & <stuff>");
    struct rt_uuid u1 = tst_uuid(1), u2 = tst_uuid(2), u3 = tst_uuid(3);
    assert_int_equal(cfg_machine_entry_add(g, &u1, "/data/VMs/a/a.vireo"), 0);
    assert_int_equal(cfg_machine_entry_add(g, &u2, "/data/VMs/b \"q\"/b.vireo"), 0);
    assert_int_equal(cfg_machine_entry_add(g, &u2, "/x.vireo"), VERR_ALREADY_EXISTS);
    assert_int_equal(cfg_machine_entry_add(g, &u3, "relative.vireo"), VERR_INVALID_PARAMETER);
    struct cfg_medium base = { .uuid = u1, .location = "/data/disk.vdi", .type = CFG_MEDIUM_HDD, .format = "vdi" };
    struct cfg_medium diff = { .uuid = u2, .location = "/data/diff.qcow2", .type = CFG_MEDIUM_HDD,
                               .format = "qcow2", .parent = u1 };
    struct cfg_medium iso = { .uuid = u3, .location = "/iso/ü.iso", .type = CFG_MEDIUM_DVD, .format = "iso",
                              .readonly = true };
    assert_int_equal(cfg_medium_add(g, &diff), VERR_NOT_FOUND); /* parent first */
    assert_int_equal(cfg_medium_add(g, &base), 0);
    assert_int_equal(cfg_medium_add(g, &diff), 0);
    assert_int_equal(cfg_medium_add(g, &iso), 0);
    assert_int_equal(cfg_medium_add(g, &iso), VERR_ALREADY_EXISTS);
    assert_int_equal(cfg_extra_set(&g->extra, &g->extra_count, "gui/x", "<&\"'>✓"), 0);
    return g;
}

static void test_global_roundtrip(void **state)
{
    struct cfg_global *g = tst_full_global();
    char *xml1, *xml2;
    size_t len1, len2;
    assert_int_equal(cfg_global_format(g, &xml1, &len1), 0);
    assert_int_equal(cfg_global_format(g, &xml2, &len2), 0);
    assert_int_equal(len1, len2);
    assert_memory_equal(xml1, xml2, len1);
    struct cfg_global *p;
    struct cfg_error err;
    assert_int_equal(cfg_global_parse("Vireo.xml", xml1, len1, &p, &err), 0);
    assert_true(cfg_global_equal(g, p));

    /* Missing file: an empty registry; save creates the config folder 0700. */
    char *gpath = cfg_global_path();
    assert_string_equal(gpath, harness_path(*state, "Vireo.xml"));
    free(gpath);
    const char *path = harness_path(*state, "cfg/sub/Vireo.xml");
    struct cfg_global *e;
    assert_int_equal(cfg_global_load(path, &e, &err), 0);
    assert_int_equal(e->machine_count + e->medium_count + e->extra_count, 0);
    cfg_global_free(e);
    assert_int_equal(cfg_global_save(g, path, &err), 0);
    struct stat st;
    assert_int_equal(stat(harness_path(*state, "cfg/sub"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    struct cfg_global *l;
    assert_int_equal(cfg_global_load(path, &l, &err), 0);
    assert_true(cfg_global_equal(g, l));

    struct rt_uuid u1 = tst_uuid(1), u2 = tst_uuid(2);
    assert_int_equal(cfg_medium_remove(l, &u1), VERR_BUSY);
    assert_int_equal(cfg_medium_remove(l, &u2), 0);
    assert_int_equal(cfg_medium_remove(l, &u1), 0);
    assert_null(cfg_medium_find(l, &u1));
    assert_non_null(cfg_medium_find_location(l, "/iso/ü.iso"));
    assert_int_equal(cfg_machine_entry_remove(l, &u1), 0);
    assert_int_equal(cfg_machine_entry_remove(l, &u1), VERR_NOT_FOUND);
    assert_false(cfg_global_equal(g, l));
    free(xml1);
    free(xml2);
    cfg_global_free(l);
    cfg_global_free(p);
    cfg_global_free(g);
}

static void test_v1_machine(void **state)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/settings/v1/machine.vireo", harness_src_root());
    struct cfg_machine *m;
    struct cfg_error err = { "" };
    int rc = cfg_machine_load(path, &m, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(m->schema_version, 1);
    assert_string_equal(m->name, "Old Debian");
    assert_string_equal(m->ostype, "Debian_64");
    assert_string_equal(m->description, "Made with Vireo 1.0\nsecond line");
    assert_int_equal(m->hw.cpus, 2);
    assert_int_equal(m->hw.memory_mib, 1024);
    assert_int_equal(m->hw.firmware, CFG_FW_EFI);
    assert_int_equal(m->hw.boot[0], CFG_BOOT_DISK);
    assert_int_equal(m->hw.boot[1], CFG_BOOT_DVD);
    assert_int_equal(m->hw.boot[2], CFG_BOOT_NET);
    assert_int_equal(m->hw.boot[3], CFG_BOOT_NONE);
    assert_int_equal(m->hw.controller_count, 2);
    assert_int_equal(m->hw.attachment_count, 2);
    assert_true(m->hw.attachments[0].nonrotational);
    assert_true(rt_uuid_is_null(&m->hw.attachments[1].medium));
    assert_true(m->hw.nics[0].enabled);
    assert_int_equal(m->hw.nics[0].type, CFG_NIC_VIRTIO);
    assert_string_equal(m->hw.nics[0].mac, "080027ABCDEF");
    assert_int_equal(m->hw.nics[0].forward_count, 1);
    assert_int_equal(m->hw.nics[0].forwards[0].host_port, 2222);
    assert_string_equal(m->hw.nics[2].bridge_interface, "eth0");
    assert_string_equal(m->hw.nics[2].mac, "080027000003");
    assert_false(m->hw.nics[1].enabled);
    assert_int_equal(m->hw.audio.controller, CFG_AUDIO_AC97);
    assert_int_equal(m->hw.usb.controller, CFG_USB_EHCI);
    assert_int_equal(m->hw.display.vram_mib, 64);
    assert_int_equal(m->hw.remote.vnc_port, 5905);
    assert_string_equal(m->hw.remote.password, "s3cret");
    assert_string_equal(m->hw.shared_folders[0].mount_point, "/mnt/home");
    assert_int_equal(m->state, CFG_STATE_SAVED);
    assert_string_equal(m->state_file, "Saved/state.sav");
    assert_int_equal(m->snapshot_count, 1);
    assert_int_equal(m->snapshots[0].hw.memory_mib, 512);
    assert_int_equal(m->snapshots[0].hw.boot[0], CFG_BOOT_DVD);
    assert_int_equal(m->snapshots[0].hw.boot[2], CFG_BOOT_NONE);
    struct cfg_snapshot *cur = cfg_snapshot_find(m, &m->current_snapshot);
    assert_non_null(cur);
    assert_string_equal(cur->name, "Updated");
    assert_true(cur->online);
    assert_string_equal(cur->description, "after apt upgrade");
    assert_string_equal(cfg_extra_get(m->extra, m->extra_count, "note"), "<old> & \"quoted\"");

    /* Saving writes schema 2, which loads back the same. */
    const char *out = harness_path(*state, "upgraded.vireo");
    assert_int_equal(cfg_machine_save(m, out, &err), 0);
    assert_non_null(strstr(tst_read(out, NULL), "schemaVersion=\"2\""));
    assert_non_null(strstr(tst_read(out, NULL), "sizeMiB=\"1024\""));
    struct cfg_machine *l;
    assert_int_equal(cfg_machine_load(out, &l, &err), 0);
    assert_int_equal(l->schema_version, 2);
    assert_true(cfg_machine_equal(m, l));
    cfg_machine_free(l);
    cfg_machine_free(m);
}

static void test_v1_global(void **state)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/settings/v1/Vireo.xml", harness_src_root());
    struct cfg_global *g;
    struct cfg_error err = { "" };
    int rc = cfg_global_load(path, &g, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(g->schema_version, 1);
    assert_string_equal(g->default_machine_folder, "/srv/vireo/machines");
    assert_int_equal(g->machine_count, 2);
    assert_string_equal(g->machines[1].path, "/home/user/Vireo VMs/XP/XP.vireo");
    assert_int_equal(g->medium_count, 3);
    assert_string_equal(g->media[1].format, "qcow2");
    assert_memory_equal(&g->media[1].parent, &g->media[0].uuid, sizeof(struct rt_uuid));
    assert_true(g->media[2].readonly);
    assert_int_equal(g->media[2].type, CFG_MEDIUM_DVD);
    assert_string_equal(cfg_extra_get(g->extra, g->extra_count, "gui/LastMachine"),
                        "6f1c2a3e-0b7d-4c1e-9a55-1d2e3f405162");
    const char *out = harness_path(*state, "Vireo2.xml");
    assert_int_equal(cfg_global_save(g, out, &err), 0);
    const char *text = tst_read(out, NULL);
    assert_non_null(strstr(text, "<Preferences defaultMachineFolder="));
    assert_null(strstr(text, "SystemProperties"));
    struct cfg_global *l;
    assert_int_equal(cfg_global_load(out, &l, &err), 0);
    assert_true(cfg_global_equal(g, l));
    cfg_global_free(l);
    cfg_global_free(g);
}

static int tst_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static void test_save_atomic(void **state)
{
    const char *dir = harness_path(*state, "vm");
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *path = harness_path(*state, "vm/m.vireo");
    const char *prev = harness_path(*state, "vm/m.vireo-prev");
    struct cfg_machine *m;
    struct cfg_error err;
    assert_int_equal(cfg_machine_new("atomic", NULL, &m), 0);
    assert_int_equal(cfg_machine_save(m, path, &err), 0);
    assert_false(rt_path_exists(prev));
    char *first = strdup(tst_read(path, NULL));

    m->hw.cpus = 4;
    assert_int_equal(cfg_machine_save(m, path, &err), 0);
    assert_string_equal(tst_read(prev, NULL), first);
    char *second = strdup(tst_read(path, NULL));
    assert_non_null(strstr(second, "count=\"4\""));
    assert_int_equal(tst_count_entries(dir), 2);

    /* An unreadable model is refused before anything is touched. */
    m->hw.cpus = 33;
    assert_int_equal(cfg_machine_save(m, path, &err), VERR_OUT_OF_RANGE);
    assert_non_null(strstr(err.msg, "CPU count 33"));
    assert_string_equal(tst_read(path, NULL), second);
    m->hw.cpus = 2;

    /* -prev cannot be replaced (a non-empty folder is in the way): the file stays, the temp goes. */
    assert_int_equal(rename(prev, harness_path(*state, "saved-prev")), 0);
    assert_int_equal(mkdir(prev, 0700), 0);
    harness_file_write(harness_path(*state, "vm/m.vireo-prev/x"), "x", 1);
    assert_true(cfg_machine_save(m, path, &err) < 0);
    assert_non_null(strstr(err.msg, path));
    assert_string_equal(tst_read(path, NULL), second);
    assert_int_equal(tst_count_entries(dir), 2);

    /* A read-only folder (not for root, who may write anyway). */
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0500), 0);
        assert_true(cfg_machine_save(m, path, &err) < 0);
        assert_non_null(strstr(err.msg, "temporary"));
        assert_int_equal(chmod(dir, 0700), 0);
        assert_string_equal(tst_read(path, NULL), second);
        assert_int_equal(tst_count_entries(dir), 2);
    }
    free(first);
    free(second);
    cfg_machine_free(m);
}

static void test_lock_between_processes(void **state)
{
    const char *path = harness_path(*state, "locked.vireo");
    int to_child[2], to_parent[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(to_parent), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct cfg_lock *lock;
        char c = cfg_lock_acquire(path, 1000, &lock) == 0 ? 'L' : 'E';
        if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1)
            _exit(2);
        cfg_lock_release(lock);
        _exit(0);
    }
    char c;
    assert_int_equal(read(to_parent[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    struct cfg_lock *lock = NULL;
    uint64_t t0 = rt_time_mono_ns();
    assert_int_equal(cfg_lock_acquire(path, 150, &lock), VERR_TIMEOUT);
    assert_true(rt_time_mono_ns() - t0 >= 150 * RT_NS_PER_MS);
    assert_null(lock);
    assert_int_equal(write(to_child[1], "x", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(cfg_lock_acquire(path, 1000, &lock), 0);
    /* The same process cannot take it twice either. */
    struct cfg_lock *again = NULL;
    assert_int_equal(cfg_lock_acquire(path, 20, &again), VERR_TIMEOUT);
    cfg_lock_release(lock);
    assert_int_equal(cfg_lock_acquire(path, 20, &again), 0);
    cfg_lock_release(again);
    cfg_lock_release(NULL);
    struct stat st;
    assert_int_equal(stat(harness_path(*state, "locked.vireo.lock"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    for (int i = 0; i < 2; i++) {
        close(to_child[i]);
        close(to_parent[i]);
    }
}

static void test_paths_and_names(void **state)
{
    char *dir = cfg_config_dir();
    assert_string_equal(dir, *state);
    free(dir);
    unsetenv("VIREO_USER_HOME");
    setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
    dir = cfg_config_dir();
    assert_string_equal(dir, "/xdg/conf/Vireo");
    free(dir);
    setenv("XDG_CONFIG_HOME", "relative", 1);
    setenv("HOME", "/home/tester", 1);
    dir = cfg_config_dir();
    assert_string_equal(dir, "/home/tester/.config/Vireo");
    free(dir);
    dir = cfg_default_machine_folder(NULL);
    assert_string_equal(dir, "/home/tester/Vireo VMs");
    free(dir);
    dir = cfg_default_machine_folder("/pref");
    assert_string_equal(dir, "/pref");
    free(dir);
    setenv("VIREO_USER_HOME", *state, 1);

    assert_true(cfg_is_valid_machine_name("Debian 12 (test) ✓"));
    assert_false(cfg_is_valid_machine_name(""));
    assert_false(cfg_is_valid_machine_name("."));
    assert_false(cfg_is_valid_machine_name(".."));
    assert_false(cfg_is_valid_machine_name("a/b"));
    assert_false(cfg_is_valid_machine_name(" lead"));
    assert_false(cfg_is_valid_machine_name("trail "));
    assert_false(cfg_is_valid_machine_name("tab\there"));
    assert_false(cfg_is_valid_machine_name("bad\xff utf8"));
    assert_false(cfg_is_valid_machine_name("over\xc0\xaflong"));
    char big[202];
    memset(big, 'a', 201);
    big[201] = '\0';
    assert_false(cfg_is_valid_machine_name(big));
    big[200] = '\0';
    assert_true(cfg_is_valid_machine_name(big));
}

static void test_ostypes(void **state)
{
    unsetenv("VIREO_SHARE_DIR");
    char *path = cfg_ostypes_path();
    assert_non_null(path);
    struct cfg_ostypes *t;
    struct cfg_error err = { "" };
    int rc = cfg_ostypes_load(path, &t, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    free(path);
    static const char *const required[] = {
        "WindowsXP", "Windows7", "Windows7_64", "Windows10_64", "Windows11_64", "Windows2019_64", "Windows2022_64",
        "Debian", "Debian_64", "Ubuntu_64", "Fedora_64", "ArchLinux_64", "OpenSUSE_64", "Alpine_64", "Linux",
        "Linux_64", "FreeBSD_64", "OpenBSD_64", "DOS", "Other" };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!cfg_ostype_find(t, required[i]))
            fail_msg("missing OS type %s", required[i]);
    }
    for (size_t i = 0; i < t->count; i++) {
        for (size_t j = i + 1; j < t->count; j++)
            assert_string_not_equal(t->types[i].id, t->types[j].id);
    }
    const struct cfg_ostype *w11 = cfg_ostype_find(t, "windows11_64");
    assert_int_equal(w11->firmware, CFG_FW_EFI);
    assert_int_equal(w11->memory_mib, 4096);
    assert_int_equal(w11->disk_bytes, 64ull << 30);
    assert_int_equal(w11->cpus, 2);
    assert_true(w11->is_64bit);
    const struct cfg_ostype *xp = cfg_ostype_find(t, "WindowsXP");
    assert_int_equal(xp->disk_bus, CFG_BUS_IDE);
    assert_int_equal(xp->nic, CFG_NIC_RTL8139);
    assert_int_equal(xp->audio, CFG_AUDIO_AC97);
    assert_int_equal(xp->usb, CFG_USB_OHCI);
    assert_int_equal(xp->memory_mib, 512);
    assert_int_equal(cfg_ostype_find(t, "Windows7_64")->usb, CFG_USB_EHCI);
    const struct cfg_ostype *dos = cfg_ostype_find(t, "DOS");
    assert_false(dos->has_nic || dos->has_usb);
    assert_int_equal(dos->audio, CFG_AUDIO_SB16);
    assert_null(cfg_ostype_find(t, "Plan9"));

    struct cfg_machine *m;
    assert_int_equal(cfg_machine_new("w11", "Windows11_64", &m), 0);
    assert_int_equal(cfg_hardware_apply_ostype(&m->hw, w11), 0);
    assert_int_equal(m->hw.firmware, CFG_FW_EFI);
    assert_int_equal(m->hw.memory_mib, 4096);
    assert_int_equal(m->hw.cpus, 2);
    assert_int_equal(m->hw.controller_count, 1);
    assert_int_equal(cfg_controller_find(&m->hw, "SATA")->bus, CFG_BUS_SATA);
    assert_true(m->hw.nics[0].enabled);
    assert_int_equal(m->hw.nics[0].attach, CFG_NET_NAT);
    assert_int_equal(m->hw.nics[0].type, CFG_NIC_E1000);
    assert_true(m->hw.audio.enabled && m->hw.usb.enabled);
    assert_int_equal(m->hw.usb.controller, CFG_USB_XHCI);
    assert_false(m->hw.rtc_utc);

    const struct cfg_ostype *deb = cfg_ostype_find(t, "Debian_64");
    assert_int_equal(cfg_hardware_apply_ostype(&m->hw, deb), 0);
    assert_int_equal(m->hw.controller_count, 2);
    assert_non_null(cfg_controller_find(&m->hw, "VirtIO"));
    assert_non_null(cfg_controller_find(&m->hw, "SATA"));
    assert_int_equal(m->hw.nics[0].type, CFG_NIC_VIRTIO);
    assert_true(m->hw.rtc_utc);
    assert_int_equal(cfg_hardware_apply_ostype(&m->hw, dos), 0);
    assert_false(m->hw.nics[0].enabled || m->hw.usb.enabled);
    assert_string_equal(m->hw.controllers[0].name, "IDE");
    /* What a preset makes can be saved. */
    char *xml;
    assert_int_equal(cfg_machine_format(m, &xml, NULL), 0);
    free(xml);
    cfg_machine_free(m);
    cfg_ostypes_free(t);

    /* $VIREO_SHARE_DIR wins; a broken presets file is an error that says where. */
    setenv("VIREO_SHARE_DIR", *state, 1);
    path = cfg_ostypes_path();
    assert_string_equal(path, harness_path(*state, "ostypes.xml"));
    static const char bad[] = "<VireoOSTypes schemaVersion=\"1\">\n<OSType id=\"X\"/>\n</VireoOSTypes>\n";
    harness_file_write(path, bad, sizeof(bad) - 1);
    assert_int_equal(cfg_ostypes_load(path, &t, &err), VERR_BAD_FORMAT);
    assert_non_null(strstr(err.msg, "ostypes.xml:2:1: <OSType> lacks the required attribute description"));
    free(path);
    unsetenv("VIREO_SHARE_DIR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_machine_roundtrip, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_machine_defaults_and_edits, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_global_roundtrip, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_v1_machine, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_v1_global, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_save_atomic, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_lock_between_processes, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_paths_and_names, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_ostypes, tst_setup, tst_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
