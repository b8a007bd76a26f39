/* The `scripted` LLM provider: deterministic replies chosen by rules. It is NOT an AI: it
 * compares the caller's last words with a list of rules and speaks the first matching reply.
 * It exists for demos (the `make run` agent) and for tests that need a predictable agent.
 *
 * Configured in the agent's llm_config (provider "scripted"); every key is optional:
 *
 *   "llm_config": {"provider": "scripted", "model": "parley-scripted",
 *     "scripted": {
 *       "rules": [
 *         {"keywords": ["price", "how much"], "reply": "It costs ten dollars."},
 *         {"match": "^(yes|yeah|sure)( |$)", "reply": "Great, {name}. Booked."},
 *         {"keywords": ["bye"], "reply": "Goodbye!", "hangup": true}
 *       ],
 *       "fallback": "Sorry, I only know about prices.",
 *       "welcome": "Hi! Ask me about prices.",
 *       "token_delay_ms": 40
 *     }}
 *
 *   rules           tried in order against the caller's last turn; the first match wins.
 *     keywords      words or phrases; one matches when it appears as whole words, ignoring
 *                   ASCII case ("hi" matches "Hi there", not "this").
 *     match         a POSIX extended regular expression, case-insensitive (instead of
 *                   keywords; a rule has exactly one of the two).
 *     reply         the text spoken.
 *     hangup        true: the call ends once the reply is spoken (llm_done.hangup).
 *   fallback        the reply when no rule matches.
 *   welcome         the reply when asked before the caller said anything.
 *   token_delay_ms  pause between words, 0..5000 [0: every word on the next loop turn].
 *
 * Replies may use {heard} (the caller's last turn) and the call's variables ({name} from
 * user_data, {agent_id}, ... when the pipeline passes them in llm_request.vars). Without
 * `rules`, built-in demo rules answer greetings, "who are you" and goodbyes (with hangup); a
 * missing fallback or welcome takes the built-in one too.
 *
 * Replies stream word by word (each word with the spaces after it) through the same callbacks
 * as a real model, driven by the loop's timers; usage is 0 tokens, model "scripted".
 */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "llm.h"

#define SC_MAX_RULES    200
#define SC_MAX_REPLY    4000
#define SC_MAX_KEYWORDS 50

typedef struct {
    regex_t re;
    int has_re;
    char **keywords; /* lowercased */
    size_t nkeywords;
    char *reply;
    int hangup;
} sc_rule;

typedef struct sc_stream sc_stream;

typedef struct {
    llm_client base; /* first: the ops table */
    llm_loop loop;
    sc_rule *rules;
    size_t nrules;
    char *fallback, *welcome;
    long delay_ms;
    sc_stream *streams;
} sc_client;

typedef enum { SC_RUNNING, SC_FINISHED, SC_CANCELLED } sc_state;

struct sc_stream {
    llm_stream base;   /* first: the ops table */
    sc_client *client; /* NULL once the client is destroyed */
    sc_stream *prev, *next;
    llm_loop loop;
    llm_callbacks cb;
    void *user;
    char *reply;
    size_t pos, len;
    int hangup;
    long delay_ms;
    void *timer;
    sc_state state;
    int busy;
};

static const struct {
    const char *keywords[6];
    const char *reply;
    int hangup;
} builtin_rules[] = {
    {{"goodbye", "bye", "hang up", "that's all", "that is all", NULL},
     "Thank you for calling. Goodbye!",
     1},
    {{"who are you", "are you a robot", "are you human", "are you real", "are you an ai", NULL},
     "I am a scripted demo agent, not an AI. I answer from a short list of rules.",
     0},
    {{"hello", "hi", "hey", "good morning", "good afternoon", "good evening"},
     "Hello! I am the Parley demo agent. Say something and I will repeat it, or say goodbye "
     "to end the call.",
     0},
};

#define BUILTIN_FALLBACK                                                                           \
    "You said: {heard}. I am a scripted demo, so I can only repeat what I hear."
#define BUILTIN_WELCOME "Hello! How can I help you?"

/* ---- matching ---- */

