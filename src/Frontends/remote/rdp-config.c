/* rdp-config.c - what the RDP server is started with: the listen address, the password file and the per-VM TLS certificate (OpenSSL). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "vireo/rt.h"
#include "rdp-int.h"

#define LOG_COMPONENT "rdp"

#define RDP_CERT_DAYS 3650
#define RDP_KEY_BITS 2048

int rdp_listen_parse(const char *spec, char **address, unsigned *port)
{
    *address = NULL;
    if (!spec || !*spec)
        return VERR_INVALID_PARAMETER;
    const char *port_str = spec;
    char *addr = NULL;
    if (spec[0] == '[') {
        /* [IPv6]:PORT */
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || close == spec + 1)
            return VERR_INVALID_PARAMETER;
        addr = strndup(spec + 1, (size_t)(close - spec - 1));
        port_str = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon) {
            if (colon == spec || memchr(spec, ':', (size_t)(colon - spec)))
                return VERR_INVALID_PARAMETER; /* an IPv6 address needs brackets */
            addr = strndup(spec, (size_t)(colon - spec));
            port_str = colon + 1;
        }
    }
    if ((spec[0] == '[' || strchr(spec, ':')) && !addr)
        return VERR_NO_MEMORY;
    uint64_t v;
    if (rt_str_to_u64(port_str, &v) || v == 0 || v > 65535) {
        free(addr);
        return VERR_INVALID_PARAMETER;
    }
    *address = addr;
    *port = (unsigned)v;
    return 0;
}

int rdp_password_file_read(const char *path, char **password)
{
    void *data = NULL;
    size_t len = 0;
    *password = NULL;
    int rc = rt_file_read_all(path, 64 * 1024, &data, &len);
    if (rc)
        return rc;
    char *text = data;
    size_t n = 0;
    while (n < len && text[n] != '\r' && text[n] != '\n')
        n++;
    /* A NUL before the line end would cut the password short without anyone noticing. */
    if (n == 0 || n > RDP_MAX_CREDENTIAL || memchr(text, '\0', n)) {
        memset(data, 0, len);
        free(data);
        return n == 0 ? VERR_INVALID_PARAMETER : VERR_TOO_LARGE;
    }
    text[n] = '\0';
    *password = strdup(text);
    memset(data, 0, len);
    free(data);
    return *password ? 0 : VERR_NO_MEMORY;
}

uint32_t rdp_scancode_to_keycode(uint16_t flags, uint16_t code)
{
    /* KBD_FLAGS_EXTENDED 0x0100 is the 0xE0 prefix, KBD_FLAGS_EXTENDED1 0x0200 the 0xE1 prefix (Pause). */
    code &= 0xff;
    if (code == 0 || code >= 0x80)
        return 0;
    if (flags & 0x0200)
        return code == 0x1d ? 0xE11D45u : 0;
    return (flags & 0x0100) ? 0xE000u | code : code;
}

/* ---- Certificate ------------------------------------------------------------------------------- */

static void rdp_ssl_log_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    LOG_ERR("%s: %s", what, e ? buf : "unknown OpenSSL error");
    ERR_clear_error();
}

/* A BIO's contents written atomically with mode 0600. */
static int rdp_bio_write_file(BIO *bio, const char *path)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !data)
        return VERR_NO_MEMORY;
    return rt_file_write_atomic(path, data, (size_t)len, 0600);
}

