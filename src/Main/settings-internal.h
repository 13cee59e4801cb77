/* settings-internal.h - what the settings files share: limits, the strict expat reader core, model checks. */
#ifndef VIREO_SETTINGS_INTERNAL_H
#define VIREO_SETTINGS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/settings.h"

/* ---- Limits (the reader refuses beyond them, the writer refuses to write beyond them) ---- */

#define CFG_MAX_FILE_BYTES (16u * 1024u * 1024u)
#define CFG_MAX_VALUE_BYTES (64u * 1024u) /* one attribute value or one element's text */
#define CFG_MAX_SNAPSHOT_DEPTH 256u
#define CFG_MAX_SNAPSHOTS 10000u
/* Fixed nesting of the schemas plus two levels (Snapshots, Snapshot) per snapshot generation. */
#define CFG_MAX_XML_DEPTH (64u + 2u * CFG_MAX_SNAPSHOT_DEPTH + 4u)
#define CFG_MIN_CPUS 1u
#define CFG_MAX_CPUS 32u
#define CFG_MIN_MEMORY_MIB 4u
#define CFG_MAX_MEMORY_MIB (1024u * 1024u)
#define CFG_MIN_VRAM_MIB 1u
#define CFG_MAX_VRAM_MIB 256u
#define CFG_MAX_MONITORS 8u
#define CFG_MAX_NAME_BYTES 200u  /* controller, forward, filter, shared folder and snapshot names */
#define CFG_MAX_LIST_ITEMS 4096u /* controllers, attachments, forwards, filters, folders, media, extra data */

/* ---- Shared helpers (settings-model.c) -------------------------------------------- */

/* Valid UTF-8 that XML 1.0 can carry: no control characters except tab, newline and carriage return. */
bool cfg_str_is_xml_safe(const char *s);
bool cfg_str_equal(const char *a, const char *b); /* NULL-aware */
/* strdup that keeps NULL; sets *ok to false when the copy fails. */
char *cfg_strdup_opt(const char *s, bool *ok);
void cfg_error_set(struct cfg_error *err, const char *fmt, ...) RT_PRINTF(2, 3);

/*
 * Object checks shared by the reader (which reports them at the element's position) and the writer
 * (which refuses to write what it could not read back).  Each returns NULL when the object is fine or
 * a static-lifetime description of the problem, formatted into buf.
 */
const char *cfg_check_mac(const char *mac, char *buf, size_t size);
const char *cfg_check_controller(const struct cfg_controller *c, char *buf, size_t size);
/* The attachment against the controllers in hw (and not clashing with hw's other attachments). */
const char *cfg_check_attachment(const struct cfg_hardware *hw, const struct cfg_attachment *a, size_t self,
                                 char *buf, size_t size);
const char *cfg_check_forward(const struct cfg_port_forward *f, char *buf, size_t size);
const char *cfg_check_usb_filter(const struct cfg_usb_filter *f, char *buf, size_t size);
const char *cfg_check_shared_folder(const struct cfg_shared_folder *f, char *buf, size_t size);
const char *cfg_check_serial(const struct cfg_serial *s, char *buf, size_t size);
/* A path below the machine folder: relative, no ".." component. */
const char *cfg_check_inner_path(const char *what, const char *path, char *buf, size_t size);
const char *cfg_check_abs_path(const char *what, const char *path, char *buf, size_t size);
bool cfg_is_valid_ostype_id(const char *id);
bool cfg_is_valid_medium_format(const char *fmt);

/* The remote display's auth names ("none", "password"), in settings-names.c. */
const char *cfg_remote_auth_name(enum cfg_remote_auth a);
int cfg_remote_auth_parse(const char *s, enum cfg_remote_auth *out);

/* A random MAC address with VirtualBox's 08:00:27 prefix. */
int cfg_mac_generate(char mac[13]);

/* The defaults of a hardware section read from a file: what an absent element means. */
void cfg_hardware_init_empty(struct cfg_hardware *hw);
void cfg_snapshot_free_contents(struct cfg_snapshot *s);

/* ---- The strict reader core (settings-xml-read.c) ---------------------------------- */

struct cfg_xml;

/* One document type: element callbacks.  depth counts from 1 (the root). */
struct cfg_xml_schema {
    const char *root; /* the root element's name */
    int (*start)(struct cfg_xml *x, void *doc, const char *name);
    int (*end)(struct cfg_xml *x, void *doc, const char *name);
};