static void lower_ascii(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* kw (lowercase) appears in text (lowercase) with no word character on either side. */
static int has_words(const char *text, const char *kw)
{
    size_t klen = strlen(kw);
    if (klen == 0)
        return 0;
    for (const char *p = strstr(text, kw); p != NULL; p = strstr(p + 1, kw)) {
        int left = p == text || !word_char(p[-1]) || !word_char(kw[0]);
        int right = !word_char(p[klen]) || !word_char(kw[klen - 1]);
        if (left && right)
            return 1;
    }
    return 0;
}

static int rule_matches(const sc_rule *r, const char *text, const char *lower)
{
    if (r->has_re)
        return regexec(&r->re, text, 0, NULL, 0) == 0;
    for (size_t i = 0; i < r->nkeywords; i++)
        if (has_words(lower, r->keywords[i]))
            return 1;
    return 0;
}

/* ---- streaming ---- */

static void free_stream(sc_stream *s)
{
    if (s->client != NULL) {
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            s->client->streams = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
    }
    free(s->reply);
    free(s);
}

/* The next word and the spaces after it. */
static size_t next_token(const sc_stream *s)
{
    size_t i = s->pos;
    while (i < s->len && s->reply[i] == ' ')
        i++;
    while (i < s->len && s->reply[i] != ' ')
        i++;
    while (i < s->len && s->reply[i] == ' ')
        i++;
    return i - s->pos;
}

static void on_tick(void *arg)
{
    sc_stream *s = arg;
    s->timer = NULL;
    s->busy++;
    do {
        size_t n = next_token(s);
        const char *tok = s->reply + s->pos;
        s->pos += n;
        if (n > 0 && s->cb.on_token != NULL)
            s->cb.on_token(s->user, tok, n);
    } while (s->state == SC_RUNNING && s->delay_ms == 0 && s->pos < s->len);
    if (s->state == SC_RUNNING && s->pos < s->len) {
        s->timer = s->loop.timer_start(s->loop.ctx, s->delay_ms, on_tick, s);
        if (s->timer == NULL) {
            s->state = SC_FINISHED;
            if (s->cb.on_error != NULL)
                s->cb.on_error(s->user, 0, "scripted: cannot start a timer");
        }
    } else if (s->state == SC_RUNNING) {
        s->state = SC_FINISHED;
        llm_done d = {.prompt_tokens = 0,
                      .completion_tokens = 0,
                      .has_usage = 1,
                      .model = "scripted",
                      .finish_reason = "stop",
                      .hangup = s->hangup};
        if (s->cb.on_done != NULL)
            s->cb.on_done(s->user, &d);
    }
    s->busy--;
    if (s->state != SC_RUNNING && s->timer == NULL)
        free_stream(s);
}

static void sc_cancel(llm_stream *base)
{
    sc_stream *s = (sc_stream *)base;
    if (s->state != SC_RUNNING)
        return;
    s->state = SC_CANCELLED;
    if (s->busy > 0)
        return; /* inside on_tick's callbacks: on_tick frees it */
    if (s->timer != NULL)
        s->loop.timer_stop(s->loop.ctx, s->timer);
    free_stream(s);
}

/* The reply to the request, filled; the caller frees it. */
static char *choose(const sc_client *c, const llm_request *req, int *hangup)
{
    const char *heard = NULL;
    for (size_t i = req->history != NULL ? req->history->n : 0; i > 0; i--)
        if (req->history->msgs[i - 1].role == PROMPT_USER) {
            heard = req->history->msgs[i - 1].content;
            break;
        }
    const char *reply = c->welcome;
    *hangup = 0;
    if (heard != NULL) {
        char *lower = strdup(heard);
        if (lower == NULL)
            return NULL;
        lower_ascii(lower);
        reply = c->fallback;
        for (size_t i = 0; i < c->nrules; i++)
            if (rule_matches(&c->rules[i], heard, lower)) {
                reply = c->rules[i].reply;
                *hangup = c->rules[i].hangup;
                break;
            }
        free(lower);
    }
    /* The call's variables first, then {heard}: the caller's words are never expanded. */
    char *filled = prompt_fill(reply, req->vars);
    if (filled == NULL)
        return NULL;
    prompt_vars own;
    prompt_vars_init(&own);
    char *out = NULL;
    if (prompt_vars_set(&own, "heard", heard != NULL ? heard : "") == PL_OK)
        out = prompt_fill(filled, &own);
    prompt_vars_free(&own);
    free(filled);
    return out;
}

static int sc_start(llm_client *base, const llm_request *req, const llm_callbacks *cb, void *user,
                    llm_stream **out)
{
    sc_client *c = (sc_client *)base;
    *out = NULL;
    if (req == NULL)
        return PL_ERR_INVALID;
    sc_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PL_ERR_NOMEM;
    s->base.ops = &llm_scripted_provider;
    s->loop = c->loop;
    s->delay_ms = c->delay_ms;
    if (cb != NULL)
        s->cb = *cb;
    s->user = user;
    if ((s->reply = choose(c, req, &s->hangup)) == NULL) {
        free(s);
        return PL_ERR_NOMEM;
    }
    s->len = strlen(s->reply);
    /* Nothing is delivered from inside llm_start: the first word comes on the next turn. */
    if ((s->timer = s->loop.timer_start(s->loop.ctx, 0, on_tick, s)) == NULL) {
        free_stream(s);
        return PL_ERR_NOMEM;
    }
    s->client = c;
    s->next = c->streams;
    if (c->streams != NULL)
        c->streams->prev = s;
    c->streams = s;
    *out = &s->base;
    return PL_OK;
}

/* ---- the client ---- */

static int bad(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && cap > 0)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return PL_ERR_INVALID;
}