static int rdp_cert_create(const char *crt_path, const char *key_path, const char *common_name)
{
    int rc = VERR_GENERAL;
    EVP_PKEY *key = EVP_RSA_gen(RDP_KEY_BITS);
    X509 *x = X509_new();
    BIO *kbio = BIO_new(BIO_s_mem()), *cbio = BIO_new(BIO_s_mem());
    if (!key || !x || !kbio || !cbio) {
        rdp_ssl_log_error("cannot create the RDP server's key");
        goto out;
    }
    BIGNUM *serial = BN_new();
    X509_NAME *name = X509_get_subject_name(x);
    bool ok = serial && BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
              BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), (long)RDP_CERT_DAYS * 86400) && X509_set_pubkey(x, key) &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0) &&
              X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Vireo", -1, -1, 0) &&
              X509_set_issuer_name(x, name) && X509_sign(x, key, EVP_sha256()) > 0 &&
              PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) && PEM_write_bio_X509(cbio, x);
    BN_free(serial);
    if (!ok) {
        rdp_ssl_log_error("cannot make the RDP server's self-signed certificate");
        goto out;
    }
    /* The key first: a certificate without its key is never left behind alone. */
    if ((rc = rdp_bio_write_file(kbio, key_path)) || (rc = rdp_bio_write_file(cbio, crt_path))) {
        LOG_ERR("cannot write the RDP server's certificate or key in '%s': %s", crt_path, rt_err_str(rc));
        goto out;
    }
    LOG_INFO("made a self-signed RDP certificate for '%s' (%s)", common_name, crt_path);
    rc = 0;
out:
    BIO_free(kbio);
    BIO_free(cbio);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* Loads both files and checks that the key belongs to the certificate. */
static int rdp_cert_check(const char *crt_path, const char *key_path)
{
    int rc = VERR_INVALID_PARAMETER;
    FILE *cf = fopen(crt_path, "r"), *kf = fopen(key_path, "r");
    X509 *x = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    if (!cf || !kf)
        LOG_ERR("cannot open the RDP certificate '%s' or its key '%s': %s", crt_path, key_path, strerror(errno));
    else if (!x)
        rdp_ssl_log_error("the RDP certificate is not a PEM certificate");
    else if (!key)
        rdp_ssl_log_error("the RDP key is not a PEM private key");
    else if (X509_check_private_key(x, key) != 1)
        LOG_ERR("the RDP key '%s' does not belong to the certificate '%s'", key_path, crt_path);
    else
        rc = 0;
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(key);
    if (cf)
        fclose(cf);
    if (kf)
        fclose(kf);
    return rc;
}

int rdp_cert_ensure(const char *dir, const char *common_name, char **crt_path, char **key_path)
{
    *crt_path = *key_path = NULL;
    int rc = rt_dir_create_all(dir, 0700);
    if (rc) {
        LOG_ERR("cannot create the RDP certificate folder '%s': %s", dir, rt_err_str(rc));
        return rc;
    }
    char *crt = rt_path_join(dir, "rdp.crt"), *key = rt_path_join(dir, "rdp.key");
    if (!crt || !key) {
        free(crt);
        free(key);
        return VERR_NO_MEMORY;
    }
    if (!rt_path_exists(crt) || !rt_path_exists(key))
        rc = rdp_cert_create(crt, key, common_name && *common_name ? common_name : "Vireo VM");
    if (!rc)
        rc = rdp_cert_check(crt, key);
    if (rc) {
        free(crt);
        free(key);
        return rc;
    }
    *crt_path = crt;
    *key_path = key;
    return 0;
}

/* ---- vireo-vm ---------------------------------------------------------------------------------- */

int rdp_options_check(const struct rdp_options *o, char *msg, size_t msg_size)
{
    msg[0] = '\0';
    if (!o->listen) {
        if (o->user || o->password_file || o->cert_dir)
            snprintf(msg, msg_size, "--rdp-user, --rdp-password-file and --rdp-cert-dir need --rdp [ADDR:]PORT");
        return msg[0] ? VERR_INVALID_PARAMETER : 0;
    }
    char *address = NULL;
    unsigned port;
    if (rdp_listen_parse(o->listen, &address, &port)) {
        snprintf(msg, msg_size, "--rdp '%s' must be [ADDR:]PORT with a port from 1 to 65535 ([ADDR]:PORT for IPv6)",
                 o->listen);
        return VERR_INVALID_PARAMETER;
    }
    free(address);
    if (o->user && (!*o->user || strlen(o->user) > RDP_MAX_CREDENTIAL)) {
        snprintf(msg, msg_size, "--rdp-user must be 1 to %u bytes", RDP_MAX_CREDENTIAL);
        return VERR_INVALID_PARAMETER;
    }
    if (o->user && !o->password_file) {
        snprintf(msg, msg_size, "--rdp-user needs --rdp-password-file (without a password every client is let in)");
        return VERR_INVALID_PARAMETER;
    }
    if (o->password_file) {
        char *password = NULL;
        int rc = rdp_password_file_read(o->password_file, &password);
        if (rc) {
            snprintf(msg, msg_size, "--rdp-password-file '%s': %s", o->password_file,
                     rc == VERR_INVALID_PARAMETER ? "the first line is empty"
                     : rc == VERR_TOO_LARGE       ? "the password is longer than 256 bytes or holds a NUL byte"
                                                  : rt_err_str(rc));
            return rc;
        }
        free(password);
    }
    return 0;
}

