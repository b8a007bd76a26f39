/* crypto: hashes, MACs, random tokens. */
#include "check.h"
#include "crypto.h"
#include "validate.h"

static void sha256_vector(void)
{
    char out[65];
    pl_sha256_hex("abc", 3, out);
    CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void hmac_rfc4231_case2(void)
{
    char out[65];
    const char *data = "what do ya want for nothing?";
    pl_hmac_sha256_hex("Jefe", 4, data, strlen(data), out);
    CHECK_STR(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void random_and_compare(void)
{
    char a[33], b[33];
    CHECK(pl_random_hex(a, 16) == 0);
    CHECK(pl_random_hex(b, 16) == 0);
    CHECK(strlen(a) == 32);
    CHECK(strcmp(a, b) != 0);
    CHECK(pl_secure_equal("abc", "abc"));
    CHECK(!pl_secure_equal("abc", "abd"));
    CHECK(!pl_secure_equal("abc", "abcd"));
}

static void uuid_v4_form(void)
{
    char a[37], b[37];
    CHECK(pl_uuid_v4(a) == 0 && pl_uuid_v4(b) == 0);
    CHECK(pl_is_uuid(a) && strcmp(a, b) != 0);
    CHECK(a[14] == '4');                                                 /* version */
    CHECK(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b'); /* variant */
}

int main(void)
{
    RUN(sha256_vector);
    RUN(uuid_v4_form);
    RUN(hmac_rfc4231_case2);
    RUN(random_and_compare);
    return check_summary();
}
