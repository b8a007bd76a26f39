/* cost and usage: the arithmetic of cost.h against hand-computed figures, rounding to a
 * hundredth of a cent, and usage defaults. */
#include "check.h"
#include "cost.h"
#include "usage.h"

static const char *TABLE =
    "{\"platform\":{\"per_minute\":2},"
    "\"network\":{\"per_minute\":{\"twilio\":1.4,\"default\":1.5}},"
    "\"transcriber\":{\"per_second\":{\"deepgram/nova-2\":0.0072,\"local\":0.01,\"default\":1}},"
    "\"llm\":{\"per_1k_tokens\":{\"gpt-4o-mini\":{\"input\":0.015,\"output\":0.06},"
    "\"default\":{\"input\":1,\"output\":2}}},"
    "\"synthesizer\":{\"per_character\":{\"elevenlabs\":0.018,\"default\":0.002}}}";

static void components_and_total(void)
{
    pp_pricing p;
    char err[256];
    CHECK(pp_pricing_parse(TABLE, &p, err, sizeof(err)) == 0);
    cJSON *llm = cJSON_Parse("{\"gpt-4o-mini\":{\"input\":1826,\"output\":48},"
                             "\"mystery\":{\"input\":500,\"output\":10}}");
    pp_cost_input in = {.duration_s = 42.5,
                        .carrier = "twilio",
                        .transcriber_provider = "deepgram",
                        .transcriber_model = "nova-2",
                        .transcriber_seconds = 40,
                        .synthesizer_provider = "elevenlabs",
                        .synthesizer_model = "eleven_turbo_v2_5",
                        .synthesizer_characters = 412,
                        .llm_model = llm};
    pp_cost c;
    pp_cost_compute(&p, &in, &c);
    /* platform 2 * 42.5/60 = 1.41666.. -> 1.42; network 1.4 * 42.5/60 = 0.99166.. -> 0.99 */
    CHECK(c.platform == 142);
    CHECK(c.network == 99);
    CHECK(c.transcriber == 29);  /* 0.0072 * 40 = 0.288 */
    CHECK(c.synthesizer == 742); /* 0.018 * 412 = 7.416 */
    /* 1.826*0.015 + 0.048*0.06 + 0.5*1 + 0.01*2 = 0.02739 + 0.00288 + 0.5 + 0.02 = 0.55027 */
    CHECK(c.llm == 55);
    CHECK(c.total == 142 + 99 + 29 + 742 + 55);
    cJSON *j = pp_cost_json(&c);
    char *s = cJSON_PrintUnformatted(j);
    CHECK_STR(s, "{\"llm\":0.55,\"network\":0.99,\"platform\":1.42,\"synthesizer\":7.42,"
                 "\"transcriber\":0.29}");
    free(s);
    cJSON_Delete(j);

    /* unknown carrier and providers take the defaults; nonsense figures count as none */
    pp_cost_input odd = {.duration_s = 60,
                         .carrier = "sip-trunk",
                         .transcriber_provider = "x",
                         .transcriber_seconds = -5,
                         .synthesizer_characters = 1000};
    pp_cost_compute(&p, &odd, &c);
    CHECK(c.network == 150 && c.platform == 200 && c.transcriber == 0 && c.synthesizer == 200);
    CHECK(c.llm == 0 && c.total == 550);
    cJSON_Delete(llm);
    pp_pricing_free(&p);
}

static void usage_defaults(void)
{
    pp_agent a;
    memset(&a, 0, sizeof(a));
    a.transcriber_model = "nova-2";
    cJSON *u = pp_usage_normalize(NULL, &a);
    char *s = cJSON_PrintUnformatted(u);
    CHECK_STR(s, "{\"synthesizer_characters\":0,\"synthesizer_model\":null,"
                 "\"transcriber_duration\":0,\"transcriber_model\":\"nova-2\",\"llm_model\":{},"
                 "\"llm_tokens\":0}");
    free(s);
    cJSON_Delete(u);
    /* the pipeline's object is kept, extra members included; llm_tokens filled in */
    u = pp_usage_normalize("{\"synthesizer_characters\":12,\"synthesizer_model\":\"kal16\","
                           "\"synthesizer_provider\":\"local\",\"transcriber_duration\":3.5,"
                           "\"llm_model\":{\"m\":{\"input\":10,\"output\":5}}}",
                           &a);
    CHECK(cJSON_GetObjectItem(u, "llm_tokens")->valuedouble == 15);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(u, "synthesizer_provider")), "local");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(u, "transcriber_model")), "nova-2");
    pp_cost_input in = {0};
    a.synthesizer_provider = "elevenlabs";
    pp_usage_cost_input(u, &a, &in);
    CHECK_STR(in.synthesizer_provider, "local"); /* what the pipeline used wins */
    CHECK(in.synthesizer_characters == 12 && in.transcriber_seconds == 3.5);
    cJSON_Delete(u);
    u = pp_usage_normalize("not json", &a);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(u, "llm_model")));
    cJSON_Delete(u);
}

/* The post-call tasks' tokens join the conversation's: same model summed, a new model added,
 * llm_tokens kept the total; a non-object model entry is replaced. */
static void task_tokens_join_the_usage(void)
{
    pp_agent a;
    memset(&a, 0, sizeof(a));
    cJSON *u = pp_usage_normalize("{\"llm_model\":{\"m\":{\"input\":10,\"output\":5},"
                                  "\"bad\":\"x\"}}",
                                  &a);
    pp_usage_add_llm(u, "m", 100, 7);
    pp_usage_add_llm(u, "n", 20, 3);
    pp_usage_add_llm(u, "bad", 1, 1);
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(u, "llm_model"));
    CHECK_STR(s, "{\"m\":{\"input\":110,\"output\":12},\"n\":{\"input\":20,\"output\":3},"
                 "\"bad\":{\"input\":1,\"output\":1}}");
    free(s);
    CHECK(cJSON_GetObjectItem(u, "llm_tokens")->valuedouble == 15 + 107 + 23 + 2);
    cJSON_Delete(u);
}

int main(void)
{
    RUN(components_and_total);
    RUN(usage_defaults);
    RUN(task_tokens_join_the_usage);
    return check_summary();
}
