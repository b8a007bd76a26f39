/* The pricing table (proto/pricing.json or the operator's PL_PRICING_FILE): prices in cents,
 * loaded and validated once at start. Format: docs/postprocess.md.
 *
 * Lookups never fail: a key that is not listed falls back to the table's "default" entry, which
 * validation requires in every table. The structure is read-only after loading, so worker
 * threads share it without locks.
 */
#ifndef PP_PRICING_H
#define PP_PRICING_H

#include <stddef.h>

typedef struct {
    char *key;     /* "twilio", "deepgram/nova-2", "gpt-4o-mini", "default" ... */
    double price;  /* cents per unit of the table; for llm: per 1000 input tokens */
    double output; /* llm only: cents per 1000 output tokens */
} pp_price;

typedef struct {
    pp_price *items;
    int n;
} pp_price_table;

typedef struct {
    char currency[16];
    double platform_per_minute;
    pp_price_table network_per_minute;     /* by carrier */
    pp_price_table transcriber_per_second; /* by provider/model, provider */
    pp_price_table llm_per_1k_tokens;      /* by model */
    pp_price_table synthesizer_per_char;   /* by provider/model, provider */
} pp_pricing;

/* Parses and validates pricing JSON text. 0, or -1 with a message naming the field
 * ("llm.per_1k_tokens.gpt-4o.output: must be a number >= 0") in err; out is then empty. */
int pp_pricing_parse(const char *json, pp_pricing *out, char *err, size_t cap);

/* Reads `path` and parses it; messages start with the path. */
int pp_pricing_load(const char *path, pp_pricing *out, char *err, size_t cap);

void pp_pricing_free(pp_pricing *p);

/* The entry for "provider/model", else "provider", else "default"; either name may be NULL or
 * empty. For tables keyed by one name (network, llm) pass it as `provider` and model NULL. */
const pp_price *pp_price_find(const pp_price_table *t, const char *provider, const char *model);

#endif
