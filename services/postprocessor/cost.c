/* cost: arithmetic of cost.h. */
#include <math.h>

#include "cost.h"

/* Negative or non-finite usage (a corrupt figure) counts as none rather than as a credit. */
static double amount(double v)
{
    return isfinite(v) && v > 0 ? v : 0;
}

static int64_t hundredths(double cents)
{
    return (int64_t)llround(cents * 100.0);
}

void pp_cost_compute(const pp_pricing *p, const pp_cost_input *in, pp_cost *out)
{
    double minutes = amount(in->duration_s) / 60.0;
    out->platform = hundredths(p->platform_per_minute * minutes);
    out->network =
        hundredths(pp_price_find(&p->network_per_minute, in->carrier, NULL)->price * minutes);
    out->transcriber = hundredths(
        pp_price_find(&p->transcriber_per_second, in->transcriber_provider, in->transcriber_model)
            ->price *
        amount(in->transcriber_seconds));
    out->synthesizer = hundredths(
        pp_price_find(&p->synthesizer_per_char, in->synthesizer_provider, in->synthesizer_model)
            ->price *
        amount(in->synthesizer_characters));
    double llm = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, in->llm_model)
    {
        const pp_price *pr = pp_price_find(&p->llm_per_1k_tokens, m->string, NULL);
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(m, "input");
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(m, "output");
        if (cJSON_IsNumber(i))
            llm += amount(i->valuedouble) / 1000.0 * pr->price;
        if (cJSON_IsNumber(o))
            llm += amount(o->valuedouble) / 1000.0 * pr->output;
    }
    out->llm = hundredths(llm);
    out->total = out->platform + out->network + out->transcriber + out->synthesizer + out->llm;
}

double pp_cents(int64_t h)
{
    return (double)h / 100.0;
}

cJSON *pp_cost_json(const pp_cost *c)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddNumberToObject(o, "llm", pp_cents(c->llm));
    cJSON_AddNumberToObject(o, "network", pp_cents(c->network));
    cJSON_AddNumberToObject(o, "platform", pp_cents(c->platform));
    cJSON_AddNumberToObject(o, "synthesizer", pp_cents(c->synthesizer));
    cJSON_AddNumberToObject(o, "transcriber", pp_cents(c->transcriber));
    return o;
}
