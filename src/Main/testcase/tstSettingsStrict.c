/* tstSettingsStrict.c - the settings reader refuses broken and hostile files with FILE:LINE:COL messages, and never crashes (mutation loop). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "vireo/settings.h"

#define UUID_A "6f1c2a3e-0b7d-4c1e-9a55-1d2e3f405162"
#define UUID_B "a1b2c3d4-0000-4000-8000-000000000001"
#define UUID_C "a1b2c3d4-0000-4000-8000-000000000002"

/* Parses xml as a machine file named t.vireo and expects a refusal at line:? mentioning needle. */
static void tst_bad_machine_at(const char *xml, unsigned line, const char *needle, const char *where)
{
    struct cfg_machine *m = NULL;
    struct cfg_error err = { "" };
    int rc = cfg_machine_parse("t.vireo", xml, strlen(xml), &m, &err);
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "t.vireo:%u:", line);
    if (rc != VERR_BAD_FORMAT || strncmp(err.msg, prefix, strlen(prefix)) || !strstr(err.msg, needle))
        fail_msg("%s: rc %d, message \"%s\", expected \"%s...%s\"", where, rc, err.msg, prefix, needle);
    assert_null(m);
}
#define tst_bad_machine(xml, line, needle) tst_bad_machine_at(xml, line, needle, #xml)

/* A machine document with 'inner' as line 4, inside <Hardware>. */
static void tst_bad_hw(const char *inner, const char *needle)
{
    char xml[4096];
    snprintf(xml, sizeof(xml),
             "<?xml version=\"1.0\"?>\n<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\">\n"
             "<Hardware>\n%s\n</Hardware>\n</VireoMachine>\n", inner);
    tst_bad_machine_at(xml, 4, needle, inner);
}

/* The same with 'inner' as line 3, directly in <VireoMachine> after its <Hardware/>. */
static void tst_bad_top(const char *inner, unsigned line, const char *needle)
{
    char xml[4096];
    snprintf(xml, sizeof(xml),
             "<?xml version=\"1.0\"?>\n<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\">\n"
             "<Hardware/>\n%s\n</VireoMachine>\n", inner);
    tst_bad_machine_at(xml, line, needle, inner);
}

