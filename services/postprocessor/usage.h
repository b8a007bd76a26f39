/* usage: the usage_breakdown stored at completion, and the priced quantities read from it. */
#ifndef PP_USAGE_H
#define PP_USAGE_H

#include <cjson/cJSON.h>

#include "agent.h"
#include "cost.h"

/* The media-pipeline's usage object as written (members it adds, such as the providers, are
 * kept), with each member Bolna documents present: synthesizer_characters 0,
 * synthesizer_model and transcriber_model from the agent (else null), transcriber_duration 0,
 * llm_model {} and llm_tokens the sum of llm_model's input and output. usage_json may be NULL
 * or invalid (the pipeline wrote nothing): every member then takes its default. Never NULL
 * unless out of memory. */
cJSON *pp_usage_normalize(const char *usage_json, const pp_agent *a);

/* Adds tokens the post-call tasks consumed with `model` to a normalized usage object:
 * llm_model[model].input/.output (created when absent) and llm_tokens, so they are priced with
 * the conversation's. */
void pp_usage_add_llm(cJSON *usage, const char *model, double input, double output);

/* Fills the usage part of a cost input from a normalized usage object (which must outlive it):
 * providers from usage (transcriber_provider, synthesizer_provider) else the agent. */
void pp_usage_cost_input(const cJSON *usage, const pp_agent *a, pp_cost_input *in);

#endif
