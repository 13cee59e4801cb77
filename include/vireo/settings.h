/* settings.h - machines and media as settings: the model, its XML files (expat), the global registry, settings locks and OS type presets. */
#ifndef VIREO_SETTINGS_H
#define VIREO_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/rt.h"

/*
 * Files (src/Main/settings-*.c):
 *  - The global file  <config dir>/Vireo.xml  lists registered machines (UUID and the
 *    path of their settings file), the media registry and preferences.
 *  - One file per machine, <machine folder>/<name>.vireo, with its hardware, state,
 *    snapshot tree and extra data.
 * Both carry a schema version attribute (CFG_SCHEMA_VERSION now); every older version
 * loads.  Reading is strict about structure (unknown elements or attributes, missing
 * required ones, bad values are errors) and tolerant about extra data.  An error fills
 * struct cfg_error with "FILE:LINE:COLUMN: what is wrong".
 *
 * Writing is atomic: the new content goes to a temporary file in the same folder,
 * is fsync'ed, the current file is kept as FILE-prev, and the temporary file is renamed
 * over FILE, then the folder is fsync'ed.  Read-modify-write cycles by different
 * processes are serialised with cfg_lock_acquire on the file (a sidecar lock file,
 * since the rename replaces the settings file's inode).
 *
 * Strings in these structs are heap strings owned by the struct (NULL = unset); the
 * free functions release everything.  Arrays are heap arrays with a count.
 */

#define CFG_SCHEMA_VERSION 2 /* 1: the first release's files; see DESIGN-NOTES for what changed */

struct cfg_error {
    char msg[1024]; /* "FILE:LINE:COLUMN: message", or "FILE: message" when there is no position */
};

/* ---- Paths -------------------------------------------------------------------- */

/* $VIREO_USER_HOME, else $XDG_CONFIG_HOME/Vireo, else ~/.config/Vireo (malloc'ed). */
char *cfg_config_dir(void);
/* <config dir>/Vireo.xml (malloc'ed). */
char *cfg_global_path(void);
/* The default folder for new machines: the preference, else ~/Vireo VMs (malloc'ed; NULL preference ok). */
char *cfg_default_machine_folder(const char *preference);
/* A machine name people can use as a folder and file name: non-empty, at most 200 bytes, valid UTF-8,
 * no '/', no NUL, no control characters, not "." or "..", no leading or trailing blank. */
bool cfg_is_valid_machine_name(const char *name);

/* ---- Settings locks --------------------------------------------------------------- */

struct cfg_lock; /* opaque */
/* Takes an exclusive lock for the settings file at path (waits up to timeout_ms; VERR_TIMEOUT). */
int cfg_lock_acquire(const char *path, unsigned timeout_ms, struct cfg_lock **out);
void cfg_lock_release(struct cfg_lock *lock); /* NULL is fine */

/* ---- The machine model ----------------------------------------------------------- */

enum cfg_firmware { CFG_FW_BIOS = 0, CFG_FW_EFI };
/* The Trusted Platform Module (VirtualBox's <TrustedPlatformModule type>): none, or a TPM 2.0 run by swtpm. */
enum cfg_tpm { CFG_TPM_NONE = 0, CFG_TPM_V2_0 };
enum cfg_chipset { CFG_CHIPSET_PIIX3 = 0, CFG_CHIPSET_ICH9 };
enum cfg_boot_dev { CFG_BOOT_NONE = 0, CFG_BOOT_FLOPPY, CFG_BOOT_DVD, CFG_BOOT_DISK, CFG_BOOT_NET };
#define CFG_BOOT_SLOTS 4

enum cfg_bus { CFG_BUS_IDE = 0, CFG_BUS_SATA, CFG_BUS_VIRTIO };
struct cfg_controller {
    char *name;          /* unique in the machine: "IDE", "SATA", "VirtIO" */
    enum cfg_bus bus;
    unsigned port_count; /* IDE 2 (channels, 2 devices each), SATA 1-30, virtio 1-8 */
    bool bootable;
};