static void test_strict_hardware(void **state)
{
    tst_bad_hw("<Turbo/>", "unexpected element <Turbo> in <Hardware>");
    tst_bad_hw("<CPU count=\"2\" turbo=\"yes\"/>", "unknown attribute turbo on <CPU>");
    tst_bad_hw("<CPU/>", "<CPU> lacks the required attribute count");
    tst_bad_hw("<CPU count=\"1\"/><CPU count=\"2\"/>", "<CPU> appears more than once in <Hardware>");
    tst_bad_hw("<CPU count=\"2x\"/>", "count=\"2x\" is not a decimal number");
    tst_bad_hw("<CPU count=\"-1\"/>", "not a decimal number");
    tst_bad_hw("<CPU count=\" 1\"/>", "not a decimal number");
    tst_bad_hw("<CPU count=\"0\"/>", "out of range (1-32)");
    tst_bad_hw("<CPU count=\"33\"/>", "out of range (1-32)");
    tst_bad_hw("<CPU count=\"99999999999999999999999\"/>", "not a decimal number");
    tst_bad_hw("<Memory sizeMiB=\"3\"/>", "out of range (4-1048576)");
    tst_bad_hw("<Memory sizeMiB=\"1048577\"/>", "out of range");
    tst_bad_hw("<Memory sizeBytes=\"1073741824\"/>", "<Memory> lacks the required attribute sizeMiB");
    tst_bad_hw("<Display adapter=\"vbe\" vramMiB=\"0\" monitors=\"1\"/>", "vramMiB=\"0\" is out of range (1-256)");
    tst_bad_hw("<Display adapter=\"vbe\" vramMiB=\"257\" monitors=\"1\"/>", "out of range (1-256)");
    tst_bad_hw("<Display adapter=\"vbe\" vramMiB=\"16\" monitors=\"9\"/>", "monitors=\"9\" is out of range (1-8)");
    tst_bad_hw("<Display adapter=\"cirrus\" vramMiB=\"16\" monitors=\"1\"/>", "adapter=\"cirrus\" is not a known value");
    tst_bad_hw("<Firmware type=\"uefi\"/>", "type=\"uefi\" is not a known value");
    tst_bad_hw("<Platform ioapic=\"yes\"/>", "ioapic=\"yes\" is not true or false");
    tst_bad_hw("<Boot order=\"dc\"/>", "unknown attribute order on <Boot>");
    tst_bad_hw("<Boot><Order position=\"5\" device=\"dvd\"/></Boot>", "position=\"5\" is out of range (1-4)");
    tst_bad_hw("<Boot><Order position=\"1\" device=\"dvd\"/><Order position=\"1\" device=\"disk\"/></Boot>",
               "boot position 1 appears twice");
    tst_bad_hw("<Boot><Order position=\"1\" device=\"dvd\"/><Order position=\"2\" device=\"dvd\"/></Boot>",
               "boot device dvd appears twice");
    tst_bad_hw("<Storage><Controller name=\"S\" bus=\"sata\" ports=\"31\"/></Storage>", "ports=\"31\" is out of range");
    tst_bad_hw("<Storage><Controller name=\"I\" bus=\"ide\" ports=\"3\"/></Storage>", "3 ports (a ide controller has 1-2)");
    tst_bad_hw("<Storage><Controller name=\"S\" bus=\"sata\" ports=\"1\"/><Controller name=\"S\" bus=\"ide\" ports=\"1\"/></Storage>",
               "storage controller \"S\" appears twice");
    tst_bad_hw("<Storage><Attachment controller=\"S\" port=\"0\" device=\"0\" type=\"dvd\"/></Storage>",
               "not a storage controller of this machine");
    tst_bad_hw("<Storage><Controller name=\"S\" bus=\"sata\" ports=\"2\"/>"
               "<Attachment controller=\"S\" port=\"2\" device=\"0\" type=\"dvd\"/></Storage>",
               "slot 2:0 is outside controller \"S\"");
    tst_bad_hw("<Storage><Controller name=\"S\" bus=\"sata\" ports=\"2\"/>"
               "<Attachment controller=\"S\" port=\"0\" device=\"0\" type=\"hdd\" medium=\"not-a-uuid\"/></Storage>",
               "medium=\"not-a-uuid\" is not a UUID");
    tst_bad_hw("<Storage><Controller name=\"S\" bus=\"sata\" ports=\"2\"/>"
               "<Attachment controller=\"S\" port=\"0\" device=\"0\" type=\"hdd\"/></Storage>",
               "a hard disk needs a medium");
    tst_bad_hw("<Storage><Controller name=\"S\" bus=\"sata\" ports=\"2\"/>"
               "<Attachment controller=\"S\" port=\"0\" device=\"0\" type=\"dvd\"/>"
               "<Attachment controller=\"S\" port=\"0\" device=\"0\" type=\"dvd\"/></Storage>",
               "two attachments in slot S 0:0");
    tst_bad_hw("<Network><Adapter slot=\"8\" type=\"e1000\" attachment=\"nat\"/></Network>",
               "slot=\"8\" is out of range (0-7)");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\"/>"
               "<Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\"/></Network>",
               "network adapter slot 0 appears twice");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\" mac=\"08002712345\"/></Network>",
               "MAC address \"08002712345\" is not 12 hex digits");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\" mac=\"0800271234GG\"/></Network>",
               "is not 12 hex digits");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\" mac=\"08:00:27:12:34:56\"/></Network>",
               "is not 12 hex digits");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\" mac=\"010027123456\"/></Network>",
               "multicast");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\">"
               "<Forward name=\"f\" protocol=\"tcp\" hostPort=\"70000\" guestPort=\"22\"/></Adapter></Network>",
               "hostPort=\"70000\" is out of range (1-65535)");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\">"
               "<Forward name=\"f\" protocol=\"sctp\" hostPort=\"7\" guestPort=\"22\"/></Adapter></Network>",
               "protocol=\"sctp\" is neither tcp nor udp");
    tst_bad_hw("<Network><Adapter slot=\"0\" type=\"e1000\" attachment=\"nat\">"
               "<Forward name=\"f\" protocol=\"tcp\" hostIp=\"1.2.3\" hostPort=\"7\" guestPort=\"22\"/></Adapter></Network>",
               "host address \"1.2.3\" is not an IP address");
    tst_bad_hw("<USB controller=\"xhci\"><Filter name=\"x\" vendorId=\"46d\"/></USB>",
               "vendor id \"46d\" is not 4 hex digits");
    tst_bad_hw("<SharedFolders><Folder name=\"a\" hostPath=\"rel\"/></SharedFolders>", "host path is not absolute");
    tst_bad_hw("<Serial><Port slot=\"4\"/></Serial>", "slot=\"4\" is out of range (0-3)");
    tst_bad_hw("<Serial><Port slot=\"0\" enabled=\"true\"/></Serial>", "an enabled serial port needs a backend");
    tst_bad_hw("<Serial><Port slot=\"0\" backend=\"tcp:x\"/></Serial>", "serial backend \"tcp:x\"");
    tst_bad_hw("<RemoteDisplay auth=\"password\"/>", "auth=\"password\" without a password");
    tst_bad_hw("some text", "unexpected text in <Hardware>");
    tst_bad_hw("<TrustedPlatformModule type=\"v1_2\"/>", "type=\"v1_2\" is not a known value");
    tst_bad_hw("<TrustedPlatformModule/>", "<TrustedPlatformModule> lacks the required attribute type");
    tst_bad_hw("<TrustedPlatformModule type=\"v2_0\"/><TrustedPlatformModule type=\"none\"/>",
               "<TrustedPlatformModule> appears more than once in <Hardware>");
}

