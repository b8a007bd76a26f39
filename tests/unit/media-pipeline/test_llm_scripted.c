/* The scripted LLM provider: rules, fallback, welcome, hangup, variables, word-by-word pacing
 * on the loop's timers, cancel, and config errors. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "error.h"
#include "llm.h"

typedef struct {
    char text[4096];
    size_t len;
    int ntokens;
    int done, errors, finished;
    long completion_tokens, prompt_tokens;
    int has_usage, hangup;
    char model[64], finish[32];
    long first_ms, last_ms;
    int cancel_after; /* cancel the stream from on_token after this many tokens */
    llm_stream *stream;
    llm_client *destroy_client; /* destroy this client from on_token */
} result;

static long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_token(void *user, const char *t, size_t n)
{
    result *r = user;
    if (r->len + n < sizeof(r->text)) {
        memcpy(r->text + r->len, t, n);
        r->len += n;
        r->text[r->len] = '\0';
    }
    if (r->ntokens++ == 0)
        r->first_ms = ms_now();
    r->last_ms = ms_now();
    if (r->cancel_after > 0 && r->ntokens == r->cancel_after) {
        llm_cancel(r->stream);
        r->finished = 1;
    }
    if (r->destroy_client != NULL) {
        llm_client_destroy(r->destroy_client);
        r->destroy_client = NULL;
        r->finished = 1;
    }
}

static void on_done(void *user, const llm_done *d)
{
    result *r = user;
    r->done++;
    r->finished = 1;
    r->completion_tokens = d->completion_tokens;
    r->prompt_tokens = d->prompt_tokens;
    r->has_usage = d->has_usage;
    r->hangup = d->hangup;
    snprintf(r->model, sizeof(r->model), "%s", d->model);
    snprintf(r->finish, sizeof(r->finish), "%s", d->finish_reason);
}

static void on_error(void *user, long status, const char *reason)
{
    result *r = user;
    (void)status;
    (void)reason;
    r->errors++;
    r->finished = 1;
}

static const llm_callbacks CB = {
    .on_token = on_token, .on_tool_call = NULL, .on_done = on_done, .on_error = on_error};

static llm_driver *drv;

static llm_client *make(const char *json, char *err, size_t errcap)
{
    cJSON *cfg = cJSON_Parse(json);
    llm_client *c = NULL;
    err[0] = '\0';
    int rc = llm_client_create(cfg, llm_driver_loop(drv), &c, err, errcap);
    cJSON_Delete(cfg);
    return rc == PL_OK ? c : NULL;
}

/* One completion after the caller said `said` (NULL: nothing yet). */
static void ask(llm_client *c, const char *said, const prompt_vars *vars, result *r)
{
    prompt_history h;
    prompt_history_init(&h, 0);
    if (said != NULL) {
        prompt_history_add(&h, PROMPT_ASSISTANT, "Welcome.", 8);
        prompt_history_add(&h, PROMPT_USER, said, strlen(said));
    }
    llm_request req = {.system = "ignored", .history = &h, .vars = vars};
    CHECK(llm_start(c, &req, &CB, r, &r->stream) == PL_OK);
    prompt_history_free(&h); /* the request is read only during llm_start */
    CHECK(r->ntokens == 0);  /* nothing is delivered from inside llm_start */
    CHECK(llm_driver_run(drv, &r->finished, 5000) == PL_OK);
}

static const char *RULES =
    "{\"provider\":\"scripted\",\"model\":\"parley-scripted\",\"scripted\":{"
    "\"rules\":["
    "{\"keywords\":[\"price\",\"how much\"],\"reply\":\"It costs ten dollars.\"},"
    "{\"match\":\"^(yes|yeah|sure)( |$)\",\"reply\":\"Great, {name}. Booked.\"},"
    "{\"keywords\":[\"hi\"],\"reply\":\"Hi there!\"},"
    "{\"keywords\":[\"bye\"],\"reply\":\"Goodbye!\",\"hangup\":true}],"
    "\"fallback\":\"Sorry, I heard {heard}.\","
    "\"welcome\":\"Hi {name}! Ask me about prices.\"}}";