static void free_rule(sc_rule *r)
{
    if (r->has_re)
        regfree(&r->re);
    for (size_t i = 0; i < r->nkeywords; i++)
        free(r->keywords[i]);
    free(r->keywords);
    free(r->reply);
}

static void sc_destroy(llm_client *base)
{
    sc_client *c = (sc_client *)base;
    if (c == NULL)
        return;
    sc_stream *s = c->streams;
    while (s != NULL) {
        sc_stream *next = s->next;
        s->client = NULL;
        sc_cancel(&s->base);
        s = next;
    }
    for (size_t i = 0; i < c->nrules; i++)
        free_rule(&c->rules[i]);
    free(c->rules);
    free(c->fallback);
    free(c->welcome);
    free(c);
}

static int add_keyword(sc_rule *r, const char *kw)
{
    char *k = strdup(kw);
    if (k == NULL)
        return PL_ERR_NOMEM;
    lower_ascii(k);
    r->keywords[r->nkeywords++] = k;
    return PL_OK;
}

static int parse_rule(const cJSON *j, size_t i, sc_rule *r, char *err, size_t cap)
{
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(j, "match");
    const cJSON *kws = cJSON_GetObjectItemCaseSensitive(j, "keywords");
    const cJSON *reply = cJSON_GetObjectItemCaseSensitive(j, "reply");
    const cJSON *hangup = cJSON_GetObjectItemCaseSensitive(j, "hangup");
    const char *at = "llm_config.scripted.rules";
    if (!cJSON_IsObject(j))
        return bad(err, cap, "%s[%zu]: must be an object", at, i);
    if (!cJSON_IsString(reply) || strlen(reply->valuestring) > SC_MAX_REPLY)
        return bad(err, cap, "%s[%zu].reply: required, a string of at most %d bytes", at, i,
                   SC_MAX_REPLY);
    if ((match != NULL) == (kws != NULL))
        return bad(err, cap, "%s[%zu]: needs either match or keywords", at, i);
    if (hangup != NULL && !cJSON_IsBool(hangup))
        return bad(err, cap, "%s[%zu].hangup: must be true or false", at, i);
    r->hangup = cJSON_IsTrue(hangup);
    if ((r->reply = strdup(reply->valuestring)) == NULL)
        return PL_ERR_NOMEM;
    if (match != NULL) {
        if (!cJSON_IsString(match) || match->valuestring[0] == '\0')
            return bad(err, cap, "%s[%zu].match: must be a non-empty string", at, i);
        int rc = regcomp(&r->re, match->valuestring, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &r->re, why, sizeof(why));
            return bad(err, cap, "%s[%zu].match: invalid regular expression: %s", at, i, why);
        }
        r->has_re = 1;
        return PL_OK;
    }
    int n = cJSON_GetArraySize(kws);
    if (!cJSON_IsArray(kws) || n < 1 || n > SC_MAX_KEYWORDS)
        return bad(err, cap, "%s[%zu].keywords: must be an array of 1 to %d strings", at, i,
                   SC_MAX_KEYWORDS);
    if ((r->keywords = calloc((size_t)n, sizeof(*r->keywords))) == NULL)
        return PL_ERR_NOMEM;
    const cJSON *k;
    cJSON_ArrayForEach(k, kws)
    {
        if (!cJSON_IsString(k) || k->valuestring[0] == '\0')
            return bad(err, cap, "%s[%zu].keywords: must hold non-empty strings", at, i);
        if (add_keyword(r, k->valuestring) != PL_OK)
            return PL_ERR_NOMEM;
    }
    return PL_OK;
}