static void test_strict_machine(void **state)
{
    tst_bad_machine("<?xml version=\"1.0\"?>\n<VireoMachine schemaVersion=\"2\" name=\"t\">\n<Hardware/>\n</VireoMachine>\n",
                    2, "<VireoMachine> lacks the required attribute uuid");
    tst_bad_machine("<?xml version=\"1.0\"?>\n<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\">\n<Hardware/>\n</VireoMachine>\n",
                    2, "lacks the required attribute name");
    tst_bad_machine("<VireoMachine uuid=\"" UUID_A "\" name=\"t\"><Hardware/></VireoMachine>", 1,
                    "lacks the required attribute schemaVersion");
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"00000000-0000-0000-0000-000000000000\" name=\"t\"/>", 1,
                    "uuid must not be the null UUID");
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"a/b\"><Hardware/></VireoMachine>", 1,
                    "name=\"a/b\" is not a valid machine name");
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\" osType=\"De bian\"><Hardware/></VireoMachine>",
                    1, "is not an OS type id");
    tst_bad_machine("<?xml version=\"1.0\"?>\n<VireoMachine schemaVersion=\"3\" uuid=\"" UUID_A "\" name=\"t\"/>\n", 2,
                    "written by a newer Vireo (schema 3); this one reads up to 2");
    tst_bad_machine("<VireoMachine schemaVersion=\"0\" uuid=\"" UUID_A "\" name=\"t\"/>", 1, "is not a schema version");
    tst_bad_machine("<VireoRegistry schemaVersion=\"2\"/>", 1, "the root element is <VireoRegistry>, not <VireoMachine>");
    tst_bad_machine("<?xml version=\"1.0\"?>\n<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\">\n\n</VireoMachine>\n",
                    4, "<VireoMachine> lacks its <Hardware>");
    tst_bad_top("<Hardware/>", 4, "<Hardware> appears more than once in <VireoMachine>");
    tst_bad_top("<State state=\"saved\" changedNs=\"1\"/>", 4, "state \"saved\" needs its stateFile");
    tst_bad_top("<State state=\"poweroff\" stateFile=\"../../etc/passwd\"/>", 4, "must not leave the machine folder");
    tst_bad_top("<State state=\"poweroff\" stateFile=\"/etc/passwd\"/>", 4, "must be a relative path");
    tst_bad_top("<State state=\"exploded\"/>", 4, "state=\"exploded\" is not a known value");
    tst_bad_top("<ExtraData><Item key=\"k\" value=\"1\"/>\n<Item key=\"k\" value=\"2\"/></ExtraData>", 5,
                "extra data key \"k\" appears twice");
    tst_bad_top("<ExtraData><Item key=\"\" value=\"1\"/></ExtraData>", 4, "extra data key is empty");
    tst_bad_top("<ExtraData><Item key=\"k\"/></ExtraData>", 4, "lacks the required attribute value");
    tst_bad_top("<Snapshots><Snapshot uuid=\"" UUID_B "\" name=\"s\" timeNs=\"1\"></Snapshot></Snapshots>", 4,
                "<Snapshot> lacks its <Hardware>");
    tst_bad_top("<Snapshots><Snapshot uuid=\"" UUID_B "\" name=\"s\" timeNs=\"1\"><Hardware/></Snapshot>\n"
                "<Snapshot uuid=\"" UUID_B "\" name=\"t\" timeNs=\"1\"><Hardware/></Snapshot></Snapshots>", 5,
                "snapshot UUID appears twice");
    tst_bad_top("<Snapshots><Snapshot uuid=\"" UUID_B "\" name=\"s\" timeNs=\"1\" online=\"true\"><Hardware/></Snapshot></Snapshots>",
                4, "an online snapshot needs its stateFile");
    /* currentSnapshot is checked when the whole tree is known: at the end of the root element. */
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\" currentSnapshot=\"" UUID_C "\">\n"
                    "<Hardware/><Snapshots><Snapshot uuid=\"" UUID_B "\" name=\"s\" timeNs=\"1\"><Hardware/></Snapshot></Snapshots>\n"
                    "</VireoMachine>", 3, "currentSnapshot does not name a snapshot");
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\" currentSnapshot=\"" UUID_C "\">\n"
                    "<Hardware/>\n</VireoMachine>", 3, "currentSnapshot is set but there are no snapshots");
    tst_bad_top("<Description>a</Description><Description>b</Description>", 4, "appears more than once");
    tst_bad_top("<Description>a<b/></Description>", 4, "unexpected element <b> in <Description>");
    /* Schema 1 had no serial ports and no USB filters; schema 2 has no sizeBytes (above) or order= (above). */
    tst_bad_machine("<VireoMachine schemaVersion=\"1\" uuid=\"" UUID_A "\" name=\"t\">\n<Hardware>\n"
                    "<Serial/></Hardware></VireoMachine>", 3, "unexpected element <Serial> in <Hardware>");
    tst_bad_machine("<VireoMachine schemaVersion=\"1\" uuid=\"" UUID_A "\" name=\"t\">\n<Hardware>\n"
                    "<USB controller=\"ohci\"><Filter name=\"x\"/></USB></Hardware></VireoMachine>", 3,
                    "unexpected element <Filter> in <USB>");
    tst_bad_machine("<VireoMachine schemaVersion=\"1\" uuid=\"" UUID_A "\" name=\"t\">\n<Hardware>\n"
                    "<Boot order=\"dxc\"/></Hardware></VireoMachine>", 3, "'x' is none of f, d, c, n");
    tst_bad_machine("<VireoMachine schemaVersion=\"1\" uuid=\"" UUID_A "\" name=\"t\">\n<Hardware>\n"
                    "<Memory sizeBytes=\"1000000000\"/></Hardware></VireoMachine>", 3, "not a whole number of MiB");
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\">\n<Hardware>\n"
                    "<Memory sizeMiB=\"64\">\n</Memory>\n<Memory sizeMiB=\"64\"/></Hardware></VireoMachine>", 5,
                    "<Memory> appears more than once");
}