enum cfg_medium_type { CFG_MEDIUM_HDD = 0, CFG_MEDIUM_DVD, CFG_MEDIUM_FLOPPY };
struct cfg_attachment {
    char *controller;         /* a controller's name */
    unsigned port, device;    /* IDE: port = channel 0-1, device 0-1; others device 0 */
    enum cfg_medium_type type;
    struct rt_uuid medium;    /* null UUID: an empty (DVD) drive */
    bool nonrotational;       /* SSD */
    bool hotpluggable;
};

enum cfg_nic_type { CFG_NIC_E1000 = 0, CFG_NIC_VIRTIO, CFG_NIC_RTL8139 };
enum cfg_nic_attach { CFG_NET_NONE = 0, CFG_NET_NAT, CFG_NET_BRIDGED, CFG_NET_HOSTONLY, CFG_NET_INTERNAL };
#define CFG_MAX_NICS 8
struct cfg_port_forward {
    char *name;
    bool udp;
    char *host_ip; /* NULL: any */
    uint16_t host_port;
    char *guest_ip; /* NULL: the guest's DHCP address */
    uint16_t guest_port;
};
struct cfg_nic {
    bool enabled;
    enum cfg_nic_type type;
    enum cfg_nic_attach attach;
    char mac[13];             /* 12 hex digits, no separators ("080027123456") */
    bool cable_connected;
    char *bridge_interface;   /* bridged */
    char *network;            /* internal / host-only network name */
    struct cfg_port_forward *forwards;
    size_t forward_count;
};

enum cfg_audio_driver { CFG_AUDIO_NULL = 0, CFG_AUDIO_PULSE, CFG_AUDIO_ALSA, CFG_AUDIO_SDL };
enum cfg_audio_ctl { CFG_AUDIO_HDA = 0, CFG_AUDIO_AC97, CFG_AUDIO_SB16 };
struct cfg_audio {
    bool enabled;
    enum cfg_audio_driver driver;
    enum cfg_audio_ctl controller;
    bool output, input;
};

enum cfg_usb_ctl { CFG_USB_OHCI = 0, CFG_USB_EHCI, CFG_USB_XHCI };
struct cfg_usb_filter {
    char *name;
    bool active;
    char *vendor_id, *product_id, *serial; /* NULL: any; hex ids "046d" */
};
struct cfg_usb {
    bool enabled;
    enum cfg_usb_ctl controller;
    struct cfg_usb_filter *filters;
    size_t filter_count;
};

enum cfg_graphics { CFG_GFX_VBE = 0, CFG_GFX_VIRTIO, CFG_GFX_NONE };
struct cfg_display {
    enum cfg_graphics adapter;
    unsigned vram_mib;   /* 1-256 */
    unsigned monitors;   /* 1-8 */
};

enum cfg_remote_auth { CFG_AUTH_NONE = 0, CFG_AUTH_PASSWORD };
struct cfg_remote {
    bool vnc_enabled;
    uint16_t vnc_port;      /* 0: the first free from 5900 */
    bool rdp_enabled;
    uint16_t rdp_port;      /* 0: the first free from 3389 */
    char *address;          /* listen address, NULL: 127.0.0.1 */
    enum cfg_remote_auth auth;
    char *password;         /* with CFG_AUTH_PASSWORD; stored in the machine file (mode 0600) */
};

struct cfg_shared_folder {
    char *name;             /* unique in the machine */
    char *host_path;
    bool readonly;
    bool automount;
    char *mount_point;      /* NULL: the guest's default */
};

#define CFG_SERIAL_PORTS 4
struct cfg_serial {
    bool enabled;
    char *backend; /* as vireo-vm --serialN: "null", "file:PATH", "unix:PATH", "tcp:[ADDR:]PORT" */
};

struct cfg_extra {
    char *key;
    char *value;
};

