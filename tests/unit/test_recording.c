/* recording: the signed URL scheme of docs/postprocess.md, checked against an independent
 * HMAC computation (OpenSSL's HMAC, not pl_hmac_sha256_hex). */
#include <openssl/hmac.h>

#include "check.h"
#include "error.h"
#include "recording.h"

#define ID  "0193a1b2-7c1e-7a8e-9d62-1f0c2b3a4d5e"
#define KEY "test-key"

static void expected_sig(const char *msg, char out[65])
{
    unsigned char mac[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (const unsigned char *)msg, strlen(msg), mac, &n);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static void url_has_documented_shape(void)
{
    char url[512], sig[65], want[400];
    expected_sig(ID ".1700000000", sig);
    CHECK(pl_recording_url(url, sizeof(url), "http://api.example.com/", KEY, ID, 1700000000) ==
          PL_OK);
    snprintf(want, sizeof(want),
             "http://api.example.com/recordings/" ID ".wav?exp=1700000000&sig=%s", sig);
    CHECK_STR(url, want);
    char small[40];
    CHECK(pl_recording_url(small, sizeof(small), "http://x", KEY, ID, 1) == PL_ERR_TOOBIG);
}

static void verify_accepts_only_the_exact_signature(void)
{
    char sig[65];
    pl_recording_sig(KEY, ID, 2000, sig);
    CHECK(pl_recording_verify(KEY, ID, "2000", sig, 1999) == PL_OK);
    CHECK(pl_recording_verify(KEY, ID, "2000", sig, 2000) == PL_OK); /* until exp included */
    CHECK(pl_recording_verify(KEY, ID, "2000", sig, 2001) == PL_ERR_TIMEOUT);
    CHECK(pl_recording_verify(KEY, ID, "2001", sig, 0) == PL_ERR_INVALID); /* exp altered */
    CHECK(pl_recording_verify(KEY, ID, "02000", sig, 0) == PL_ERR_INVALID);
    CHECK(pl_recording_verify("other", ID, "2000", sig, 0) == PL_ERR_INVALID);
    CHECK(pl_recording_verify(KEY, "0193a1b2-7c1e-7a8e-9d62-1f0c2b3a4d5f", "2000", sig, 0) ==
          PL_ERR_INVALID);
    char bad[65];
    memcpy(bad, sig, sizeof(bad));
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    CHECK(pl_recording_verify(KEY, ID, "2000", bad, 0) == PL_ERR_INVALID);
    bad[63] = '\0'; /* shorter */
    CHECK(pl_recording_verify(KEY, ID, "2000", bad, 0) == PL_ERR_INVALID);
    CHECK(pl_recording_verify(KEY, ID, NULL, sig, 0) == PL_ERR_INVALID);
    CHECK(pl_recording_verify(KEY, ID, "2000", NULL, 0) == PL_ERR_INVALID);
    CHECK(pl_recording_verify(KEY, ID, "", sig, 0) == PL_ERR_INVALID);
    CHECK(pl_recording_verify(KEY, ID, "-5", sig, 0) == PL_ERR_INVALID);
    CHECK(pl_recording_verify(KEY, ID, "12345678901234567890", sig, 0) == PL_ERR_INVALID);
}

int main(void)
{
    RUN(url_has_documented_shape);
    RUN(verify_accepts_only_the_exact_signature);
    return check_summary();
}
