/* settings-xml-read.c - the settings file format, the strict expat reader core and the global registry's schema. */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings-internal.h"

/*
 * The file format (schema 2; the writer emits exactly this, 2-space indented, attributes in this order).
 * Numbers are plain decimal; booleans "true"/"false"; enums use the names of settings-names.c; UUIDs the
 * canonical 8-4-4-4-12 form.  [x] marks an optional attribute, (n) how often an element may appear.
 *
 * Machine file <name>.vireo:
 *   <VireoMachine schemaVersion uuid name [osType] [snapshotFolder] [currentSnapshot]>
 *     <Description>text</Description>                      (0-1)
 *     <Hardware>                                            (1)  every child 0-1, absent = default
 *       <CPU count/>                                        1-32
 *       <Memory sizeMiB/>                                   4 .. 1048576
 *       <Firmware type/>  <Chipset type/>                   bios|efi, piix3|ich9
 *       <Platform ioapic hpet rtcUtc/>
 *       <Boot><Order position device/>(0-4)</Boot>          position 1-4, each once; absent = none
 *       <Storage>
 *         <Controller name bus ports bootable/>             (any) names unique
 *         <Attachment controller port device type [medium] nonrotational hotpluggable/>
 *                                                           (any) after its controller, one per slot
 *       </Storage>
 *       <Network><Adapter slot enabled type attachment [mac] cable [bridge] [network]>  slot 0-7, once
 *           <Forward name protocol [hostIp] hostPort [guestIp] guestPort/>       (any) tcp|udp
 *       </Adapter></Network>
 *       <Audio enabled driver controller output input/>
 *       <USB enabled controller><Filter name active [vendorId] [productId] [serial]/>(any)</USB>
 *       <Display adapter vramMiB monitors/>                 VRAM 1-256, monitors 1-8
 *       <RemoteDisplay vnc vncPort rdp rdpPort [address] auth [password]/>
 *       <SharedFolders><Folder name hostPath readonly automount [mountPoint]/>(any)</SharedFolders>
 *       <Serial><Port slot enabled [backend]/>(0-4)</Serial>  slot 0-3 = COM1-COM4
 *       <TrustedPlatformModule type/>                       none|v2_0 (written only when not none)
 *     </Hardware>
 *     <State state changedNs [stateFile]/>                  (0-1) absent = poweroff
 *     <Snapshots>                                           (0-1)
 *       <Snapshot uuid name timeNs online [stateFile]>      (any) uuids unique in the tree
 *         <Description/> (0-1)  <Hardware/> (1)  <Snapshots/> (0-1, the children)
 *       </Snapshot>
 *     </Snapshots>
 *     <ExtraData><Item key value/>(any, keys unique)</ExtraData>   (0-1)
 *   </VireoMachine>
 *
 * Global file Vireo.xml:
 *   <VireoRegistry schemaVersion>
 *     <Preferences [defaultMachineFolder]/>                 (0-1)
 *     <Machines><Machine uuid path/>(any)</Machines>        (0-1) uuids and paths unique, paths absolute
 *     <Media><Medium uuid location type format [parent] readonly/>(any)</Media>   (0-1)
 *                                                           parent: a medium listed before this one
 *     <ExtraData> as in the machine file                    (0-1)
 *   </VireoRegistry>
 *
 * Schema 1 (the first release) differs: <Memory sizeBytes/> (whole MiB), <Boot order="dc"/> (letters
 * f floppy, d dvd, c disk, n net), MAC addresses written "08:00:27:12:34:56", no <Serial> and no USB
 * <Filter>, and the global file's <SystemProperties defaultMachineFolder/> instead of <Preferences>.
 *
 * Hostile input: DOCTYPE and entity declarations are refused (no entity expansion at all), values and
 * texts are capped at 64 KiB, nesting at CFG_MAX_XML_DEPTH, snapshots at 256 levels and 10,000 in all.
 */

#define CFG_XML_MAX_ATTRS 64

struct cfg_xml_frame {
    char name[40];
    void *obj;
    uint64_t seen; /* child bits from cfg_xml_once */
    bool text;     /* collects character data */
};

struct cfg_xml {
    XML_Parser parser;
    const char *file;
    const struct cfg_xml_schema *schema;
    void *doc;
    struct cfg_error *err;
    bool failed;
    unsigned schema_version;
    struct cfg_xml_frame *frames; /* [0] is the root */
    unsigned depth;
    const XML_Char **attrs; /* the current start tag's */
    uint64_t attrs_used;
    char *text;
    size_t text_len;
    const char *peek_name, *peek_value;
    int peek_rc;
};

