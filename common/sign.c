#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "codec.h"
#include "crypto.h"
#include "error.h"
#include "sign.h"

/* A growable string for the signed message; the message is as large as the parameters. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (ns == NULL) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static int copy_sorted(const pl_form *in, pl_form *out)
{
    pl_form_init(out);
    for (int i = 0; i < in->n; i++)
        if (pl_form_add(out, in->items[i].key, in->items[i].val) != PL_OK) {
            pl_form_free(out);
            return PL_ERR_NOMEM;
        }
    pl_form_sort(out);
    return PL_OK;
}

static void hmac_b64(const EVP_MD *md, const char *key, const char *msg, size_t len, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(md, key, (int)strlen(key), (const unsigned char *)msg, len, mac, &maclen);
    pl_base64_encode(mac, maclen, out, PL_SIG_CAP);
}

int pl_sign_twilio(const char *auth_token, const char *url, const pl_form *params, char *out)
{
    pl_form sorted;
    if (copy_sorted(params, &sorted) != PL_OK)
        return PL_ERR_NOMEM;
    sbuf b = {0};
    sb_str(&b, url);
    for (int i = 0; i < sorted.n; i++) {
        sb_str(&b, sorted.items[i].key);
        sb_str(&b, sorted.items[i].val);
    }
    pl_form_free(&sorted);
    if (b.oom || b.s == NULL) {
        free(b.s);
        return PL_ERR_NOMEM;
    }
    hmac_b64(EVP_sha1(), auth_token, b.s, b.len, out);
    free(b.s);
    return PL_OK;
}

/* The URL with its default port toggled: "https://h/p" <-> "https://h:443/p". 0 when the URL
 * has a non-default port or cannot be split (then only the URL as given is tried). */
static int port_variant(const char *url, char *out, size_t cap)
{
    const char *def;
    size_t skip;
    if (strncmp(url, "https://", 8) == 0) {
        def = ":443";
        skip = 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        def = ":80";
        skip = 7;
    } else {
        return 0;
    }
    const char *host = url + skip;
    size_t hostlen = strcspn(host, "/?#");
    const char *colon = memchr(host, ':', hostlen);
    const char *rest = host + hostlen;
    if (colon != NULL) {
        size_t plen = (size_t)(rest - colon);
        if (plen != strlen(def) || memcmp(colon, def, plen) != 0)
            return 0;
        int n = snprintf(out, cap, "%.*s%s", (int)(colon - url), url, rest);
        return n > 0 && (size_t)n < cap;
    }
    int n = snprintf(out, cap, "%.*s%s%s", (int)(rest - url), url, def, rest);
    return n > 0 && (size_t)n < cap;
}

int pl_verify_twilio(const char *auth_token, const char *url, const pl_form *params,
                     const char *signature)
{
    char sig[PL_SIG_CAP], alt[2048];
    if (signature == NULL || signature[0] == '\0')
        return 0;
    if (pl_sign_twilio(auth_token, url, params, sig) == PL_OK && pl_secure_equal(sig, signature))
        return 1;
    if (port_variant(url, alt, sizeof(alt)) && pl_sign_twilio(auth_token, alt, params, sig) == 0 &&
        pl_secure_equal(sig, signature))
        return 1;
    return 0;
}

int pl_sign_plivo_v3(const char *auth_token, const char *url, const pl_form *params,
                     const char *nonce, char *out)
{
    pl_form sorted, query;
    if (copy_sorted(params, &sorted) != PL_OK)
        return PL_ERR_NOMEM;
    pl_form_init(&query);
    const char *q = strchr(url, '?');
    size_t baselen = q != NULL ? (size_t)(q - url) : strlen(url);
    int rc = PL_OK;
    if (q != NULL && q[1] != '\0') {
        rc = pl_form_parse(&query, q + 1, strlen(q + 1), 1000);
        pl_form_sort(&query);
    }
    sbuf b = {0};
    sb_add(&b, url, baselen);
    if (query.n > 0 || sorted.n > 0)
        sb_str(&b, "?");
    for (int i = 0; i < query.n; i++) {
        if (i > 0)
            sb_str(&b, "&");
        sb_str(&b, query.items[i].key);
        sb_str(&b, "=");
        sb_str(&b, query.items[i].val);
    }
    if (query.n > 0 && sorted.n > 0)
        sb_str(&b, ".");
    for (int i = 0; i < sorted.n; i++) {
        sb_str(&b, sorted.items[i].key);
        sb_str(&b, sorted.items[i].val);
    }
    sb_str(&b, ".");
    sb_str(&b, nonce);
    pl_form_free(&sorted);
    pl_form_free(&query);
    if (rc == PL_OK && (b.oom || b.s == NULL))
        rc = PL_ERR_NOMEM;
    if (rc == PL_OK)
        hmac_b64(EVP_sha256(), auth_token, b.s, b.len, out);
    free(b.s);
    return rc;
}

static int plivo_match(const char *auth_token, const char *url, const pl_form *params,
                       const char *nonce, const char *header)
{
    char sig[PL_SIG_CAP], one[PL_SIG_CAP];
    if (pl_sign_plivo_v3(auth_token, url, params, nonce, sig) != PL_OK)
        return 0;
    const char *p = header;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n > 0 && n < sizeof(one)) {
            memcpy(one, p, n);
            one[n] = '\0';
            if (pl_secure_equal(sig, one))
                return 1;
        }
        p += n;
    }
    return 0;
}

int pl_verify_plivo_v3(const char *auth_token, const char *url, const pl_form *params,
                       const char *nonce, const char *header)
{
    char alt[2048];
    if (nonce == NULL || nonce[0] == '\0' || header == NULL || header[0] == '\0')
        return 0;
    if (plivo_match(auth_token, url, params, nonce, header))
        return 1;
    return port_variant(url, alt, sizeof(alt)) &&
           plivo_match(auth_token, alt, params, nonce, header);
}