/* Everything a snapshot freezes along with the disks. */
struct cfg_hardware {
    unsigned cpus;            /* 1-32 */
    uint64_t memory_mib;      /* 4 .. 1 TiB */
    enum cfg_firmware firmware;
    enum cfg_chipset chipset;
    enum cfg_boot_dev boot[CFG_BOOT_SLOTS];
    bool ioapic, hpet, rtc_utc;
    enum cfg_tpm tpm;         /* its state lives in <machine folder>/tpm/ */
    struct cfg_controller *controllers;
    size_t controller_count;
    struct cfg_attachment *attachments;
    size_t attachment_count;
    struct cfg_nic nics[CFG_MAX_NICS];
    struct cfg_audio audio;
    struct cfg_usb usb;
    struct cfg_display display;
    struct cfg_remote remote;
    struct cfg_shared_folder *shared_folders;
    size_t shared_folder_count;
    struct cfg_serial serial[CFG_SERIAL_PORTS]; /* COM1-COM4 */
};

struct cfg_snapshot {
    struct rt_uuid uuid;
    char *name;
    char *description;
    uint64_t time_ns;          /* wall clock when taken */
    bool online;               /* taken of a running or saved machine: state_file holds its state */
    char *state_file;          /* path relative to the machine folder, or NULL */
    struct cfg_hardware hw;    /* hardware (and attachments: the images frozen read-only) at that time */
    struct cfg_snapshot *children;
    size_t child_count;
};

enum cfg_machine_state {
    CFG_STATE_POWERED_OFF = 0,
    CFG_STATE_SAVED,    /* state_file holds the saved state */
    CFG_STATE_RUNNING,
    CFG_STATE_PAUSED,
    CFG_STATE_ABORTED,  /* the VM process died; settings intact */
};
const char *cfg_machine_state_name(enum cfg_machine_state state); /* "poweroff", "saved", "running", "paused", "aborted" */

struct cfg_machine {
    unsigned schema_version;    /* as loaded (saving always writes CFG_SCHEMA_VERSION) */
    struct rt_uuid uuid;
    char *name;
    char *ostype;               /* an OS type id from the presets ("Debian_64") */
    char *description;
    struct cfg_hardware hw;
    enum cfg_machine_state state;
    uint64_t state_changed_ns;  /* wall clock of the last state change */
    char *state_file;           /* saved state, relative to the machine folder, or NULL */
    char *snapshot_folder;      /* relative to the machine folder; NULL: "Snapshots" */
    struct cfg_snapshot *snapshots; /* the roots of the snapshot tree (normally one) */
    size_t snapshot_count;
    struct rt_uuid current_snapshot; /* null when there are no snapshots */
    struct cfg_extra *extra;
    size_t extra_count;
};

/* A new machine with every field at its default (1 CPU, 128 MiB, BIOS, PIIX3, boot DVD then disk, NICs
 * off, audio off, VBE with 16 MiB, remote off), a fresh UUID and the given name and OS type. */
int cfg_machine_new(const char *name, const char *ostype, struct cfg_machine **out);
void cfg_machine_free(struct cfg_machine *m);
/* A deep copy. */
int cfg_machine_dup(const struct cfg_machine *m, struct cfg_machine **out);
int cfg_hardware_copy(struct cfg_hardware *dst, const struct cfg_hardware *src); /* dst uninitialised */
void cfg_hardware_free(struct cfg_hardware *hw);                                 /* frees contents */
/* Field-by-field equality (the round-trip tests). */
bool cfg_machine_equal(const struct cfg_machine *a, const struct cfg_machine *b);

/* Reads a machine file (at most 16 MiB).  Errors: VERR_FILE_NOT_FOUND, VERR_BAD_FORMAT (err says where),
 * VERR_TOO_LARGE. */
int cfg_machine_load(const char *path, struct cfg_machine **out, struct cfg_error *err);
/* Writes atomically (see above); the file is mode 0600.  The caller holds the file's lock. */
int cfg_machine_save(const struct cfg_machine *m, const char *path, struct cfg_error *err);
/* The same from/to memory (fuzzing, tests).  name is used in error messages. */
int cfg_machine_parse(const char *name, const void *xml, size_t len, struct cfg_machine **out, struct cfg_error *err);
int cfg_machine_format(const struct cfg_machine *m, char **xml, size_t *len);