static int builtin(sc_client *c)
{
    size_t n = sizeof(builtin_rules) / sizeof(builtin_rules[0]);
    if ((c->rules = calloc(n, sizeof(*c->rules))) == NULL)
        return PL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        sc_rule *r = &c->rules[c->nrules++];
        r->hangup = builtin_rules[i].hangup;
        r->keywords = calloc(6, sizeof(*r->keywords));
        r->reply = strdup(builtin_rules[i].reply);
        if (r->keywords == NULL || r->reply == NULL)
            return PL_ERR_NOMEM;
        for (size_t k = 0; k < 6 && builtin_rules[i].keywords[k] != NULL; k++)
            if (add_keyword(r, builtin_rules[i].keywords[k]) != PL_OK)
                return PL_ERR_NOMEM;
    }
    return PL_OK;
}

static int text_opt(const cJSON *sc, const char *key, const char *def, char **out, char *err,
                    size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sc, key);
    if (v != NULL && !cJSON_IsNull(v) &&
        (!cJSON_IsString(v) || strlen(v->valuestring) > SC_MAX_REPLY))
        return bad(err, cap, "llm_config.scripted.%s: must be a string of at most %d bytes", key,
                   SC_MAX_REPLY);
    *out = strdup(cJSON_IsString(v) ? v->valuestring : def);
    return *out != NULL ? PL_OK : PL_ERR_NOMEM;
}

static int configure(sc_client *c, const cJSON *sc, char *err, size_t cap)
{
    if (sc != NULL && !cJSON_IsNull(sc) && !cJSON_IsObject(sc))
        return bad(err, cap, "llm_config.scripted: must be an object");
    int rc = text_opt(sc, "fallback", BUILTIN_FALLBACK, &c->fallback, err, cap);
    if (rc == PL_OK)
        rc = text_opt(sc, "welcome", BUILTIN_WELCOME, &c->welcome, err, cap);
    if (rc != PL_OK)
        return rc;
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(sc, "token_delay_ms");
    if (delay != NULL && !cJSON_IsNull(delay)) {
        if (!cJSON_IsNumber(delay) || delay->valuedouble < 0 || delay->valuedouble > 5000)
            return bad(err, cap, "llm_config.scripted.token_delay_ms: must be 0..5000");
        c->delay_ms = (long)delay->valuedouble;
    }
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(sc, "rules");
    if (rules == NULL || cJSON_IsNull(rules))
        return builtin(c);
    int n = cJSON_GetArraySize(rules);
    if (!cJSON_IsArray(rules) || n > SC_MAX_RULES)
        return bad(err, cap, "llm_config.scripted.rules: must be an array of at most %d rules",
                   SC_MAX_RULES);
    if (n > 0 && (c->rules = calloc((size_t)n, sizeof(*c->rules))) == NULL)
        return PL_ERR_NOMEM;
    const cJSON *r;
    cJSON_ArrayForEach(r, rules)
    {
        /* Counted before parsing, so a half-built rule is released with the client. */
        sc_rule *rule = &c->rules[c->nrules++];
        if ((rc = parse_rule(r, c->nrules - 1, rule, err, cap)) != PL_OK)
            return rc;
    }
    return PL_OK;
}

static int sc_create(const cJSON *cfg, const llm_loop *loop, llm_client **out, char *err,
                     size_t errcap)
{
    *out = NULL;
    if (!cJSON_IsObject(cfg))
        return bad(err, errcap, "llm_config: must be an object");
    if (loop == NULL || loop->timer_start == NULL || loop->timer_stop == NULL)
        return bad(err, errcap, "scripted: the loop has no timers");
    sc_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PL_ERR_NOMEM;
    c->base.ops = &llm_scripted_provider;
    c->loop = *loop;
    int rc = configure(c, cJSON_GetObjectItemCaseSensitive(cfg, "scripted"), err, errcap);
    if (rc != PL_OK) {
        sc_destroy(&c->base);
        return rc;
    }
    *out = &c->base;
    return PL_OK;
}

const llm_provider llm_scripted_provider = {
    .name = "scripted",
    .create = sc_create,
    .destroy = sc_destroy,
    .start = sc_start,
    .cancel = sc_cancel,
};
