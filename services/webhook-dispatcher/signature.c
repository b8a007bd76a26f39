/* X-Parley-Signature (docs/webhooks.md): t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t.body)>.
 * The key is the account's webhook_secret as text (its bytes, not hex-decoded); the MAC covers
 * the decimal timestamp, one '.', then the exact body bytes sent. A receiver recomputes it over
 * the raw body it read and compares in constant time; the timestamp lets it refuse replays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "dispatcher.h"
#include "error.h"

int wd_signature(const char *secret, long long t, const char *body, size_t len,
                 char out[WD_SIG_CAP])
{
    char ts[24];
    int tlen = snprintf(ts, sizeof(ts), "%lld", t);
    char *msg = malloc((size_t)tlen + 1 + len);
    if (msg == NULL)
        return PL_ERR_NOMEM;
    memcpy(msg, ts, (size_t)tlen);
    msg[tlen] = '.';
    memcpy(msg + tlen + 1, body, len);
    char mac[65];
    pl_hmac_sha256_hex(secret, strlen(secret), msg, (size_t)tlen + 1 + len, mac);
    free(msg);
    snprintf(out, WD_SIG_CAP, "t=%s,v1=%s", ts, mac);
    return PL_OK;
}