/* Lookups and edits on the model (no I/O). */
struct cfg_controller *cfg_controller_find(struct cfg_hardware *hw, const char *name);
struct cfg_attachment *cfg_attachment_find(struct cfg_hardware *hw, const char *controller, unsigned port,
                                           unsigned device);
/* Adds or replaces the attachment at (controller, port, device); the controller must exist and the slot
 * be within its port count (VERR_OUT_OF_RANGE). */
int cfg_attachment_set(struct cfg_hardware *hw, const struct cfg_attachment *att);
int cfg_attachment_remove(struct cfg_hardware *hw, const char *controller, unsigned port, unsigned device);
int cfg_controller_add(struct cfg_hardware *hw, const char *name, enum cfg_bus bus, unsigned port_count);
/* Removes the controller and its attachments. */
int cfg_controller_remove(struct cfg_hardware *hw, const char *name);
/* Extra data: value NULL removes the key. */
int cfg_extra_set(struct cfg_extra **extra, size_t *count, const char *key, const char *value);
const char *cfg_extra_get(const struct cfg_extra *extra, size_t count, const char *key);
struct cfg_snapshot *cfg_snapshot_find(struct cfg_machine *m, const struct rt_uuid *uuid);
struct cfg_snapshot *cfg_snapshot_find_name(struct cfg_machine *m, const char *name);
/* The snapshot's parent, or NULL for a root. */
struct cfg_snapshot *cfg_snapshot_parent(struct cfg_machine *m, const struct cfg_snapshot *snap);

/* Names for the enums, as used in the XML and by vireo-manage; *_parse return VERR_NOT_FOUND. */
const char *cfg_bus_name(enum cfg_bus bus);             /* "ide", "sata", "virtio" */
int cfg_bus_parse(const char *s, enum cfg_bus *out);
const char *cfg_boot_dev_name(enum cfg_boot_dev dev);   /* "none", "floppy", "dvd", "disk", "net" */
int cfg_boot_dev_parse(const char *s, enum cfg_boot_dev *out);
const char *cfg_firmware_name(enum cfg_firmware fw);    /* "bios", "efi" */
int cfg_firmware_parse(const char *s, enum cfg_firmware *out);
const char *cfg_tpm_name(enum cfg_tpm tpm);            /* "none", "v2_0" */
int cfg_tpm_parse(const char *s, enum cfg_tpm *out);
const char *cfg_chipset_name(enum cfg_chipset c);       /* "piix3", "ich9" */
int cfg_chipset_parse(const char *s, enum cfg_chipset *out);
const char *cfg_medium_type_name(enum cfg_medium_type t); /* "hdd", "dvd", "floppy" */
int cfg_medium_type_parse(const char *s, enum cfg_medium_type *out);
const char *cfg_nic_type_name(enum cfg_nic_type t);     /* "e1000", "virtio", "rtl8139" */
int cfg_nic_type_parse(const char *s, enum cfg_nic_type *out);
const char *cfg_nic_attach_name(enum cfg_nic_attach a); /* "none", "nat", "bridged", "hostonly", "internal" */
int cfg_nic_attach_parse(const char *s, enum cfg_nic_attach *out);
const char *cfg_audio_driver_name(enum cfg_audio_driver d); /* "null", "pulse", "alsa", "sdl" */
int cfg_audio_driver_parse(const char *s, enum cfg_audio_driver *out);
const char *cfg_audio_ctl_name(enum cfg_audio_ctl c);   /* "hda", "ac97", "sb16" */
int cfg_audio_ctl_parse(const char *s, enum cfg_audio_ctl *out);
const char *cfg_usb_ctl_name(enum cfg_usb_ctl c);       /* "ohci", "ehci", "xhci" */
int cfg_usb_ctl_parse(const char *s, enum cfg_usb_ctl *out);
const char *cfg_graphics_name(enum cfg_graphics g);     /* "vbe", "virtio", "none" */
int cfg_graphics_parse(const char *s, enum cfg_graphics *out);
int cfg_machine_state_parse(const char *s, enum cfg_machine_state *out);

/* ---- The global registry --------------------------------------------------------- */

struct cfg_machine_entry {
    struct rt_uuid uuid;
    char *path;                /* absolute path of the machine's settings file */
};

