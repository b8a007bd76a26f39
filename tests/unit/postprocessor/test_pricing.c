/* pricing: the shipped table loads; every malformed field is refused with its path named;
 * lookups fall back provider/model -> provider -> default. */
#include "check.h"
#include "pricing.h"

#define TABLE(net, llm)                                                                            \
    "{\"currency\":\"USD\",\"platform\":{\"per_minute\":2},"                                       \
    "\"network\":{\"per_minute\":" net "},"                                                        \
    "\"transcriber\":{\"per_second\":{\"deepgram/nova-2\":0.5,\"deepgram\":0.25,\"default\":1}},"  \
    "\"llm\":{\"per_1k_tokens\":" llm "},"                                                         \
    "\"synthesizer\":{\"per_character\":{\"default\":0.01}}}"

#define GOOD_NET "{\"twilio\":1.4,\"default\":1.5}"
#define GOOD_LLM                                                                                   \
    "{\"gpt-4o-mini\":{\"input\":0.015,\"output\":0.06},\"default\":{\"input\":1,\"output\":2}}"

static void shipped_table_loads(void)
{
    pp_pricing p;
    char err[512] = "";
    CHECK(pp_pricing_load("proto/pricing.json", &p, err, sizeof(err)) == 0);
    if (err[0])
        printf("    %s\n", err);
    CHECK_STR(p.currency, "USD");
    CHECK(p.platform_per_minute > 0);
    CHECK(pp_price_find(&p.network_per_minute, "twilio", NULL)->price > 0);
    CHECK(pp_price_find(&p.llm_per_1k_tokens, "scripted", NULL)->output == 0);
    pp_pricing_free(&p);
}

static void lookups_fall_back(void)
{
    pp_pricing p;
    char err[512];
    CHECK(pp_pricing_parse(TABLE(GOOD_NET, GOOD_LLM), &p, err, sizeof(err)) == 0);
    const pp_price_table *t = &p.transcriber_per_second;
    CHECK(pp_price_find(t, "deepgram", "nova-2")->price == 0.5);
    CHECK(pp_price_find(t, "deepgram", "nova-3")->price == 0.25);
    CHECK(pp_price_find(t, "deepgram", NULL)->price == 0.25);
    CHECK(pp_price_find(t, "local", "x")->price == 1);
    CHECK(pp_price_find(t, NULL, NULL)->price == 1);
    CHECK(pp_price_find(&p.llm_per_1k_tokens, "gpt-4o-mini", NULL)->output == 0.06);
    CHECK(pp_price_find(&p.llm_per_1k_tokens, "unknown-model", NULL)->output == 2);
    pp_pricing_free(&p);
}

static void expect_error(const char *json, const char *message)
{
    pp_pricing p;
    char err[512] = "";
    CHECK(pp_pricing_parse(json, &p, err, sizeof(err)) == -1);
    CHECK(strstr(err, message) != NULL);
    if (strstr(err, message) == NULL)
        printf("    got: %s\n    want: %s\n", err, message);
    CHECK(p.network_per_minute.items == NULL && p.llm_per_1k_tokens.n == 0);
}

static void bad_tables_name_the_field(void)
{
    expect_error("{", "not valid JSON");
    expect_error("[]", "must be a JSON object");
    expect_error(TABLE("{\"twilio\":1}", GOOD_LLM), "network.per_minute.default: required");
    expect_error(TABLE("{\"twilio\":-1,\"default\":1}", GOOD_LLM),
                 "network.per_minute.twilio: must be a number >= 0");
    expect_error(TABLE("{\"twilio\":\"1\",\"default\":1}", GOOD_LLM),
                 "network.per_minute.twilio: must be a number >= 0");
    expect_error(TABLE(GOOD_NET, "{\"gpt\":{\"input\":1},\"default\":{\"input\":1,\"output\":1}}"),
                 "llm.per_1k_tokens.gpt.output: must be a number >= 0");
    expect_error(TABLE(GOOD_NET, "{\"gpt\":1,\"default\":{\"input\":1,\"output\":1}}"),
                 "llm.per_1k_tokens.gpt: must be an object");
    expect_error(TABLE(GOOD_NET, "{\"gpt\":{\"input\":1,\"output\":1,\"cached\":1},"
                                 "\"default\":{\"input\":1,\"output\":1}}"),
                 "llm.per_1k_tokens.gpt.cached: unknown field");
    expect_error("{\"platfrom\":{}}", "platfrom: unknown field");
    expect_error("{\"platform\":{\"per_minute\":1}}", "network: required");
    expect_error("{\"platform\":{\"per_hour\":1}}", "platform.per_hour: unknown field");
    expect_error("{\"currency\":5,\"platform\":{\"per_minute\":1}}", "currency: must be");
    pp_pricing p;
    char err[512] = "";
    CHECK(pp_pricing_load("/nonexistent/pricing.json", &p, err, sizeof(err)) == -1);
    CHECK(strstr(err, "/nonexistent/pricing.json: cannot open") != NULL);
}

static void comments_are_ignored(void)
{
    pp_pricing p;
    char err[512];
    CHECK(pp_pricing_parse(TABLE("{\"_about\":\"cents\",\"default\":1}", GOOD_LLM), &p, err,
                           sizeof(err)) == 0);
    CHECK(p.network_per_minute.n == 1);
    pp_pricing_free(&p);
}

int main(void)
{
    RUN(shipped_table_loads);
    RUN(lookups_fall_back);
    RUN(bad_tables_name_the_field);
    RUN(comments_are_ignored);
    return check_summary();
}