/* Removes a temporary certificate folder (only the two files this server made in it). */
static void rdp_temp_dir_remove(const char *dir)
{
    static const char *const names[] = { "rdp.crt", "rdp.key" };
    for (size_t i = 0; i < RT_ARRAY_SIZE(names); i++) {
        char *path = rt_path_join(dir, names[i]);
        if (path)
            unlink(path);
        free(path);
    }
    rmdir(dir);
}

int rdp_start_from_options(struct vm *vm, const char *vm_name, const struct rdp_options *o, struct rdp_server **out)
{
    *out = NULL;
    if (!o->listen)
        return 0;
    struct rdp_server_config cfg = { .user = o->user ? o->user : RDP_DEFAULT_USER, .cert_name = vm_name };
    char *address = NULL, *password = NULL, *temp_dir = NULL;
    int rc = rdp_listen_parse(o->listen, &address, &cfg.port);
    if (!rc && o->password_file)
        rc = rdp_password_file_read(o->password_file, &password);
    if (!rc && !o->cert_dir) {
        const char *tmp = getenv("TMPDIR");
        temp_dir = rt_strdup_printf("%s/vireo-rdp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!temp_dir || !mkdtemp(temp_dir)) {
            LOG_ERR("cannot make a temporary folder for the RDP certificate: %s", strerror(errno));
            free(temp_dir);
            temp_dir = NULL;
            rc = VERR_IO;
        }
    }
    if (!rc) {
        cfg.address = address;
        cfg.password = password;
        cfg.cert_dir = o->cert_dir ? o->cert_dir : temp_dir;
        rc = rdp_server_start(vm, &cfg, out);
        if (!rc)
            rdp_server_own_temp_dir(*out, temp_dir);
        else if (temp_dir)
            rdp_temp_dir_remove(temp_dir);
        if (!rc)
            temp_dir = NULL;
    }
    free(temp_dir);
    free(address);
    if (password)
        memset(password, 0, strlen(password));
    free(password);
    return rc;
}

void rdp_server_temp_dir_cleanup(char *dir)
{
    if (dir)
        rdp_temp_dir_remove(dir);
    free(dir);
}

int rdp_start_from_settings(struct vm *vm, const struct cfg_machine *m, const char *machine_folder,
                            struct rdp_server **out)
{
    *out = NULL;
    const struct cfg_remote *r = &m->hw.remote;
    if (!r->rdp_enabled)
        return 0;
    const char *user = cfg_extra_get(m->extra, m->extra_count, RDP_EXTRA_USER);
    if (!user || !*user)
        user = RDP_DEFAULT_USER;
    if (strlen(user) > RDP_MAX_CREDENTIAL) {
        LOG_ERR("extra data %s is longer than %u bytes; RDP is not started", RDP_EXTRA_USER, RDP_MAX_CREDENTIAL);
        return VERR_CFG_BAD_VALUE;
    }
    if (r->auth == CFG_AUTH_PASSWORD && (!r->password || !*r->password)) {
        LOG_ERR("RDP is set to password authentication but the machine has no password; RDP is not started "
                "(set one with vireo-manage modifyvm)");
        return VERR_CFG_BAD_VALUE;
    }
    struct rdp_server_config cfg = {
        .address = r->address && *r->address ? r->address : NULL,
        .port = r->rdp_port,
        .user = user,
        .password = r->auth == CFG_AUTH_PASSWORD ? r->password : NULL,
        .cert_dir = machine_folder,
        .cert_name = m->name,
    };
    return rdp_server_start(vm, &cfg, out);
}
