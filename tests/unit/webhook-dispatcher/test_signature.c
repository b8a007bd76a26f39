/* X-Parley-Signature against vectors computed independently (Python's hmac module), so a
 * receiver following docs/webhooks.md computes the same value. */
#include "check.h"
#include "dispatcher.h"

static void test_known_vector(void)
{
    char sig[WD_SIG_CAP];
    const char *body = "{\"id\":\"x\",\"status\":\"queued\"}";
    CHECK(wd_signature("whsec_test", 1700000000LL, body, strlen(body), sig) == 0);
    CHECK_STR(sig, "t=1700000000,v1="
                   "71cf770284d0f834427367d288d1ab6300096c28dcfbf03d3dbf2453506859f5");
}

static void test_empty_secret_and_body(void)
{
    char sig[WD_SIG_CAP];
    CHECK(wd_signature("", 0, "", 0, sig) == 0);
    CHECK_STR(sig, "t=0,v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3");
}

static void test_binary_body_is_signed_byte_for_byte(void)
{
    char sig[WD_SIG_CAP];
    const char body[3] = {0, (char)0xff, '\n'}; /* a NUL does not end the signed bytes */
    CHECK(wd_signature("k", 1700000000LL, body, 3, sig) == 0);
    CHECK_STR(sig, "t=1700000000,v1="
                   "cd5946b6f3a426799e52a2fe047c9b5e8fd40003156a507dcea23a49b6ed7951");
}

static void test_timestamp_and_body_are_covered(void)
{
    char a[WD_SIG_CAP], b[WD_SIG_CAP], c[WD_SIG_CAP];
    wd_signature("s", 1700000000LL, "{}", 2, a);
    wd_signature("s", 1700000001LL, "{}", 2, b);
    wd_signature("s", 1700000000LL, "{ }", 3, c);
    CHECK(strcmp(strchr(a, ','), strchr(b, ',')) != 0);
    CHECK(strcmp(strchr(a, ','), strchr(c, ',')) != 0);
    CHECK(strlen(a) == strlen("t=1700000000,v1=") + 64);
}

int main(void)
{
    RUN(test_known_vector);
    RUN(test_empty_secret_and_body);
    RUN(test_binary_body_is_signed_byte_for_byte);
    RUN(test_timestamp_and_body_are_covered);
    return check_summary();
}