int cfg_xml_fail(struct cfg_xml *x, const char *fmt, ...)
{
    if (x->failed)
        return VERR_BAD_FORMAT;
    x->failed = true;
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (x->err) {
        /* Expat counts columns from 0; editors from 1. */
        snprintf(x->err->msg, sizeof(x->err->msg), "%s:%lu:%lu: %s", x->file,
                 (unsigned long)XML_GetCurrentLineNumber(x->parser),
                 (unsigned long)XML_GetCurrentColumnNumber(x->parser) + 1, what);
    }
    XML_StopParser(x->parser, XML_FALSE);
    return VERR_BAD_FORMAT;
}

int cfg_xml_unexpected(struct cfg_xml *x, const char *name)
{
    const char *parent = cfg_xml_parent(x);
    if (!parent)
        return cfg_xml_fail(x, "unexpected root element <%s>", name);
    return cfg_xml_fail(x, "unexpected element <%s> in <%s>", name, parent);
}

unsigned cfg_xml_depth(const struct cfg_xml *x)
{
    return x->depth;
}

const char *cfg_xml_parent(const struct cfg_xml *x)
{
    return x->depth >= 2 ? x->frames[x->depth - 2].name : NULL;
}

void cfg_xml_set_obj(struct cfg_xml *x, void *obj)
{
    x->frames[x->depth - 1].obj = obj;
}

void *cfg_xml_obj(const struct cfg_xml *x, unsigned levels_up)
{
    return levels_up < x->depth ? x->frames[x->depth - 1 - levels_up].obj : NULL;
}

bool cfg_xml_mark(struct cfg_xml *x, unsigned bit)
{
    struct cfg_xml_frame *parent = &x->frames[x->depth - 2];
    if (parent->seen & (1ull << bit))
        return false;
    parent->seen |= 1ull << bit;
    return true;
}

bool cfg_xml_once(struct cfg_xml *x, unsigned bit)
{
    if (cfg_xml_mark(x, bit))
        return true;
    cfg_xml_fail(x, "<%s> appears more than once in <%s>", x->frames[x->depth - 1].name, x->frames[x->depth - 2].name);
    return false;
}

bool cfg_xml_seen(const struct cfg_xml *x, unsigned bit)
{
    return (x->frames[x->depth - 1].seen >> bit) & 1;
}

void cfg_xml_want_text(struct cfg_xml *x)
{
    x->frames[x->depth - 1].text = true;
    x->text_len = 0;
    x->text[0] = '\0';
}

const char *cfg_xml_text(const struct cfg_xml *x)
{
    return x->text;
}

unsigned cfg_xml_schema_version(const struct cfg_xml *x)
{
    return x->schema_version;
}

void cfg_xml_set_schema_version(struct cfg_xml *x, unsigned v)
{
    x->schema_version = v;
}

/* ---- Attributes -------------------------------------------------------------------------------- */

static const char *cfg_xml_attr_take(struct cfg_xml *x, const char *name)
{
    for (unsigned i = 0; x->attrs && x->attrs[2 * i]; i++) {
        if (!strcmp(x->attrs[2 * i], name)) {
            x->attrs_used |= 1ull << i;
            return x->attrs[2 * i + 1];
        }
    }
    return NULL;
}

bool cfg_xml_attr_present(const struct cfg_xml *x, const char *name)
{
    for (unsigned i = 0; x->attrs && x->attrs[2 * i]; i++) {
        if (!strcmp(x->attrs[2 * i], name))
            return true;
    }
    return false;
}

static int cfg_xml_missing(struct cfg_xml *x, const char *name)
{
    return cfg_xml_fail(x, "<%s> lacks the required attribute %s", x->frames[x->depth - 1].name, name);
}

int cfg_xml_attr_str(struct cfg_xml *x, const char *name, bool required, char **out)
{
    const char *v = cfg_xml_attr_take(x, name);
    if (!v)
        return required ? cfg_xml_missing(x, name) : 0;
    char *copy = strdup(v);
    if (!copy)
        return cfg_xml_fail(x, "out of memory");
    free(*out);
    *out = copy;
    return 0;
}

