#include "check.h"
#include "validate.h"

static void uuid_forms(void)
{
    CHECK(pl_is_uuid("123e4567-e89b-12d3-a456-426655440000"));
    CHECK(pl_is_uuid("123E4567-E89B-12D3-A456-426655440000"));
    CHECK(!pl_is_uuid("123e4567e89b12d3a456426655440000"));
    CHECK(!pl_is_uuid("123e4567-e89b-12d3-a456-42665544000g"));
    CHECK(!pl_is_uuid(""));
    CHECK(!pl_is_uuid("123e4567-e89b-12d3-a456-4266554400001"));
}

static void e164_numbers(void)
{
    CHECK(pl_is_e164("+14155550100"));
    CHECK(pl_is_e164("+919876543210"));
    CHECK(pl_is_e164("+4930123"));           /* 7 digits: shortest allowed */
    CHECK(pl_is_e164("+123456789012345"));   /* 15 digits: longest */
    CHECK(!pl_is_e164("+1234567890123456")); /* 16 */
    CHECK(!pl_is_e164("+123456"));
    CHECK(!pl_is_e164("14155550100"));
    CHECK(!pl_is_e164("+04155550100"));
    CHECK(!pl_is_e164("+1 415 555 0100"));
    CHECK(!pl_is_e164("+1415555010a"));
}

static void http_urls(void)
{
    CHECK(pl_is_http_url("https://example.com/hook"));
    CHECK(pl_is_http_url("http://127.0.0.1:9000/x?y=1"));
    CHECK(!pl_is_http_url("ftp://example.com"));
    CHECK(!pl_is_http_url("https://"));
    CHECK(!pl_is_http_url("https:///path"));
    CHECK(!pl_is_http_url("https://exa mple.com"));
    CHECK(!pl_is_http_url("example.com"));
}

static void iso8601_variants(void)
{
    int64_t ms;
    CHECK(pl_parse_iso8601("2024-06-05T16:35:00.000+05:30", &ms) == 0);
    CHECK(ms == 1717585500000LL);
    CHECK(pl_parse_iso8601("2024-06-05T11:05:00Z", &ms) == 0);
    CHECK(ms == 1717585500000LL);
    CHECK(pl_parse_iso8601("2024-06-05T11:05:00", &ms) == 0); /* no zone: UTC */
    CHECK(ms == 1717585500000LL);
    CHECK(pl_parse_iso8601("2024-06-05 16:35+0530", &ms) == 0);
    CHECK(ms == 1717585500000LL);
    CHECK(pl_parse_iso8601("2024-06-05T06:05:00.250-05", &ms) == 0);
    CHECK(ms == 1717585500250LL);
    CHECK(pl_parse_iso8601("2024-02-29T00:00:00Z", &ms) == 0);
    CHECK(pl_parse_iso8601("2023-02-29T00:00:00Z", &ms) != 0);
    CHECK(pl_parse_iso8601("2024-13-01T00:00:00Z", &ms) != 0);
    CHECK(pl_parse_iso8601("2024-06-05", &ms) != 0);
    CHECK(pl_parse_iso8601("tomorrow", &ms) != 0);
    CHECK(pl_parse_iso8601("2024-06-05T25:00:00Z", &ms) != 0);
    CHECK(pl_parse_iso8601("2024-06-05T10:00:00Zjunk", &ms) != 0);
    CHECK(pl_parse_iso8601("", &ms) != 0);
}

static void utf8_wellformed(void)
{
    CHECK(pl_is_utf8("plain", 5));
    CHECK(pl_is_utf8("caf\xc3\xa9", 5));      /* é */
    CHECK(pl_is_utf8("\xe2\x82\xac", 3));     /* € */
    CHECK(pl_is_utf8("\xf0\x9f\x98\x80", 4)); /* 😀 */
    CHECK(!pl_is_utf8("A\xff", 2));
    CHECK(!pl_is_utf8("\xc3", 1));             /* truncated */
    CHECK(!pl_is_utf8("\xc0\xaf", 2));         /* overlong '/' */
    CHECK(!pl_is_utf8("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!pl_is_utf8("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    CHECK(!pl_is_utf8("a\0b", 3));             /* NUL */
}

static void json_depth(void)
{
    CHECK(pl_json_depth("{}", 2) == 1);
    CHECK(pl_json_depth("{\"a\":[1,{\"b\":[]}]}", 17) == 4);
    CHECK(pl_json_depth("{\"a\":\"[[[[{{{\"}", 14) == 1); /* brackets inside strings */
    CHECK(pl_json_depth("[\"\\\"[[\"]", 8) == 1);         /* escaped quote in a string */
    CHECK(pl_json_depth("1", 1) == 0);
}

static void checked_integers(void)
{
    int v;
    CHECK(pl_parse_int("42", 0, 100, -1, &v) == 0 && v == 42);
    CHECK(pl_parse_int("-1", 0, 100, 7, &v) != 0 && v == 7);
    CHECK(pl_parse_int("101", 0, 100, 7, &v) != 0);
    CHECK(pl_parse_int("4x", 0, 100, 7, &v) != 0 && v == 7);
    CHECK(pl_parse_int("", 0, 100, 7, &v) != 0);
    CHECK(pl_parse_int(NULL, 0, 100, 7, &v) != 0);
    CHECK(pl_parse_int("99999999999999999999", 0, 100, 7, &v) != 0);
}

static void uuid_canonical(void)
{
    char out[37];
    CHECK(pl_uuid_canon("3C90C3CC0D444B5088888DD25736052A", out) == 0);
    CHECK_STR(out, "3c90c3cc-0d44-4b50-8888-8dd25736052a");
    CHECK(pl_uuid_canon("3c90c3cc-0D44-4b50-8888-8dd25736052a", out) == 0);
    CHECK_STR(out, "3c90c3cc-0d44-4b50-8888-8dd25736052a");
    CHECK(pl_uuid_canon("3c90c3cc0d444b5088888dd25736052", out) != 0);     /* 31 digits */
    CHECK(pl_uuid_canon("3c90c3cc0d444b5088888dd25736052g", out) != 0);    /* not hex */
    CHECK(pl_uuid_canon("3c90c3cc-0d444b50-8888-8dd25736052a", out) != 0); /* dashes misplaced */
    CHECK(pl_uuid_canon("", out) != 0);
}

int main(void)
{
    RUN(uuid_forms);
    RUN(uuid_canonical);
    RUN(e164_numbers);
    RUN(http_urls);
    RUN(iso8601_variants);
    RUN(utf8_wellformed);
    RUN(json_depth);
    RUN(checked_integers);
    return check_summary();
}