/* Parses xml[0..len) with the schema; doc is the object the callbacks fill.  VERR_BAD_FORMAT with err. */
int cfg_xml_parse(const char *file, const void *xml, size_t len, const struct cfg_xml_schema *schema, void *doc,
                  struct cfg_error *err);

/* For the callbacks: */
unsigned cfg_xml_depth(const struct cfg_xml *x);
/* The name of the element enclosing the current one (NULL at the root). */
const char *cfg_xml_parent(const struct cfg_xml *x);
/* A per-element pointer the callbacks set on start and read in nested elements and on end. */
void cfg_xml_set_obj(struct cfg_xml *x, void *obj);
void *cfg_xml_obj(const struct cfg_xml *x, unsigned levels_up);
/* Marks child element 'bit' seen in the enclosing element; false (and an error) when it was seen before. */
bool cfg_xml_once(struct cfg_xml *x, unsigned bit);
bool cfg_xml_mark(struct cfg_xml *x, unsigned bit); /* the same without the error (bits 0-63) */
bool cfg_xml_seen(const struct cfg_xml *x, unsigned bit); /* in the current element (for end checks) */
/* Lets the current element carry text (collected, capped); cfg_xml_text gives it on end. */
void cfg_xml_want_text(struct cfg_xml *x);
const char *cfg_xml_text(const struct cfg_xml *x);
/* Records an error at the current position and stops the parser; returns VERR_BAD_FORMAT. */
int cfg_xml_fail(struct cfg_xml *x, const char *fmt, ...) RT_PRINTF(2, 3);
int cfg_xml_unexpected(struct cfg_xml *x, const char *name); /* "unexpected element <name> in <parent>" */
unsigned cfg_xml_schema_version(const struct cfg_xml *x);
void cfg_xml_set_schema_version(struct cfg_xml *x, unsigned v);

/* Attribute access for the current start tag; each attribute must be consumed exactly once, and
 * cfg_xml_attrs_done reports the first one left over as unknown.  Optional attributes leave *out as is. */
int cfg_xml_attr_str(struct cfg_xml *x, const char *name, bool required, char **out);
int cfg_xml_attr_u64(struct cfg_xml *x, const char *name, bool required, uint64_t min, uint64_t max, uint64_t *out);
int cfg_xml_attr_uint(struct cfg_xml *x, const char *name, bool required, unsigned min, unsigned max,
                      unsigned *out);
int cfg_xml_attr_bool(struct cfg_xml *x, const char *name, bool required, bool *out);
int cfg_xml_attr_uuid(struct cfg_xml *x, const char *name, bool required, bool allow_null, struct rt_uuid *out);
/*
 * Enums: CFG_XML_ATTR_ENUM(x, "bus", true, cfg_bus_parse, &c->bus) runs the cfg_*_parse function on the
 * attribute's value (an absent optional attribute leaves *out as is; an unknown name is an error).
 */
const char *cfg_xml_attr_peek(struct cfg_xml *x, const char *name, bool required);
int cfg_xml_attr_enum_done(struct cfg_xml *x, int parse_rc);
#define CFG_XML_ATTR_ENUM(x, name, required, parse_fn, out) \
    cfg_xml_attr_enum_done((x), parse_fn(cfg_xml_attr_peek((x), (name), (required)), (out)))
/* The root's schemaVersion (1..max), refusing newer files with a message that says so. */
int cfg_xml_attr_schema_version(struct cfg_xml *x, unsigned max);
bool cfg_xml_attr_present(const struct cfg_xml *x, const char *name);
int cfg_xml_attrs_done(struct cfg_xml *x);

/* Appends one zeroed element to a heap array (count capped at CFG_MAX_LIST_ITEMS): NULL on failure. */
void *cfg_array_push(void **array, size_t *count, size_t elem_size);

/* ---- Writer helpers (settings-xml-write.c) ------------------------------------------ */

int cfg_machine_format_checked(const struct cfg_machine *m, char **xml, size_t *len, struct cfg_error *err,
                               const char *file);
int cfg_global_format_checked(const struct cfg_global *g, char **xml, size_t *len, struct cfg_error *err,
                              const char *file);

/* ---- Files (settings-file.c) ---------------------------------------------------------- */

/* Writes data as path atomically, keeping the previous content as path-prev. */
int cfg_file_replace(const char *path, const char *data, size_t len, struct cfg_error *err);

#endif
