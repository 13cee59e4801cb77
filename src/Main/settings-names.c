/* settings-names.c - the names of the settings enums, as the XML files and vireo-manage spell them. */
#include <string.h>
#include <strings.h>

#include "vireo/err.h"
#include "settings-internal.h"

#define NAME_TABLE(fn_name, parse_name, type, ...)                                         \
    static const char *const fn_name##_table[] = { __VA_ARGS__ };                         \
    const char *fn_name(type v)                                                            \
    {                                                                                      \
        unsigned i = (unsigned)v;                                                          \
        return i < sizeof(fn_name##_table) / sizeof(fn_name##_table[0]) ? fn_name##_table[i] : NULL; \
    }                                                                                      \
    int parse_name(const char *s, type *out)                                               \
    {                                                                                      \
        for (unsigned i = 0; s && i < sizeof(fn_name##_table) / sizeof(fn_name##_table[0]); i++) { \
            if (!strcasecmp(s, fn_name##_table[i])) {                                      \
                *out = (type)i;                                                            \
                return 0;                                                                  \
            }                                                                              \
        }                                                                                  \
        return VERR_NOT_FOUND;                                                             \
    }

/* The tables follow the enums' order in settings.h. */
NAME_TABLE(cfg_bus_name, cfg_bus_parse, enum cfg_bus, "ide", "sata", "virtio")
NAME_TABLE(cfg_boot_dev_name, cfg_boot_dev_parse, enum cfg_boot_dev, "none", "floppy", "dvd", "disk", "net")
NAME_TABLE(cfg_firmware_name, cfg_firmware_parse, enum cfg_firmware, "bios", "efi")
NAME_TABLE(cfg_tpm_name, cfg_tpm_parse, enum cfg_tpm, "none", "v2_0")
NAME_TABLE(cfg_chipset_name, cfg_chipset_parse, enum cfg_chipset, "piix3", "ich9")
NAME_TABLE(cfg_medium_type_name, cfg_medium_type_parse, enum cfg_medium_type, "hdd", "dvd", "floppy")
NAME_TABLE(cfg_nic_type_name, cfg_nic_type_parse, enum cfg_nic_type, "e1000", "virtio", "rtl8139")
NAME_TABLE(cfg_nic_attach_name, cfg_nic_attach_parse, enum cfg_nic_attach, "none", "nat", "bridged", "hostonly",
           "internal")
NAME_TABLE(cfg_audio_driver_name, cfg_audio_driver_parse, enum cfg_audio_driver, "null", "pulse", "alsa", "sdl")
NAME_TABLE(cfg_audio_ctl_name, cfg_audio_ctl_parse, enum cfg_audio_ctl, "hda", "ac97", "sb16")
NAME_TABLE(cfg_usb_ctl_name, cfg_usb_ctl_parse, enum cfg_usb_ctl, "ohci", "ehci", "xhci")
NAME_TABLE(cfg_graphics_name, cfg_graphics_parse, enum cfg_graphics, "vbe", "virtio", "none")
NAME_TABLE(cfg_machine_state_name, cfg_machine_state_parse, enum cfg_machine_state, "poweroff", "saved", "running",
           "paused", "aborted")
NAME_TABLE(cfg_remote_auth_name, cfg_remote_auth_parse, enum cfg_remote_auth, "none", "password")
