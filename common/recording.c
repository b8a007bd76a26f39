#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "error.h"
#include "recording.h"

void pl_recording_sig(const char *key, const char *execution_id, int64_t exp, char sig[65])
{
    char msg[256];
    int n = snprintf(msg, sizeof(msg), "%s.%lld", execution_id, (long long)exp);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1; /* ids are UUIDs; a longer one signs its truncation */
    pl_hmac_sha256_hex(key, strlen(key), msg, (size_t)n, sig);
}

int pl_recording_url(char *buf, size_t cap, const char *base_url, const char *key,
                     const char *execution_id, int64_t exp)
{
    char sig[65];
    pl_recording_sig(key, execution_id, exp, sig);
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    int n = snprintf(buf, cap, "%.*s/recordings/%s.wav?exp=%lld&sig=%s", (int)blen, base_url,
                     execution_id, (long long)exp, sig);
    return n < 0 || (size_t)n >= cap ? PL_ERR_TOOBIG : PL_OK;
}

int pl_recording_verify(const char *key, const char *execution_id, const char *exp, const char *sig,
                        int64_t now_s)
{
    if (exp == NULL || sig == NULL || exp[0] == '\0' || strlen(exp) > 18)
        return PL_ERR_INVALID;
    int64_t e = 0;
    for (const char *p = exp; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return PL_ERR_INVALID;
        e = e * 10 + (*p - '0');
    }
    /* Only the canonical decimal ("123", not "0123") is accepted: one expiry, one URL. */
    char canon[24];
    snprintf(canon, sizeof(canon), "%lld", (long long)e);
    if (strcmp(canon, exp) != 0)
        return PL_ERR_INVALID;
    char want[65];
    pl_recording_sig(key, execution_id, e, want);
    if (!pl_secure_equal(want, sig))
        return PL_ERR_INVALID;
    return now_s > e ? PL_ERR_TIMEOUT : PL_OK;
}
