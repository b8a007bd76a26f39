/* pricing: the price table file, validated field by field (pricing.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pricing.h"

#define MAX_FILE  (1 << 20)
#define MAX_ITEMS 10000

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Keys starting with '_' are comments, everywhere. */
static int is_comment(const cJSON *item)
{
    return item->string != NULL && item->string[0] == '_';
}

static int price_value(const cJSON *v, const char *path, double *out, char *err, size_t cap)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
        return fail(err, cap, "%s: must be a number >= 0", path);
    *out = v->valuedouble;
    return 0;
}

/* Only the listed member names (and comments) are allowed in obj: a typo must not silently
 * price something at the default. */
static int only_members(const cJSON *obj, const char *path, const char *const *names, char *err,
                        size_t cap)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        if (is_comment(m))
            continue;
        int known = 0;
        for (const char *const *n = names; *n != NULL; n++)
            known |= strcmp(m->string, *n) == 0;
        if (!known)
            return fail(err, cap, "%s%s%s: unknown field", path, path[0] ? "." : "", m->string);
    }
    return 0;
}

/* section = {"<unit>": {"key": price | {"input", "output"}, ..., "default": ...}} */
static int parse_table(const cJSON *root, const char *section, const char *unit, int llm,
                       pp_price_table *t, char *err, size_t cap)
{
    char path[512];
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, section);
    if (!cJSON_IsObject(s))
        return fail(err, cap, "%s: required, an object", section);
    const char *const names[] = {unit, NULL};
    if (only_members(s, section, names, err, cap))
        return -1;
    const cJSON *tab = cJSON_GetObjectItemCaseSensitive(s, unit);
    snprintf(path, sizeof(path), "%s.%s", section, unit);
    if (!cJSON_IsObject(tab))
        return fail(err, cap, "%s: required, an object of prices by name", path);
    int n = cJSON_GetArraySize(tab);
    if (n > MAX_ITEMS)
        return fail(err, cap, "%s: more than %d entries", path, MAX_ITEMS);
    t->items = calloc((size_t)(n > 0 ? n : 1), sizeof(pp_price));
    if (t->items == NULL)
        return fail(err, cap, "out of memory");
    int has_default = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, tab)
    {
        if (is_comment(e))
            continue;
        snprintf(path, sizeof(path), "%s.%s.%s", section, unit, e->string);
        if (e->string[0] == '\0')
            return fail(err, cap, "%s.%s: an empty name", section, unit);
        pp_price *p = &t->items[t->n];
        if (llm) {
            if (!cJSON_IsObject(e))
                return fail(err, cap, "%s: must be an object {\"input\": cents, \"output\": cents}",
                            path);
            const char *const io[] = {"input", "output", NULL};
            if (only_members(e, path, io, err, cap))
                return -1;
            char sub[600];
            snprintf(sub, sizeof(sub), "%s.input", path);
            if (price_value(cJSON_GetObjectItemCaseSensitive(e, "input"), sub, &p->price, err, cap))
                return -1;
            snprintf(sub, sizeof(sub), "%s.output", path);
            if (price_value(cJSON_GetObjectItemCaseSensitive(e, "output"), sub, &p->output, err,
                            cap))
                return -1;
        } else if (price_value(e, path, &p->price, err, cap)) {
            return -1;
        }
        if ((p->key = strdup(e->string)) == NULL)
            return fail(err, cap, "out of memory");
        t->n++;
        has_default |= strcmp(e->string, "default") == 0;
    }
    if (!has_default)
        return fail(err, cap, "%s.%s.default: required (the price of names not listed)", section,
                    unit);
    return 0;
}

int pp_pricing_parse(const char *json, pp_pricing *out, char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (root == NULL) {
        size_t at = end != NULL ? (size_t)(end - json) : 0;
        return fail(err, cap, "not valid JSON (error near byte %zu)", at);
    }
    int rc = -1;
    const char *const top[] = {"currency",    "platform", "network", "transcriber",
                               "synthesizer", "llm",      NULL};
    const char *const platform_members[] = {"per_minute", NULL};
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(root, "currency");
    const cJSON *platform = cJSON_GetObjectItemCaseSensitive(root, "platform");
    if (!cJSON_IsObject(root)) {
        fail(err, cap, "the document must be a JSON object");
    } else if (only_members(root, "", top, err, cap)) {
    } else if (cur != NULL && (!cJSON_IsString(cur) || strlen(cur->valuestring) >= 16)) {
        fail(err, cap, "currency: must be a short string such as \"USD\"");
    } else if (!cJSON_IsObject(platform)) {
        fail(err, cap, "platform: required, an object {\"per_minute\": cents}");
    } else if (only_members(platform, "platform", platform_members, err, cap) ||
               price_value(cJSON_GetObjectItemCaseSensitive(platform, "per_minute"),
                           "platform.per_minute", &out->platform_per_minute, err, cap)) {
    } else if (parse_table(root, "network", "per_minute", 0, &out->network_per_minute, err, cap) ||
               parse_table(root, "transcriber", "per_second", 0, &out->transcriber_per_second, err,
                           cap) ||
               parse_table(root, "llm", "per_1k_tokens", 1, &out->llm_per_1k_tokens, err, cap) ||
               parse_table(root, "synthesizer", "per_character", 0, &out->synthesizer_per_char, err,
                           cap)) {
    } else {
        snprintf(out->currency, sizeof(out->currency), "%s", cur != NULL ? cur->valuestring : "");
        rc = 0;
    }
    cJSON_Delete(root);
    if (rc != 0)
        pp_pricing_free(out);
    return rc;
}

int pp_pricing_load(const char *path, pp_pricing *out, char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, cap, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(MAX_FILE + 1);
    size_t n = buf != NULL ? fread(buf, 1, MAX_FILE + 1, f) : 0;
    int bad_read = ferror(f);
    fclose(f);
    if (buf == NULL)
        return fail(err, cap, "out of memory");
    if (bad_read || n > MAX_FILE) {
        free(buf);
        return fail(err, cap, "%s: %s", path,
                    bad_read ? "read error" : "larger than 1 MiB; not a pricing file");
    }
    buf[n] = '\0';
    char why[480];
    int rc = pp_pricing_parse(buf, out, why, sizeof(why));
    free(buf);
    if (rc != 0)
        return fail(err, cap, "%s: %s", path, why);
    return 0;
}

static void table_free(pp_price_table *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->items[i].key);
    free(t->items);
    t->items = NULL;
    t->n = 0;
}

void pp_pricing_free(pp_pricing *p)
{
    table_free(&p->network_per_minute);
    table_free(&p->transcriber_per_second);
    table_free(&p->llm_per_1k_tokens);
    table_free(&p->synthesizer_per_char);
}

static const pp_price *lookup(const pp_price_table *t, const char *key)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->items[i].key, key) == 0)
            return &t->items[i];
    return NULL;
}

const pp_price *pp_price_find(const pp_price_table *t, const char *provider, const char *model)
{
    const pp_price *p = NULL;
    if (provider != NULL && provider[0] != '\0' && model != NULL && model[0] != '\0') {
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", provider, model);
        p = lookup(t, key);
    }
    if (p == NULL && provider != NULL && provider[0] != '\0')
        p = lookup(t, provider);
    return p != NULL ? p : lookup(t, "default");
}