static void test_strict_global(void **state)
{
    static const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        { "<Preferences defaultMachineFolder=\"rel/dir\"/>", "defaultMachineFolder \"rel/dir\" is not an absolute path" },
        { "<SystemProperties/>", "unexpected element <SystemProperties> in <VireoRegistry>" },
        { "<Machines><Machine uuid=\"" UUID_A "\" path=\"m.vireo\"/></Machines>", "is not an absolute path" },
        { "<Machines><Machine uuid=\"" UUID_A "\" path=\"/a\"/><Machine uuid=\"" UUID_A "\" path=\"/b\"/></Machines>",
          "machine UUID listed twice" },
        { "<Media><Medium uuid=\"" UUID_A "\" location=\"/a.vdi\" type=\"hdd\" format=\"vhdx\"/></Media>",
          "format=\"vhdx\" is not a known image format" },
        { "<Media><Medium uuid=\"" UUID_A "\" location=\"/a.vdi\" type=\"tape\" format=\"vdi\"/></Media>",
          "type=\"tape\" is not a known value" },
        { "<Media><Medium uuid=\"" UUID_A "\" location=\"/a.vdi\" type=\"hdd\" format=\"vdi\" parent=\"" UUID_B "\"/></Media>",
          "parent is not a medium listed before this one" },
        { "<Media><Medium uuid=\"" UUID_A "\" location=\"/a.vdi\" type=\"hdd\" format=\"vdi\"/>"
          "<Medium uuid=\"" UUID_B "\" location=\"/a.vdi\" type=\"hdd\" format=\"vdi\"/></Media>",
          "medium location /a.vdi listed twice" },
        { "<Media/><Media/>", "<Media> appears more than once" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char xml[2048];
        snprintf(xml, sizeof(xml), "<VireoRegistry schemaVersion=\"2\">\n%s\n</VireoRegistry>\n", cases[i].body);
        struct cfg_global *g = NULL;
        struct cfg_error err = { "" };
        int rc = cfg_global_parse("Vireo.xml", xml, strlen(xml), &g, &err);
        if (rc != VERR_BAD_FORMAT || strncmp(err.msg, "Vireo.xml:2:", 12) || !strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: rc %d, \"%s\"", i, rc, err.msg);
        assert_null(g);
    }
    struct cfg_global *g;
    struct cfg_error err;
    const char *newer = "<VireoRegistry schemaVersion=\"7\"/>";
    assert_int_equal(cfg_global_parse("G", newer, strlen(newer), &g, &err), VERR_BAD_FORMAT);
    assert_string_equal(err.msg, "G:1:1: written by a newer Vireo (schema 7); this one reads up to 2");
}