static void test_rules_in_order(void)
{
    char err[256];
    llm_client *c = make(RULES, err, sizeof(err));
    CHECK(c != NULL);
    prompt_vars vs;
    prompt_vars_init(&vs);
    prompt_vars_set(&vs, "name", "Alice");

    result r = {0};
    ask(c, "So HOW MUCH is it?", &vs, &r);
    CHECK_STR(r.text, "It costs ten dollars.");
    CHECK(r.ntokens == 4); /* "It " "costs " "ten " "dollars." */
    CHECK(r.done == 1 && r.errors == 0 && r.hangup == 0);
    CHECK_STR(r.model, "scripted");
    CHECK_STR(r.finish, "stop");
    CHECK(r.has_usage && r.prompt_tokens == 0 && r.completion_tokens == 0);

    result r2 = {0};
    ask(c, "Yeah sure", &vs, &r2);
    CHECK_STR(r2.text, "Great, Alice. Booked.");

    result r3 = {0}; /* "hi" is a whole word only: not in "this" */
    ask(c, "this and that", &vs, &r3);
    CHECK_STR(r3.text, "Sorry, I heard this and that.");

    result r4 = {0};
    ask(c, "ok bye now", &vs, &r4);
    CHECK_STR(r4.text, "Goodbye!");
    CHECK(r4.hangup == 1);

    result r5 = {0}; /* nothing said yet: the welcome, with variables */
    ask(c, NULL, &vs, &r5);
    CHECK_STR(r5.text, "Hi Alice! Ask me about prices.");

    result r6 = {0}; /* the caller's words are never expanded */
    ask(c, "{name}", &vs, &r6);
    CHECK_STR(r6.text, "Sorry, I heard {name}.");

    prompt_vars_free(&vs);
    llm_client_destroy(c);
}

static void test_builtin_demo_rules(void)
{
    char err[256];
    llm_client *c =
        make("{\"provider\":\"scripted\",\"model\":\"parley-scripted\"}", err, sizeof(err));
    CHECK(c != NULL);
    result r = {0};
    ask(c, "hello there", NULL, &r);
    CHECK(strncmp(r.text, "Hello! I am the Parley demo agent.", 34) == 0);
    result r2 = {0};
    ask(c, "are you a robot", NULL, &r2);
    CHECK(strstr(r2.text, "not an AI") != NULL);
    result r3 = {0};
    ask(c, "Goodbye", NULL, &r3);
    CHECK(r3.hangup == 1);
    result r4 = {0};
    ask(c, "the weather is nice", NULL, &r4);
    CHECK(strncmp(r4.text, "You said: the weather is nice.", 30) == 0);
    result r5 = {0};
    ask(c, NULL, NULL, &r5);
    CHECK_STR(r5.text, "Hello! How can I help you?");
    llm_client_destroy(c);
}

static void test_token_delay_paces_words(void)
{
    char err[256];
    llm_client *c = make("{\"provider\":\"scripted\",\"model\":\"m\",\"scripted\":{\"rules\":[],"
                         "\"fallback\":\"one two three four five six\",\"token_delay_ms\":40}}",
                         err, sizeof(err));
    CHECK(c != NULL);
    result r = {0};
    long t0 = ms_now();
    ask(c, "anything", NULL, &r);
    CHECK(r.ntokens == 6);
    CHECK_STR(r.text, "one two three four five six");
    CHECK(r.last_ms - r.first_ms >= 5 * 40 - 5);
    CHECK(r.first_ms - t0 < 40); /* the first word comes at once */
    llm_client_destroy(c);
}

static void test_cancel_stops_everything(void)
{
    char err[256];
    llm_client *c = make("{\"provider\":\"scripted\",\"model\":\"m\",\"scripted\":{\"rules\":[],"
                         "\"fallback\":\"one two three four five six\",\"token_delay_ms\":10}}",
                         err, sizeof(err));
    /* From inside on_token. */
    result r = {0};
    r.cancel_after = 2;
    ask(c, "x", NULL, &r);
    llm_driver_run(drv, NULL, 150);
    CHECK(r.ntokens == 2 && r.done == 0 && r.errors == 0);

    /* From outside, before the first word. */
    result r2 = {0};
    prompt_history h;
    prompt_history_init(&h, 0);
    prompt_history_add(&h, PROMPT_USER, "x", 1);
    llm_request req = {.history = &h};
    CHECK(llm_start(c, &req, &CB, &r2, &r2.stream) == PL_OK);
    llm_cancel(r2.stream);
    llm_driver_run(drv, NULL, 150);
    CHECK(r2.ntokens == 0 && r2.done == 0 && r2.errors == 0);

    /* Between words. */
    result r3 = {0};
    CHECK(llm_start(c, &req, &CB, &r3, &r3.stream) == PL_OK);
    llm_driver_run(drv, NULL, 25);
    int seen = r3.ntokens;
    CHECK(seen >= 1 && seen < 6);
    llm_cancel(r3.stream);
    llm_driver_run(drv, NULL, 150);
    CHECK(r3.ntokens == seen && r3.done == 0);
    prompt_history_free(&h);
    llm_client_destroy(c);
}

