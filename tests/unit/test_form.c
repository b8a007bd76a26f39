/* form: urlencoded parse/encode, percent decoding limits; sign: the Twilio and Plivo V3
 * signature functions against the test vectors of reference/providers.md §1-2. */
#include "check.h"
#include "error.h"
#include "form.h"
#include "sign.h"

static void parse_and_get(void)
{
    pl_form f;
    pl_form_init(&f);
    const char *body = "CallSid=CA1&Caller=%2B12349013030&Name=a+b%20c&Empty=&Flag&&E=1&E=2";
    CHECK(pl_form_parse(&f, body, strlen(body), 100) == PL_OK);
    CHECK(f.n == 7);
    CHECK_STR(pl_form_get(&f, "CallSid"), "CA1");
    CHECK_STR(pl_form_get(&f, "Caller"), "+12349013030");
    CHECK_STR(pl_form_get(&f, "Name"), "a b c");
    CHECK_STR(pl_form_get(&f, "Empty"), "");
    CHECK_STR(pl_form_get(&f, "Flag"), "");
    CHECK_STR(pl_form_get(&f, "E"), "1");
    CHECK(pl_form_get(&f, "Missing") == NULL);
    pl_form_free(&f);
    CHECK(f.n == 0);
}

static void parse_errors(void)
{
    pl_form f;
    pl_form_init(&f);
    CHECK(pl_form_parse(&f, "a=%zz", 5, 10) == PL_ERR_INVALID);
    pl_form_free(&f);
    CHECK(pl_form_parse(&f, "a=%4", 4, 10) == PL_ERR_INVALID);
    pl_form_free(&f);
    CHECK(pl_form_parse(&f, "a=%00", 5, 10) == PL_ERR_INVALID);
    pl_form_free(&f);
    CHECK(pl_form_parse(&f, "a=1&b=2&c=3", 11, 2) == PL_ERR_TOOBIG);
    pl_form_free(&f);
}

static void encode_round_trip(void)
{
    pl_form f, g;
    pl_form_init(&f);
    pl_form_init(&g);
    pl_form_add(&f, "To", "+15005550006");
    pl_form_add(&f, "Url", "http://127.0.0.1:8090/twilio/answer/x/0?a=b&c=d");
    pl_form_add(&f, "StatusCallbackEvent", "initiated");
    pl_form_add(&f, "StatusCallbackEvent", "ringing");
    pl_form_add(&f, "Note", "a b~é");
    char *s = pl_form_encode(&f);
    CHECK(s != NULL);
    CHECK(strstr(s, "To=%2B15005550006&") == s);
    CHECK(strstr(s, "Note=a%20b~%C3%A9") != NULL);
    CHECK(pl_form_parse(&g, s, strlen(s), 100) == PL_OK);
    CHECK(g.n == 5);
    for (int i = 0; i < g.n && i < f.n; i++) {
        CHECK_STR(g.items[i].key, f.items[i].key);
        CHECK_STR(g.items[i].val, f.items[i].val);
    }
    free(s);
    pl_form_free(&f);
    pl_form_free(&g);
    char out[8];
    CHECK(pl_url_encode("abc", out, sizeof(out)) == 3);
    CHECK(pl_url_encode("a b c", out, sizeof(out)) == -1); /* "a%20b%20c" needs 10 */
}

static void sort_pairs(void)
{
    pl_form f;
    pl_form_init(&f);
    pl_form_add(&f, "b", "2");
    pl_form_add(&f, "a", "9");
    pl_form_add(&f, "a", "1");
    pl_form_sort(&f);
    CHECK_STR(f.items[0].key, "a");
    CHECK_STR(f.items[0].val, "1");
    CHECK_STR(f.items[1].val, "9");
    CHECK_STR(f.items[2].key, "b");
    pl_form_free(&f);
}

static void twilio_params(pl_form *f)
{
    pl_form_init(f);
    pl_form_add(f, "CallSid", "CA1234567890ABCDE");
    pl_form_add(f, "Caller", "+12349013030");
    pl_form_add(f, "Digits", "1234");
    pl_form_add(f, "From", "+12349013030");
    pl_form_add(f, "To", "+18005551212");
}

