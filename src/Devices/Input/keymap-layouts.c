/* keymap-layouts.c - the main-block symbols of the keyboard layouts VNC clients may type on (X keysym lookup). */

/*
 * Each string lists one level's symbols for the 48 keys of keymap-internal.h, in the groups
 * `1234567890-= / qwertyuiop[] / asdfghjkl;'\ / zxcvbnm,./ / ISO key.  The symbols are those the
 * layouts print on their keys (X.Org's xkeyboard-config describes the same layouts); AltGr symbols
 * are the ones printed on the keycaps.  Dead keys are combining marks: \u0300 grave, \u0301 acute,
 * \u0302 circumflex, \u0303 tilde, \u0308 diaeresis, \u0327 cedilla.
 */
#include <stddef.h>

#include "keymap-internal.h"

const uint8_t g_keymap_keys[KEYMAP_KEYS] = {
    0x29, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
    0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x2b,
    0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35,
    0x56,
};

/* Nordic layouts share everything but a few keys: the Swedish and Finnish ones are the same. */
#define SE_LEVEL0 "§1234567890+\u0301" "qwertyuiopå\u0308" "asdfghjklöä'" "zxcvbnm,.-" "<"
#define SE_LEVEL1 "½!\"#¤%&/()=?\u0300" "QWERTYUIOPÅ\u0302" "ASDFGHJKLÖÄ*" "ZXCVBNM;:_" ">"
#define SE_LEVEL2 "  @£$€ {[]}\\ " "  €        \u0303" "            " "      µ   " "|"

const struct keymap_layout g_keymap_layouts[] = {
    { "us", {
        "`1234567890-=" "qwertyuiop[]" "asdfghjkl;'\\" "zxcvbnm,./" "<",
        "~!@#$%^&*()_+" "QWERTYUIOP{}" "ASDFGHJKL:\"|" "ZXCVBNM<>?" ">",
        NULL } },
    { "gb", {
        "`1234567890-=" "qwertyuiop[]" "asdfghjkl;'#" "zxcvbnm,./" "\\",
        "¬!\"£$%^&*()_+" "QWERTYUIOP{}" "ASDFGHJKL:@~" "ZXCVBNM<>?" "|",
        "|   €        " "            " "            " "          " " " } },
    { "de", {
        "\u03021234567890ß\u0301" "qwertzuiopü+" "asdfghjklöä#" "yxcvbnm,.-" "<",
        "°!\"§$%&/()=?\u0300" "QWERTZUIOPÜ*" "ASDFGHJKLÖÄ'" "YXCVBNM;:_" ">",
        " ¹²³¼½¬{[]}\\\u0327" "@ €        ~" "            " "      µ   " "|" } },
    { "ch", {
        "§1234567890'\u0302" "qwertzuiopü\u0308" "asdfghjklöä$" "yxcvbnm,.-" "<",
        "°+\"*ç%&/()=?\u0300" "QWERTZUIOPè!" "ASDFGHJKLéà£" "YXCVBNM;:_" ">",
        " ¦@#  ¬|¢  \u0301\u0303" "  €       []" "          {}" "          " "\\" } },
    { "fr", {
        "²&é\"'(-è_çà)=" "azertyuiop\u0302$" "qsdfghjklmù*" "wxcvbn,;:!" "<",
        " 1234567890°+" "AZERTYUIOP\u0308£" "QSDFGHJKLM%µ" "WXCVBN?./§" ">",
        "  ~#{[|`\\^@]}" "  €        ¤" "            " "          " " " } },
    { "be", {
        "²&é\"'(§è!çà)-" "azertyuiop\u0302$" "qsdfghjklmùµ" "wxcvbn,;:=" "<",
        "³1234567890°_" "AZERTYUIOP\u0308*" "QSDFGHJKLM%£" "WXCVBN?./+" ">",
        " |@#  ^  {}  " "  €       []" "          \u0301\u0300" "         \u0303" "\\" } },
    { "es", {
        "º1234567890'¡" "qwertyuiop\u0300+" "asdfghjklñ\u0301ç" "zxcvbnm,.-" "<",
        "ª!\"·$%&/()=?¿" "QWERTYUIOP\u0302*" "ASDFGHJKLÑ\u0308Ç" "ZXCVBNM;:_" ">",
        "\\|@#~€¬      " "  €       []" "          {}" "          " " " } },
    { "it", {
        "\\1234567890'ì" "qwertyuiopè+" "asdfghjklòàù" "zxcvbnm,.-" "<",
        "|!\"£$%&/()=?^" "QWERTYUIOPé*" "ASDFGHJKLç°§" "ZXCVBNM;:_" ">",
        "           `~" "  €       []" "         @# " "          " " " } },
    { "pt", {
        "\\1234567890'«" "qwertyuiop+\u0301" "asdfghjklçº\u0303" "zxcvbnm,.-" "<",
        "|!\"#$%&/()=?»" "QWERTYUIOP*\u0300" "ASDFGHJKLÇª\u0302" "ZXCVBNM;:_" ">",
        "  @£§€ {[]}  " "  €       \u0308 " "            " "          " " " } },
    { "nl", {
        "@1234567890/°" "qwertyuiop\u0308*" "asdfghjkl+\u0301<" "zxcvbnm,.-" "]",
        "§!\"#$%&_()'?\u0303" "QWERTYUIOP\u0302|" "ASDFGHJKL±\u0300>" "ZXCVBNM;:=" "[",
        "¬¹²³¼½¾£{} \\\u0327" "  €         " "            " "      µ   " " " } },
    { "se", { SE_LEVEL0, SE_LEVEL1, SE_LEVEL2 } },
    { "fi", { SE_LEVEL0, SE_LEVEL1, SE_LEVEL2 } },
    { "no", {
        "|1234567890+\\" "qwertyuiopå\u0308" "asdfghjkløæ'" "zxcvbnm,.-" "<",
        "§!\"#¤%&/()=?\u0300" "QWERTYUIOPÅ\u0302" "ASDFGHJKLØÆ*" "ZXCVBNM;:_" ">",
        "  @£$€ {[]} \u0301" "  €        \u0303" "            " "      µ   " " " } },
    { "dk", {
        "½1234567890+\u0301" "qwertyuiopå\u0308" "asdfghjklæø'" "zxcvbnm,.-" "<",
        "§!\"#¤%&/()=?\u0300" "QWERTYUIOPÅ\u0302" "ASDFGHJKLÆØ*" "ZXCVBNM;:_" ">",
        "  @£$€ {[]} |" "  €        \u0303" "            " "      µ   " "\\" } },
};

const unsigned g_keymap_layout_count = sizeof(g_keymap_layouts) / sizeof(g_keymap_layouts[0]);