static void test_destroy_with_streams_running(void)
{
    char err[256];
    const char *cfg = "{\"provider\":\"scripted\",\"model\":\"m\",\"scripted\":{\"rules\":[],"
                      "\"fallback\":\"one two three four\",\"token_delay_ms\":10}}";
    prompt_history h;
    prompt_history_init(&h, 0);
    prompt_history_add(&h, PROMPT_USER, "x", 1);
    llm_request req = {.history = &h};

    llm_client *c = make(cfg, err, sizeof(err));
    result a = {0}, b = {0};
    CHECK(llm_start(c, &req, &CB, &a, &a.stream) == PL_OK);
    CHECK(llm_start(c, &req, &CB, &b, &b.stream) == PL_OK);
    llm_client_destroy(c);
    llm_driver_run(drv, NULL, 100);
    CHECK(a.ntokens == 0 && b.ntokens == 0 && a.done == 0 && b.done == 0);

    /* From inside a callback of one of its streams. */
    c = make(cfg, err, sizeof(err));
    result d = {0}, e = {0};
    d.destroy_client = c;
    CHECK(llm_start(c, &req, &CB, &d, &d.stream) == PL_OK);
    CHECK(llm_start(c, &req, &CB, &e, &e.stream) == PL_OK);
    llm_driver_run(drv, NULL, 100);
    CHECK(d.ntokens == 1 && d.done == 0);
    CHECK(e.ntokens <= 1 && e.done == 0);
    prompt_history_free(&h);
}

static void test_config_errors(void)
{
    const struct {
        const char *cfg, *want;
    } cases[] = {
        {"{\"provider\":\"scripted\",\"scripted\":{\"rules\":[{\"match\":\"(\",\"reply\":\"x\"}]}}",
         "llm_config.scripted.rules[0].match: invalid regular expression"},
        {"{\"provider\":\"scripted\",\"scripted\":{\"rules\":[{\"keywords\":[\"a\"]}]}}",
         "llm_config.scripted.rules[0].reply: required"},
        {"{\"provider\":\"scripted\",\"scripted\":{\"rules\":[{\"reply\":\"x\"},"
         "{\"reply\":\"y\",\"match\":\"a\",\"keywords\":[\"b\"]}]}}",
         "llm_config.scripted.rules[0]: needs either match or keywords"},
        {"{\"provider\":\"scripted\",\"scripted\":{\"rules\":[{\"keywords\":[],\"reply\":\"x\"}]}}",
         "llm_config.scripted.rules[0].keywords: must be an array"},
        {"{\"provider\":\"scripted\",\"scripted\":{\"rules\":[{\"keywords\":[\"a\"],\"reply\":"
         "\"x\","
         "\"hangup\":\"yes\"}]}}",
         "llm_config.scripted.rules[0].hangup: must be true or false"},
        {"{\"provider\":\"scripted\",\"scripted\":{\"rules\":{}}}",
         "llm_config.scripted.rules: must be an array"},
        {"{\"provider\":\"scripted\",\"scripted\":{\"token_delay_ms\":-1}}",
         "llm_config.scripted.token_delay_ms: must be 0..5000"},
        {"{\"provider\":\"scripted\",\"scripted\":{\"fallback\":3}}",
         "llm_config.scripted.fallback: must be a string"},
        {"{\"provider\":\"scripted\",\"scripted\":[]}", "llm_config.scripted: must be an object"},
        {"{\"provider\":\"azure\",\"model\":\"x\"}",
         "llm_config.provider: no LLM provider 'azure' in this build"},
        {"{\"model\":\"x\"}", "llm_config.provider: no LLM provider '(missing)'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256];
        llm_client *c = make(cases[i].cfg, err, sizeof(err));
        CHECK(c == NULL);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            printf("    case %zu: got \"%s\"\n", i, err);
            CHECK(0);
        }
    }
    CHECK(llm_provider_for("scripted") == &llm_scripted_provider);
    CHECK(llm_provider_for("openai") == &llm_openai_provider);
    CHECK(llm_provider_for("groq") == &llm_openai_provider);
    CHECK(llm_provider_for("azure") == NULL);
    CHECK(llm_provider_for(NULL) == NULL);
}

int main(void)
{
    drv = llm_driver_new();
    RUN(test_rules_in_order);
    RUN(test_builtin_demo_rules);
    RUN(test_token_delay_paces_words);
    RUN(test_cancel_stops_everything);
    RUN(test_destroy_with_streams_running);
    RUN(test_config_errors);
    llm_driver_free(drv);
    return check_summary();
}