static void twilio_vector(void)
{
    pl_form f;
    twilio_params(&f);
    char sig[PL_SIG_CAP];
    const char *url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    CHECK(pl_sign_twilio("12345", url, &f, sig) == PL_OK);
    CHECK_STR(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    CHECK(pl_verify_twilio("12345", url, &f, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    /* Twilio may have signed with the default port spelled out, or we may see it: both pass. */
    CHECK(pl_verify_twilio("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &f,
                           "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    CHECK(pl_sign_twilio("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &f, sig) ==
          PL_OK);
    CHECK(pl_verify_twilio("12345", url, &f, sig));
    /* Wrong token, changed param, changed URL, empty or missing signature: refused. */
    CHECK(!pl_verify_twilio("12346", url, &f, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    CHECK(!pl_verify_twilio("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", &f,
                            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    CHECK(!pl_verify_twilio("12345", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", &f,
                            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    CHECK(!pl_verify_twilio("12345", url, &f, ""));
    CHECK(!pl_verify_twilio("12345", url, &f, NULL));
    pl_form_add(&f, "CallStatus", "completed");
    CHECK(!pl_verify_twilio("12345", url, &f, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    pl_form_free(&f);
}

static void twilio_param_order_does_not_matter(void)
{
    pl_form a, b;
    pl_form_init(&a);
    pl_form_init(&b);
    pl_form_add(&a, "To", "+18005551212");
    pl_form_add(&a, "CallSid", "CA1234567890ABCDE");
    pl_form_add(&a, "Digits", "1234");
    pl_form_add(&a, "From", "+12349013030");
    pl_form_add(&a, "Caller", "+12349013030");
    twilio_params(&b);
    char sa[PL_SIG_CAP], sb[PL_SIG_CAP];
    pl_sign_twilio("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &a, sa);
    pl_sign_twilio("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &b, sb);
    CHECK_STR(sa, sb);
    pl_form_free(&a);
    pl_form_free(&b);
}

static void plivo_vector(void)
{
    pl_form f;
    pl_form_init(&f);
    pl_form_add(&f, "From", "14155550100");
    pl_form_add(&f, "CallUUID", "abc");
    char sig[PL_SIG_CAP];
    CHECK(pl_sign_plivo_v3("MYTOKEN", "https://example.com/answer/", &f, "12345", sig) == PL_OK);
    CHECK_STR(sig, "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA=");
    CHECK(pl_verify_plivo_v3("MYTOKEN", "https://example.com/answer/", &f, "12345",
                             "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="));
    /* Several signatures in the header: any one matching passes. */
    CHECK(pl_verify_plivo_v3("MYTOKEN", "https://example.com/answer/", &f, "12345",
                             "AAAA, QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="));
    CHECK(pl_verify_plivo_v3("MYTOKEN", "https://example.com:443/answer/", &f, "12345",
                             "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="));
    CHECK(!pl_verify_plivo_v3("MYTOKEN", "https://example.com/answer/", &f, "12346",
                              "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="));
    CHECK(!pl_verify_plivo_v3("OTHER", "https://example.com/answer/", &f, "12345",
                              "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="));
    CHECK(!pl_verify_plivo_v3("MYTOKEN", "https://example.com/answer/", &f, NULL,
                              "QG9pb3obHhjArnDrOd2tWKf4rAcpB/KjF6sl21j21oA="));
    CHECK(!pl_verify_plivo_v3("MYTOKEN", "https://example.com/answer/", &f, "12345", ""));
    pl_form_free(&f);
}

/* With a query string the base gets "?k=v&..." (sorted) and "." before the POST params; without
 * POST params nothing follows the query. Expected values computed independently in Python
 * (hmac/hashlib) from the messages the plivo-python algorithm builds. */
static void plivo_query_forms(void)
{
    pl_form f, none;
    pl_form_init(&f);
    pl_form_init(&none);
    pl_form_add(&f, "CallUUID", "abc");
    char a[PL_SIG_CAP], b[PL_SIG_CAP];
    CHECK(pl_sign_plivo_v3("MYTOKEN", "https://example.com/answer/?b=2&a=1", &f, "n", a) == 0);
    CHECK(pl_sign_plivo_v3("MYTOKEN", "https://example.com/answer/?a=1&b=2", &f, "n", b) == 0);
    CHECK_STR(a, b);
    CHECK_STR(a, "NszOis3BAJZjGG8yXQPQ8Mn4pbyTSIVj8RhDZcOPAO8=");
    CHECK(pl_sign_plivo_v3("MYTOKEN", "https://example.com/answer/?a=1", &none, "n", a) == 0);
    CHECK_STR(a, "LWRtYyIVq5jaw50DUwOTYxwA7rnrZf8gqbKuhHaSpbY=");
    CHECK(pl_sign_plivo_v3("MYTOKEN", "https://example.com/answer/", &none, "n", a) == 0);
    CHECK_STR(a, "lNI4eLYnpQ9L2uq90chbFGT4SSxTtQwfGBESKu8fMHk=");
    pl_form_free(&f);
}

int main(void)
{
    RUN(parse_and_get);
    RUN(parse_errors);
    RUN(encode_round_trip);
    RUN(sort_pairs);
    RUN(twilio_vector);
    RUN(twilio_param_order_does_not_matter);
    RUN(plivo_vector);
    RUN(plivo_query_forms);
    return check_summary();
}