struct cfg_medium {
    struct rt_uuid uuid;       /* Vireo's id for the medium (not the image header's) */
    char *location;            /* absolute path */
    enum cfg_medium_type type;
    char *format;              /* "vdi", "qcow2", "raw", "vmdk", "iso" */
    struct rt_uuid parent;     /* differencing images: the medium they sit on; null otherwise */
    bool readonly;
};

struct cfg_global {
    unsigned schema_version;
    char *default_machine_folder; /* NULL: cfg_default_machine_folder(NULL) */
    struct cfg_machine_entry *machines;
    size_t machine_count;
    struct cfg_medium *media;
    size_t medium_count;
    struct cfg_extra *extra;
    size_t extra_count;
};

/* A missing file loads as an empty registry (first run); a broken one is an error. */
int cfg_global_load(const char *path, struct cfg_global **out, struct cfg_error *err);
/* Atomic, mode 0600, the caller holds the lock on path; creates the config dir (0700) if needed. */
int cfg_global_save(const struct cfg_global *g, const char *path, struct cfg_error *err);
int cfg_global_parse(const char *name, const void *xml, size_t len, struct cfg_global **out, struct cfg_error *err);
int cfg_global_format(const struct cfg_global *g, char **xml, size_t *len);
int cfg_global_new(struct cfg_global **out);
void cfg_global_free(struct cfg_global *g);
bool cfg_global_equal(const struct cfg_global *a, const struct cfg_global *b);
struct cfg_medium *cfg_medium_find(struct cfg_global *g, const struct rt_uuid *uuid);
struct cfg_medium *cfg_medium_find_location(struct cfg_global *g, const char *abs_path);
/* Adds a copy of *m (VERR_ALREADY_EXISTS for a known UUID or location). */
int cfg_medium_add(struct cfg_global *g, const struct cfg_medium *m);
int cfg_medium_remove(struct cfg_global *g, const struct rt_uuid *uuid);
int cfg_machine_entry_add(struct cfg_global *g, const struct rt_uuid *uuid, const char *path);
int cfg_machine_entry_remove(struct cfg_global *g, const struct rt_uuid *uuid);

/* ---- OS type presets (a data file: share/ostypes.xml, installed beside the programs) ---- */

struct cfg_ostype {
    char *id;                  /* "Debian_64", "Windows11_64", ... */
    char *description;         /* "Debian (64-bit)" */
    char *family;              /* "Linux", "Windows", "BSD", "DOS", "Other" */
    bool is_64bit;
    uint64_t memory_mib;       /* recommended */
    uint64_t disk_bytes;
    unsigned cpus;
    enum cfg_firmware firmware;
    enum cfg_chipset chipset;
    enum cfg_bus disk_bus, dvd_bus;
    enum cfg_nic_type nic;
    enum cfg_audio_ctl audio;
    enum cfg_usb_ctl usb;
    enum cfg_graphics graphics;
    unsigned vram_mib;
    bool rtc_utc;
    bool has_nic;              /* false: the OS has no inbox driver for any NIC model (DOS) */
    bool has_usb;              /* false: no USB controller (DOS) */
};
struct cfg_ostypes {
    struct cfg_ostype *types;
    size_t count;
};
/* The presets file: $VIREO_SHARE_DIR/ostypes.xml, else <program dir>/../share/vireo/ostypes.xml, else the
 * source tree's copy for uninstalled builds (malloc'ed). */
char *cfg_ostypes_path(void);
int cfg_ostypes_load(const char *path, struct cfg_ostypes **out, struct cfg_error *err);
void cfg_ostypes_free(struct cfg_ostypes *t);
/* Case-insensitive id lookup, NULL when unknown. */
const struct cfg_ostype *cfg_ostype_find(const struct cfg_ostypes *t, const char *id);
/* Applies a preset to a machine's hardware: memory, CPUs, firmware, chipset, one controller for disks
 * and one for the DVD (or one shared), NIC 1 on NAT, audio, USB, display. */
int cfg_hardware_apply_ostype(struct cfg_hardware *hw, const struct cfg_ostype *t);

#endif