/* Plain decimal only: no sign, no blanks, no hex, no overflow. */
static bool cfg_parse_decimal(const char *s, uint64_t *out)
{
    if (!*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int cfg_xml_attr_u64(struct cfg_xml *x, const char *name, bool required, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = cfg_xml_attr_take(x, name);
    if (!v)
        return required ? cfg_xml_missing(x, name) : 0;
    uint64_t n;
    if (!cfg_parse_decimal(v, &n))
        return cfg_xml_fail(x, "%s=\"%.40s\" is not a decimal number", name, v);
    if (n < min || n > max)
        return cfg_xml_fail(x, "%s=\"%s\" is out of range (%llu-%llu)", name, v, (unsigned long long)min,
                            (unsigned long long)max);
    *out = n;
    return 0;
}

int cfg_xml_attr_uint(struct cfg_xml *x, const char *name, bool required, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v = *out;
    int rc = cfg_xml_attr_u64(x, name, required, min, max, &v);
    if (rc == 0)
        *out = (unsigned)v;
    return rc;
}

int cfg_xml_attr_bool(struct cfg_xml *x, const char *name, bool required, bool *out)
{
    const char *v = cfg_xml_attr_take(x, name);
    if (!v)
        return required ? cfg_xml_missing(x, name) : 0;
    if (!strcmp(v, "true"))
        *out = true;
    else if (!strcmp(v, "false"))
        *out = false;
    else
        return cfg_xml_fail(x, "%s=\"%.40s\" is not true or false", name, v);
    return 0;
}

int cfg_xml_attr_uuid(struct cfg_xml *x, const char *name, bool required, bool allow_null, struct rt_uuid *out)
{
    const char *v = cfg_xml_attr_take(x, name);
    if (!v)
        return required ? cfg_xml_missing(x, name) : 0;
    struct rt_uuid u;
    if (rt_uuid_parse(v, &u) != 0)
        return cfg_xml_fail(x, "%s=\"%.40s\" is not a UUID", name, v);
    if (!allow_null && rt_uuid_is_null(&u))
        return cfg_xml_fail(x, "%s must not be the null UUID", name);
    *out = u;
    return 0;
}

const char *cfg_xml_attr_peek(struct cfg_xml *x, const char *name, bool required)
{
    x->peek_name = name;
    x->peek_value = cfg_xml_attr_take(x, name);
    x->peek_rc = !x->peek_value && required ? cfg_xml_missing(x, name) : 0;
    return x->peek_value;
}

int cfg_xml_attr_enum_done(struct cfg_xml *x, int parse_rc)
{
    if (x->peek_rc || !x->peek_value)
        return x->peek_rc;
    if (parse_rc)
        return cfg_xml_fail(x, "%s=\"%.40s\" is not a known value", x->peek_name, x->peek_value);
    return 0;
}

int cfg_xml_attr_schema_version(struct cfg_xml *x, unsigned max)
{
    const char *v = cfg_xml_attr_take(x, "schemaVersion");
    if (!v)
        return cfg_xml_missing(x, "schemaVersion");
    uint64_t n;
    if (!cfg_parse_decimal(v, &n) || n == 0)
        return cfg_xml_fail(x, "schemaVersion=\"%.40s\" is not a schema version", v);
    if (n > max)
        return cfg_xml_fail(x, "written by a newer Vireo (schema %llu); this one reads up to %u",
                            (unsigned long long)n, max);
    x->schema_version = (unsigned)n;
    return 0;
}

int cfg_xml_attrs_done(struct cfg_xml *x)
{
    for (unsigned i = 0; x->attrs && x->attrs[2 * i]; i++) {
        if (!(x->attrs_used & (1ull << i)))
            return cfg_xml_fail(x, "unknown attribute %.60s on <%s>", x->attrs[2 * i], x->frames[x->depth - 1].name);
    }
    return 0;
}

void *cfg_array_push(void **array, size_t *count, size_t elem_size)
{
    if (*count >= CFG_MAX_LIST_ITEMS)
        return NULL;
    char *grown = realloc(*array, (*count + 1) * elem_size);
    if (!grown)
        return NULL;
    *array = grown;
    char *elem = grown + *count * elem_size;
    memset(elem, 0, elem_size);
    (*count)++;
    return elem;
}

/* ---- The expat driver ------------------------------------------------------------------------------ */

static void XMLCALL cfg_xml_on_start(void *user, const XML_Char *name, const XML_Char **attrs)
{
    struct cfg_xml *x = user;
    if (x->failed)
        return;
    if (x->depth >= CFG_MAX_XML_DEPTH) {
        cfg_xml_fail(x, "elements nested deeper than %u levels", CFG_MAX_XML_DEPTH);
        return;
    }
    if (x->depth > 0 && x->frames[x->depth - 1].text) {
        cfg_xml_fail(x, "unexpected element <%.60s> in <%s>", name, x->frames[x->depth - 1].name);
        return;
    }
    if (x->depth == 0 && strcmp(name, x->schema->root)) {
        cfg_xml_fail(x, "the root element is <%.60s>, not <%s>", name, x->schema->root);
        return;
    }
    unsigned n = 0;
    for (; attrs[2 * n]; n++) {
        if (n >= CFG_XML_MAX_ATTRS) {
            cfg_xml_fail(x, "<%.60s> has more than %u attributes", name, CFG_XML_MAX_ATTRS);
            return;
        }
        if (strlen(attrs[2 * n + 1]) > CFG_MAX_VALUE_BYTES) {
            cfg_xml_fail(x, "attribute %.60s of <%.60s> is longer than %u bytes", attrs[2 * n], name,
                         CFG_MAX_VALUE_BYTES);
            return;
        }
    }
    struct cfg_xml_frame *f = &x->frames[x->depth++];
    memset(f, 0, sizeof(*f));
    rt_strlcpy(f->name, name, sizeof(f->name));
    x->attrs = attrs;
    x->attrs_used = 0;
    int rc = x->schema->start(x, x->doc, name);
    if (rc == 0)
        rc = cfg_xml_attrs_done(x);
    x->attrs = NULL;
    if (rc && !x->failed)
        cfg_xml_fail(x, "cannot read <%.60s>: %s", name, rt_err_str(rc));
}

static void XMLCALL cfg_xml_on_end(void *user, const XML_Char *name)
{
    struct cfg_xml *x = user;
    if (x->failed)
        return;
    int rc = x->schema->end ? x->schema->end(x, x->doc, name) : 0;
    if (rc && !x->failed)
        cfg_xml_fail(x, "cannot read <%.60s>: %s", name, rt_err_str(rc));
    x->depth--;
}

static void XMLCALL cfg_xml_on_text(void *user, const XML_Char *s, int len)
{
    struct cfg_xml *x = user;
    if (x->failed || x->depth == 0)
        return;
    struct cfg_xml_frame *f = &x->frames[x->depth - 1];
    if (!f->text) {
        for (int i = 0; i < len; i++) {
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
                cfg_xml_fail(x, "unexpected text in <%s>", f->name);
                return;
            }
        }
        return;
    }
    if ((size_t)len > CFG_MAX_VALUE_BYTES - x->text_len) {
        cfg_xml_fail(x, "the text of <%s> is longer than %u bytes", f->name, CFG_MAX_VALUE_BYTES);
        return;
    }
    memcpy(x->text + x->text_len, s, (size_t)len);
    x->text_len += (size_t)len;
    x->text[x->text_len] = '\0';
}

/* A DOCTYPE is where entities (and with them billion-laughs expansion and external fetches) start. */
static void XMLCALL cfg_xml_on_doctype(void *user, const XML_Char *name, const XML_Char *sysid,
                                       const XML_Char *pubid, int has_internal_subset)
{
    cfg_xml_fail(user, "DOCTYPE declarations are not allowed in settings files");
}

static void XMLCALL cfg_xml_on_entity(void *user, const XML_Char *name, int is_param, const XML_Char *value,
                                      int value_len, const XML_Char *base, const XML_Char *sysid,
                                      const XML_Char *pubid, const XML_Char *notation)
{
    cfg_xml_fail(user, "entity declarations are not allowed in settings files");
}

int cfg_xml_parse(const char *file, const void *xml, size_t len, const struct cfg_xml_schema *schema, void *doc,
                  struct cfg_error *err)
{
    if (err)
        err->msg[0] = '\0';
    if (len > CFG_MAX_FILE_BYTES) {
        cfg_error_set(err, "%s: larger than %u bytes", file, CFG_MAX_FILE_BYTES);
        return VERR_TOO_LARGE;
    }
    struct cfg_xml x = { .file = file, .schema = schema, .doc = doc, .err = err };
    x.frames = calloc(CFG_MAX_XML_DEPTH, sizeof(*x.frames));
    x.text = malloc(CFG_MAX_VALUE_BYTES + 1);
    x.parser = XML_ParserCreate("UTF-8");
    if (!x.frames || !x.text || !x.parser) {
        free(x.frames);
        free(x.text);
        if (x.parser)
            XML_ParserFree(x.parser);
        cfg_error_set(err, "%s: out of memory", file);
        return VERR_NO_MEMORY;
    }
    XML_SetUserData(x.parser, &x);
    XML_SetElementHandler(x.parser, cfg_xml_on_start, cfg_xml_on_end);
    XML_SetCharacterDataHandler(x.parser, cfg_xml_on_text);
    XML_SetStartDoctypeDeclHandler(x.parser, cfg_xml_on_doctype);
    XML_SetEntityDeclHandler(x.parser, cfg_xml_on_entity);

    int rc = 0;
    if (XML_Parse(x.parser, xml, (int)len, XML_TRUE) != XML_STATUS_OK) {
        if (!x.failed) {
            enum XML_Error code = XML_GetErrorCode(x.parser);
            bool at_end = code == XML_ERROR_NO_ELEMENTS || code == XML_ERROR_UNCLOSED_TOKEN ||
                          code == XML_ERROR_PARTIAL_CHAR || code == XML_ERROR_UNCLOSED_CDATA_SECTION;
            if (at_end && len > 0)
                cfg_xml_fail(&x, "the file ends in the middle of the document (truncated?): %s",
                             XML_ErrorString(code));
            else
                cfg_xml_fail(&x, "not well-formed XML: %s", XML_ErrorString(code));
        }
        rc = VERR_BAD_FORMAT;
    } else if (x.failed) {
        rc = VERR_BAD_FORMAT;
    }
    XML_ParserFree(x.parser);
    free(x.frames);
    free(x.text);
    return rc;
}

/* ---- The global registry's schema ---------------------------------------------------------------------- */

enum { G_PREFS, G_MACHINES, G_MEDIA, G_EXTRA };

static int cfg_global_on_medium(struct cfg_xml *x, struct cfg_global *g)
{
    struct cfg_medium *m = cfg_array_push((void **)&g->media, &g->medium_count, sizeof(*m));
    if (!m)
        return cfg_xml_fail(x, "more than %u media", CFG_MAX_LIST_ITEMS);
    int rc = cfg_xml_attr_uuid(x, "uuid", true, false, &m->uuid);
    if (!rc)
        rc = cfg_xml_attr_str(x, "location", true, &m->location);
    if (!rc)
        rc = CFG_XML_ATTR_ENUM(x, "type", true, cfg_medium_type_parse, &m->type);
    if (!rc)
        rc = cfg_xml_attr_str(x, "format", true, &m->format);
    if (!rc)
        rc = cfg_xml_attr_uuid(x, "parent", false, false, &m->parent);
    if (!rc)
        rc = cfg_xml_attr_bool(x, "readonly", false, &m->readonly);
    if (rc)
        return rc;
    char buf[256];
    const char *bad = cfg_check_abs_path("location", m->location, buf, sizeof(buf));
    if (bad)
        return cfg_xml_fail(x, "medium %s", bad);
    if (!cfg_is_valid_medium_format(m->format))
        return cfg_xml_fail(x, "format=\"%.40s\" is not a known image format", m->format);
    for (size_t i = 0; i + 1 < g->medium_count; i++) {
        if (!memcmp(&g->media[i].uuid, &m->uuid, sizeof(m->uuid)))
            return cfg_xml_fail(x, "medium UUID listed twice");
        if (!strcmp(g->media[i].location, m->location))
            return cfg_xml_fail(x, "medium location %.200s listed twice", m->location);
    }
    if (!rt_uuid_is_null(&m->parent)) {
        /* Parents come first, which also rules out loops. */
        bool found = false;
        for (size_t i = 0; i + 1 < g->medium_count && !found; i++)
            found = !memcmp(&g->media[i].uuid, &m->parent, sizeof(m->parent));
        if (!found)
            return cfg_xml_fail(x, "parent is not a medium listed before this one");
    }
    return 0;
}

static int cfg_global_on_start(struct cfg_xml *x, void *doc, const char *name)
{
    struct cfg_global *g = doc;
    const char *parent = cfg_xml_parent(x);
    unsigned v = cfg_xml_schema_version(x);
    char buf[256];

    if (!parent) {
        int rc = cfg_xml_attr_schema_version(x, CFG_SCHEMA_VERSION);
        g->schema_version = cfg_xml_schema_version(x);
        return rc;
    }
    if (!strcmp(parent, "VireoRegistry")) {
        bool prefs = v >= 2 ? !strcmp(name, "Preferences") : !strcmp(name, "SystemProperties");
        if (prefs) {
            if (!cfg_xml_once(x, G_PREFS))
                return VERR_BAD_FORMAT;
            int rc = cfg_xml_attr_str(x, "defaultMachineFolder", false, &g->default_machine_folder);
            const char *bad = rc || !g->default_machine_folder
                                  ? NULL
                                  : cfg_check_abs_path("defaultMachineFolder", g->default_machine_folder, buf,
                                                       sizeof(buf));
            return rc ? rc : bad ? cfg_xml_fail(x, "%s", bad) : 0;
        }
        if (!strcmp(name, "Machines"))
            return cfg_xml_once(x, G_MACHINES) ? 0 : VERR_BAD_FORMAT;
        if (!strcmp(name, "Media"))
            return cfg_xml_once(x, G_MEDIA) ? 0 : VERR_BAD_FORMAT;
        if (!strcmp(name, "ExtraData"))
            return cfg_xml_once(x, G_EXTRA) ? 0 : VERR_BAD_FORMAT;
    } else if (!strcmp(parent, "Machines") && !strcmp(name, "Machine")) {
        struct cfg_machine_entry *e = cfg_array_push((void **)&g->machines, &g->machine_count, sizeof(*e));
        if (!e)
            return cfg_xml_fail(x, "more than %u machines", CFG_MAX_LIST_ITEMS);
        int rc = cfg_xml_attr_uuid(x, "uuid", true, false, &e->uuid);
        if (!rc)
            rc = cfg_xml_attr_str(x, "path", true, &e->path);
        if (rc)
            return rc;
        const char *bad = cfg_check_abs_path("path", e->path, buf, sizeof(buf));
        if (bad)
            return cfg_xml_fail(x, "machine %s", bad);
        for (size_t i = 0; i + 1 < g->machine_count; i++) {
            if (!memcmp(&g->machines[i].uuid, &e->uuid, sizeof(e->uuid)))
                return cfg_xml_fail(x, "machine UUID listed twice");
            if (!strcmp(g->machines[i].path, e->path))
                return cfg_xml_fail(x, "machine path %.200s listed twice", e->path);
        }
        return 0;
    } else if (!strcmp(parent, "Media") && !strcmp(name, "Medium")) {
        return cfg_global_on_medium(x, g);
    } else if (!strcmp(parent, "ExtraData") && !strcmp(name, "Item")) {
        char *key = NULL, *value = NULL;
        int rc = cfg_xml_attr_str(x, "key", true, &key);
        if (!rc)
            rc = cfg_xml_attr_str(x, "value", true, &value);
        if (!rc && !*key)
            rc = cfg_xml_fail(x, "extra data key is empty");
        if (!rc && cfg_extra_get(g->extra, g->extra_count, key))
            rc = cfg_xml_fail(x, "extra data key \"%.200s\" appears twice", key);
        if (!rc && g->extra_count >= CFG_MAX_LIST_ITEMS)
            rc = cfg_xml_fail(x, "more than %u extra data items", CFG_MAX_LIST_ITEMS);
        if (!rc && cfg_extra_set(&g->extra, &g->extra_count, key, value) != 0)
            rc = cfg_xml_fail(x, "out of memory");
        free(key);
        free(value);
        return rc;
    }
    return cfg_xml_unexpected(x, name);
}

static const struct cfg_xml_schema cfg_global_schema = { .root = "VireoRegistry", .start = cfg_global_on_start };

int cfg_global_parse(const char *name, const void *xml, size_t len, struct cfg_global **out, struct cfg_error *err)
{
    struct cfg_global *g;
    int rc = cfg_global_new(&g);
    if (rc) {
        cfg_error_set(err, "%s: out of memory", name);
        return rc;
    }
    rc = cfg_xml_parse(name, xml, len, &cfg_global_schema, g, err);
    if (rc) {
        cfg_global_free(g);
        return rc;
    }
    *out = g;
    return 0;
}