static void test_hostile(void **state)
{
    static const char laughs[] =
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE lolz [\n"
        " <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        " <!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
        "]>\n"
        "<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"&lol9;\"><Hardware/></VireoMachine>\n";
    tst_bad_machine(laughs, 2, "DOCTYPE declarations are not allowed");
    tst_bad_machine("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><VireoMachine/>", 1, "DOCTYPE");
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"&undefined;\"/>", 1,
                    "not well-formed XML: undefined entity");

    /* A 1 MiB attribute. */
    size_t big_len = (1u << 20) + 256;
    char *big = malloc(big_len);
    int n = snprintf(big, big_len, "<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\">\n<Description>");
    memset(big + n, 'A', 1u << 20);
    strcpy(big + n + (1u << 20), "</Description></VireoMachine>");
    tst_bad_machine(big, 2, "the text of <Description> is longer than 65536 bytes");
    n = snprintf(big, big_len, "<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\"\n name=\"");
    memset(big + n, 'B', 1u << 20);
    strcpy(big + n + (1u << 20), "\"><Hardware/></VireoMachine>");
    tst_bad_machine(big, 1, "attribute name of <VireoMachine> is longer than 65536 bytes");
    free(big);

    /* 10,000 nested snapshots: refused at level 257. */
    size_t cap = 10000 * 200 + 512;
    char *deep = malloc(cap);
    size_t len = (size_t)snprintf(deep, cap, "<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\"><Hardware/>\n");
    for (unsigned i = 0; i < 10000; i++)
        len += (size_t)snprintf(deep + len, cap - len,
                                "<Snapshots><Snapshot uuid=\"a1b2c3d4-0000-4000-8000-%012u\" name=\"s\" timeNs=\"1\">\n", i + 1);
    tst_bad_machine(deep, 258, "snapshots nested deeper than 256 levels");
    /* 10,000 nested unknown elements: refused at the first. */
    len = (size_t)snprintf(deep, cap, "<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\">");
    for (unsigned i = 0; i < 10000; i++)
        len += (size_t)snprintf(deep + len, cap - len, "<a>");
    tst_bad_machine(deep, 1, "unexpected element <a> in <VireoMachine>");
    free(deep);

    /* Too many snapshots in all (siblings, each with hardware). */
    cap = 10001 * 160 + 512;
    char *wide = malloc(cap);
    len = (size_t)snprintf(wide, cap, "<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"t\"><Hardware/><Snapshots>");
    for (unsigned i = 0; i < 10001; i++)
        len += (size_t)snprintf(wide + len, cap - len,
                                "<Snapshot uuid=\"a1b2c3d4-0000-4000-8000-%012u\" name=\"s\" timeNs=\"1\"><Hardware/></Snapshot>\n", i + 1);
    tst_bad_machine(wide, 10001, "more than 10000 snapshots");
    free(wide);

    /* Bytes that are not UTF-8, a NUL, and a character XML cannot carry. */
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"\xff\xfe\"/>", 1, "not well-formed");
    tst_bad_machine("<VireoMachine schemaVersion=\"2\" uuid=\"" UUID_A "\" name=\"&#1;\"/>", 1, "not well-formed");
    struct cfg_machine *m = NULL;
    struct cfg_error err;
    assert_int_equal(cfg_machine_parse("e", "", 0, &m, &err), VERR_BAD_FORMAT);
    assert_int_equal(cfg_machine_parse("z", "<VireoMachine\0>", 15, &m, &err), VERR_BAD_FORMAT);

    /* Over 16 MiB: refused before parsing, from memory and from a file. */
    size_t huge = 16u * 1024 * 1024 + 1;
    char *h = calloc(1, huge);
    assert_int_equal(cfg_machine_parse("h", h, huge, &m, &err), VERR_TOO_LARGE);
    char path[] = "/tmp/tstSettingsStrict.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, h, huge), (ssize_t)huge);
    close(fd);
    assert_int_equal(cfg_machine_load(path, &m, &err), VERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    assert_int_equal(cfg_machine_load(path, &m, &err), VERR_FILE_NOT_FOUND);
    free(h);
}

