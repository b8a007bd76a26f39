/* cost: cost_breakdown and total_cost of one call from its usage and the pricing table.
 *
 * Every component is computed in cents, then rounded (half away from zero) to a hundredth of a
 * cent, and total_cost is the sum of the rounded components: the parts always add up to the
 * total exactly, and total/100 fits the wallet's numeric(14,4) without rounding again.
 *   platform    = platform.per_minute              * duration_s / 60
 *   network     = network.per_minute[carrier]      * duration_s / 60
 *   transcriber = transcriber.per_second[prov/mdl] * transcriber_seconds
 *   llm         = sum over models: input/1000 * per_1k.input + output/1000 * per_1k.output
 *   synthesizer = synthesizer.per_character[p/m]   * synthesizer_characters
 * Minutes are pro rata to the second (no rounding up to whole minutes).
 */
#ifndef PP_COST_H
#define PP_COST_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "pricing.h"

typedef struct {
    double duration_s;   /* conversation_duration: platform and network */
    const char *carrier; /* telephony provider, for network */
    const char *transcriber_provider, *transcriber_model;
    double transcriber_seconds;
    const char *synthesizer_provider, *synthesizer_model;
    double synthesizer_characters;
    const cJSON *llm_model; /* usage_breakdown.llm_model: {"<model>": {input, output}}, or NULL */
} pp_cost_input;

/* Amounts in hundredths of a cent. */
typedef struct {
    int64_t llm, network, platform, synthesizer, transcriber, total;
} pp_cost;

void pp_cost_compute(const pp_pricing *p, const pp_cost_input *in, pp_cost *out);

/* {"llm": cents, "network": ..., "platform": ..., "synthesizer": ..., "transcriber": ...}. */
cJSON *pp_cost_json(const pp_cost *c);

/* An amount in cents, as a JSON-ready double (1234 -> 12.34). */
double pp_cents(int64_t hundredths);

#endif