static char *tst_fixture_v2(size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/settings/v1/machine.vireo", harness_src_root());
    struct cfg_machine *m;
    struct cfg_error err;
    assert_int_equal(cfg_machine_load(path, &m, &err), 0);
    /* Schema 2 only: serial ports and USB filters. */
    m->hw.serial[1].enabled = true;
    m->hw.serial[1].backend = strdup("unix:/tmp/x");
    m->hw.usb.filter_count = 1;
    m->hw.usb.filters = calloc(1, sizeof(*m->hw.usb.filters));
    m->hw.usb.filters[0].name = strdup("f");
    m->hw.usb.filters[0].vendor_id = strdup("1234");
    char *xml;
    assert_int_equal(cfg_machine_format(m, &xml, len), 0);
    cfg_machine_free(m);
    return xml;
}

static void test_truncated(void **state)
{
    size_t len;
    char *xml = tst_fixture_v2(&len);
    for (size_t cut = 0; cut < len; cut += 7) {
        struct cfg_machine *m = NULL;
        struct cfg_error err = { "" };
        assert_int_equal(cfg_machine_parse("cut.vireo", xml, cut, &m, &err), VERR_BAD_FORMAT);
        assert_null(m);
        if (cut > 100) {
            /* The error is at the end of what is there. */
            unsigned lines = 1;
            for (size_t i = 0; i < cut; i++)
                lines += xml[i] == '\n';
            char prefix[40];
            snprintf(prefix, sizeof(prefix), "cut.vireo:%u:", lines);
            if (strncmp(err.msg, prefix, strlen(prefix)) || !strstr(err.msg, "truncated"))
                fail_msg("cut at %zu: \"%s\", expected %s", cut, err.msg, prefix);
        }
    }
    free(xml);
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t tst_rand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/*
 * Random damage to a valid file: the reader answers 0 or VERR_BAD_FORMAT, and whatever it accepts the
 * writer can write and the reader reads back the same.
 */
static void test_mutations(void **state)
{
    static const char interesting[] = "<>&\"'/=0123456789-: \n\xff\xc3";
    size_t len;
    char *xml = tst_fixture_v2(&len);
    char *buf = malloc(len + 64);
    unsigned accepted = 0;
    for (unsigned iter = 0; iter < 4000; iter++) {
        memcpy(buf, xml, len);
        size_t n = len;
        unsigned edits = 1 + tst_rand() % 4;
        for (unsigned e = 0; e < edits; e++) {
            size_t at = tst_rand() % n;
            switch (tst_rand() % 5) {
            case 0: buf[at] ^= (char)(1u << (tst_rand() % 8)); break;
            case 1: buf[at] = interesting[tst_rand() % (sizeof(interesting) - 1)]; break;
            case 2: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;
            case 3: if (n < len + 60) { memmove(buf + at + 1, buf + at, n - at); buf[at] = interesting[tst_rand() % (sizeof(interesting) - 1)]; n++; } break;
            default: buf[at] = (char)('0' + tst_rand() % 10); break;
            }
        }
        if (tst_rand() % 16 == 0)
            n = tst_rand() % n;
        struct cfg_machine *m = NULL;
        struct cfg_error err = { "" };
        int rc = cfg_machine_parse("fuzz", buf, n, &m, &err);
        if (rc != 0 && rc != VERR_BAD_FORMAT)
            fail_msg("iteration %u: rc %d (%s)", iter, rc, err.msg);
        if (rc == VERR_BAD_FORMAT) {
            assert_non_null(strstr(err.msg, "fuzz:"));
            continue;
        }
        accepted++;
        char *again;
        size_t again_len;
        assert_int_equal(cfg_machine_format(m, &again, &again_len), 0);
        struct cfg_machine *m2;
        assert_int_equal(cfg_machine_parse("again", again, again_len, &m2, &err), 0);
        assert_true(cfg_machine_equal(m, m2));
        free(again);
        cfg_machine_free(m2);
        cfg_machine_free(m);
    }
    /* Some mutations land in values that stay valid (digits in numbers, text): both paths ran. */
    assert_true(accepted > 0);
    free(buf);
    free(xml);

    /* The registry the same way. */
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/settings/v1/Vireo.xml", harness_src_root());
    struct cfg_global *g;
    struct cfg_error err;
    assert_int_equal(cfg_global_load(path, &g, &err), 0);
    assert_int_equal(cfg_global_format(g, &xml, &len), 0);
    cfg_global_free(g);
    buf = malloc(len);
    for (unsigned iter = 0; iter < 2000; iter++) {
        memcpy(buf, xml, len);
        for (unsigned e = 1 + tst_rand() % 3; e > 0; e--)
            buf[tst_rand() % len] = interesting[tst_rand() % (sizeof(interesting) - 1)];
        size_t n = tst_rand() % 8 == 0 ? tst_rand() % len : len;
        g = NULL;
        int rc = cfg_global_parse("fuzz", buf, n, &g, &err);
        if (rc != 0 && rc != VERR_BAD_FORMAT)
            fail_msg("registry iteration %u: rc %d (%s)", iter, rc, err.msg);
        if (rc == 0) {
            char *again;
            size_t again_len;
            struct cfg_global *g2;
            assert_int_equal(cfg_global_format(g, &again, &again_len), 0);
            assert_int_equal(cfg_global_parse("again", again, again_len, &g2, &err), 0);
            assert_true(cfg_global_equal(g, g2));
            free(again);
            cfg_global_free(g2);
            cfg_global_free(g);
        }
    }
    free(buf);
    free(xml);
}

static void test_writer_refuses(void **state)
{
    struct cfg_machine *m;
    assert_int_equal(cfg_machine_new("ok", NULL, &m), 0);
    char *xml = NULL;
    struct cfg_error err;
    free(m->description);
    m->description = strdup("bell\a");
    assert_int_equal(cfg_machine_format(m, &xml, NULL), VERR_INVALID_PARAMETER);
    assert_null(xml);
    free(m->description);
    m->description = strdup("ok\tto\nkeep\r");
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "esc", "\x1b[0m"), 0);
    char path[] = "/tmp/tstSettingsStrict.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cfg_machine_save(m, path, &err), VERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.msg, "extra data: value is not valid UTF-8 or has control characters"));
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "esc", "bad \xc3("), 0);
    assert_int_equal(cfg_machine_save(m, path, &err), VERR_INVALID_PARAMETER);
    assert_int_equal(cfg_extra_set(&m->extra, &m->extra_count, "esc", NULL), 0);
    m->hw.nics[1].enabled = true;
    strcpy(m->hw.nics[1].mac, "0800271234");
    assert_int_equal(cfg_machine_save(m, path, &err), VERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.msg, "MAC address \"0800271234\""));
    strcpy(m->hw.nics[1].mac, "080027123456");
    struct rt_uuid u;
    rt_uuid_generate(&u);
    m->current_snapshot = u;
    assert_int_equal(cfg_machine_save(m, path, &err), VERR_INVALID_PARAMETER);
    memset(&m->current_snapshot, 0, sizeof(u));
    assert_int_equal(cfg_machine_save(m, path, &err), 0);
    struct cfg_machine *l;
    assert_int_equal(cfg_machine_load(path, &l, &err), 0);
    assert_string_equal(l->description, "ok\tto\nkeep\r");
    assert_true(cfg_machine_equal(m, l));
    cfg_machine_free(l);
    unlink(path);
    char prev[64];
    snprintf(prev, sizeof(prev), "%s-prev", path);
    unlink(prev);
    cfg_machine_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_hardware),
        cmocka_unit_test(test_strict_machine),
        cmocka_unit_test(test_strict_global),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_writer_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
