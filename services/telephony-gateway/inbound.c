/* The carriers' inbound voice webhooks (docs/inbound.md, "Answering").
 *
 *   /inbound/twilio/{number id}            Twilio's "a call comes in" webhook (POST or GET)
 *   /inbound/plivo/{number id}             the Plivo application's answer URL
 *   /inbound/exotel/{number id}/{secret}   the Exotel Voicebot applet's dynamic URL (GET)
 *
 * One request per call: authenticate (Twilio and Plivo by their signature with the number's
 * credential set, Exotel by the URL's secret: a forged request gets 403 and changes nothing),
 * then number → agent → rules → caller variables → the concurrency lease → one inbound_accept
 * statement → the streaming answer. Every refusal is the carrier's reject answer, logged with
 * its reason and counted. After the answer the call is an outbound call's twin: the carrier's
 * media WebSocket brings the token (media.c) and the media-pipeline converses.
 *
 * Runs on a civetweb HTTP worker and blocks on Postgres, Redis and the agent's ingest source
 * (at most PL_INBOUND_INGEST_TIMEOUT_MS) — never on a thread that carries audio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "crypto.h"
#include "error.h"
#include "gateway.h"
#include "lease.h"
#include "log.h"

#define MAX_PARAMS 200

typedef struct {
    pl_req *r;
    gw *g;
    const gw_carrier *car;
    const gw_carrier_conf *conf; /* the number's credential set (the default before it is known) */
    gw_cred_buf cred;
    pl_form params; /* the webhook's parameters: the form body, or the query of a GET */
    gw_number num;
    int have_num;
    gw_inbound_call call;
} inbound;

/* The rules an agent sets for inbound calls (task_config of its conversation task). */
typedef struct {
    int limit; /* inbound_limit, -1 unlimited */
    int whitelisted;
    int disallow_unknown;
} rules;

static int reply(inbound *in, const char *media_token, int status)
{
    char doc[2048];
    long n = in->car->inbound_answer(in->conf, media_token, doc, sizeof(doc));
    if (n < 0)
        return pl_http_error(in->r, 500, "answer document too large");
    return pl_http_send(in->r, status, in->car->inbound_ctype, doc, (size_t)n, NULL);
}

static int reject(inbound *in, const char *reason, const char *detail)
{
    pl_metric_add(in->g->stats.in_rejected[in->car->id], 1);
    PL_WARN("%s inbound call %s from %s to %s rejected (%s): %s", in->car->name,
            in->call.call_id[0] != '\0' ? in->call.call_id : "?",
            in->call.from[0] != '\0' ? in->call.from : "?",
            in->call.to[0] != '\0' ? in->call.to : "?", reason, detail);
    return reply(in, NULL, in->car->inbound_reject_status);
}

/* The webhook's parameters: a GET carries them in its query, a POST in its form body. */
static int read_params(inbound *in)
{
    if (strcmp(in->r->ri->request_method, "GET") != 0)
        return gw_read_form(in->r, &in->params);
    pl_form_init(&in->params);
    const char *q = in->r->ri->query_string;
    if (q != NULL && pl_form_parse(&in->params, q, strlen(q), MAX_PARAMS) != PL_OK)
        return 400;
    return 0;
}

/* 0 when the request comes from the carrier, else -1 with the reason. */
static int authentic(inbound *in, char *why, size_t cap)
{
    char url[2048];
    gw_request_url(in->r, in->conf, url, sizeof(url));
    pl_form none;
    pl_form_init(&none);
    int get = strcmp(in->r->ri->request_method, "GET") == 0;
    /* A GET is signed over its URL alone (the parameters are in it). */
    gw_callback cb = {
        .kind = "inbound",
        .url = url,
        .params = get ? &none : &in->params,
        .signature = in->car->id == GW_TWILIO ? pl_http_header(in->r, "X-Twilio-Signature")
                                              : pl_http_header(in->r, "X-Plivo-Signature-V3"),
        .nonce = pl_http_header(in->r, "X-Plivo-Signature-V3-Nonce"),
        .path_token = in->car->id == GW_EXOTEL ? in->r->params[1] : NULL,
        .expected_token = in->have_num ? in->num.inbound_secret : NULL,
    };
    int rc = in->car->verify(in->conf, &cb, why, cap);
    pl_form_free(&none);
    if (rc != 0 && in->car->id == GW_EXOTEL && !in->have_num)
        snprintf(why, cap, "no such phone number");
    return rc;
}

static const cJSON *conversation_task(const cJSON *config)
{
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(config, "tasks"), *t;
    cJSON_ArrayForEach(t, tasks)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "task_type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "conversation") == 0)
            return cJSON_GetObjectItemCaseSensitive(t, "task_config");
    }
    return NULL;
}

static rules read_rules(const cJSON *config, const char *caller)
{
    rules ru = {.limit = -1};
    const cJSON *tc = conversation_task(config);
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(tc, "inbound_limit");
    if (cJSON_IsNumber(limit) && limit->valuedouble >= 0)
        ru.limit = limit->valuedouble > 1e6 ? 1000000 : (int)limit->valuedouble;
    ru.disallow_unknown =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tc, "disallow_unknown_numbers"));
    const cJSON *wl = cJSON_GetObjectItemCaseSensitive(tc, "whitelist_phone_numbers"), *w;
    cJSON_ArrayForEach(w, wl)
    {
        char e164[40];
        if (cJSON_IsString(w) && gw_e164(w->valuestring, NULL, e164, sizeof(e164)) == 0 &&
            strcmp(e164, caller) == 0)
            ru.whitelisted = 1;
    }
    return ru;
}

/* user_data of the call: what the ingest source said, then our own keys over it. */
static char *variables(const inbound *in, cJSON *ingested)
{
    cJSON *v = ingested != NULL ? ingested : cJSON_CreateObject();
    const char *keys[] = {"from_number", "caller_number", "to_number"};
    const char *vals[] = {in->call.from, in->call.from, in->call.to};
    for (int i = 0; i < 3; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(v, keys[i]);
        cJSON_AddStringToObject(v, keys[i], vals[i]);
    }
    char *s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return s;
}

static char *telephony(const inbound *in, int busy)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "provider", in->car->name);
    cJSON_AddStringToObject(t, "provider_call_id", in->call.call_id);
    cJSON_AddNumberToObject(t, "ring_duration", 0);
    if (busy) /* the media-pipeline says it and hangs up (docs/inbound.md, "Concurrency") */
        cJSON_AddStringToObject(t, "busy_message", in->g->cfg.busy_message);
    char *s = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    return s;
}

/* Takes a concurrency slot for the new execution: 1 granted, 0 over the cap. A Redis failure
 * lets the call through uncounted (logged): answering beats a cap we cannot read. */
static int take_slot(inbound *in, const char *execution_id)
{
    gw *g = in->g;
    int granted = 0;
    pl_rconn *rc = pl_redis_acquire(g->redis);
    int r = pl_lease_acquire(g->redis, rc, in->num.account_id, execution_id,
                             in->num.concurrency_max, g->cfg.lease_ttl_ms, &granted);
    pl_redis_release(g->redis, rc);
    if (r != PL_OK) {
        PL_WARN("inbound call %s: concurrency lease unavailable (%s); answering uncounted",
                in->call.call_id, pl_strerror(r));
        return 1;
    }
    return granted;
}

/* The accepted call: an execution, its lease, its event; the streaming answer. */
static int accept_call(inbound *in, const rules *ru, cJSON *ingested)
{
    gw *g = in->g;
    char eid[37], rnd[33], media_token[72], callback_token[33];
    if (pl_uuid_v4(eid) != PL_OK || pl_random_hex(rnd, 16) != PL_OK ||
        pl_random_hex(callback_token, 16) != PL_OK) {
        cJSON_Delete(ingested);
        return pl_http_error(in->r, 503, "no randomness; retry");
    }
    snprintf(media_token, sizeof(media_token), "%s.1.%s", eid, rnd);
    int granted = take_slot(in, eid);
    char *user_data = variables(in, ingested);
    char *tel = telephony(in, !granted);
    gw_in_request req = {.execution_id = eid,
                         .provider = in->car->name,
                         .call = &in->call,
                         .user_data = user_data,
                         .telephony = tel,
                         .media_token = media_token,
                         .callback_token = callback_token,
                         .limit = ru->whitelisted ? -1 : ru->limit};
    gw_in_result res;
    pl_dbconn *c = pl_db_acquire(g->db);
    int rc = gw_inbound_accept(g, c, &in->num, &req, &res);
    pl_db_release(g->db, c);
    free(user_data);
    free(tel);
    if (rc != PL_OK || res.outcome != GW_IN_CREATED)
        gw_release(g, eid, in->num.account_id); /* our slot, if any, serves no call */
    if (rc != PL_OK)
        return pl_http_error(in->r, 503, "database unavailable; retry");
    if (res.outcome == GW_IN_LIMIT) {
        char detail[96];
        snprintf(detail, sizeof(detail), "the caller has made its %d inbound call(s)", ru->limit);
        return reject(in, "inbound_limit", detail);
    }
    if (res.outcome == GW_IN_EXISTING) {
        pl_metric_add(g->stats.in_repeated[in->car->id], 1);
        PL_INFO("%s inbound call %s repeated: execution %s answered again", in->car->name,
                in->call.call_id, res.execution_id);
        return reply(in, res.media_token, 200);
    }
    if (granted)
        gw_live_add(g->live, eid, in->num.account_id, in->num.concurrency_max);
    pl_transition t = {.from = PL_ST__COUNT, .to = PL_ST_IN_PROGRESS, .event_id = res.event_id};
    gw_copy(t.execution_id, sizeof(t.execution_id), eid);
    gw_copy(t.account_id, sizeof(t.account_id), in->num.account_id);
    gw_copy(t.agent_id, sizeof(t.agent_id), in->num.agent_id);
    pl_state_publish(g->bus, &t);
    pl_metric_add(granted ? g->stats.in_accepted[in->car->id] : g->stats.in_busy[in->car->id], 1);
    PL_INFO("%s inbound call %s from %s to %s: execution %s%s", in->car->name, in->call.call_id,
            in->call.from, in->call.to, eid,
            granted ? "" : " (over the account's concurrency cap: busy message)");
    return reply(in, media_token, 200);
}

/* Number, agent and rules, then the acceptance. */
static int answer(inbound *in)
{
    if (!in->have_num)
        return reject(in, "unknown_number", "no live phone number has this id");
    if (strcmp(in->num.provider, in->car->name) != 0)
        return reject(in, "unknown_number", "the number is registered with another carrier");
    if (strcmp(in->num.phone_number, in->call.to) != 0)
        return reject(in, "unknown_number", "the call is for another number");
    if (in->num.agent_id[0] == '\0' || in->num.agent_config == NULL)
        return reject(in, "not_linked", "the number is linked to no agent");
    if (!in->num.funded)
        return reject(in, "balance_low", "the account's wallet is exhausted");
    cJSON *config = cJSON_Parse(in->num.agent_config);
    rules ru = read_rules(config, in->call.from);
    char why[512];
    cJSON *ingested = gw_ingest_fetch(in->g, config, in->call.from, why, sizeof(why));
    cJSON_Delete(config);
    if (ingested == NULL && why[0] != '\0')
        PL_WARN("%s inbound call %s: %s; going on without caller data", in->car->name,
                in->call.call_id, why);
    if (ingested == NULL && ru.disallow_unknown)
        return reject(in, "unknown_caller",
                      why[0] != '\0' ? why : "the agent has no ingest source to know callers by");
    return accept_call(in, &ru, ingested);
}

static int handle(pl_req *r, const gw_carrier *car)
{
    inbound in = {.r = r, .g = r->app, .car = car};
    in.conf = &in.g->conf[car->id];
    int rc = read_params(&in);
    if (rc != 0) {
        pl_form_free(&in.params);
        PL_WARN("%s inbound webhook: unreadable parameters (HTTP %d)", car->name, rc);
        return rc == 413 ? 413 : pl_http_error(r, rc, "parameters are not form data");
    }
    pl_dbconn *c = pl_db_acquire(in.g->db);
    rc = gw_number_load(in.g, c, r->params[0], &in.num);
    pl_db_release(in.g->db, c);
    if (rc == PL_ERR_DB) {
        pl_form_free(&in.params);
        return pl_http_error(r, 503, "database unavailable; retry");
    }
    in.have_num = rc == PL_OK;
    char why[256] = "";
    int status;
    if (in.have_num &&
        (in.conf = gw_credentials(in.g, car, in.num.credentials_ref, &in.cred)) == NULL) {
        in.conf = &in.g->conf[car->id];
        status = reject(&in, "no_credentials", "the number's credential set is not configured");
    } else if (authentic(&in, why, sizeof(why)) != 0) {
        pl_metric_add(in.g->stats.in_forged[car->id], 1);
        PL_WARN("%s inbound webhook for number %s refused (403, nothing changed): %s", car->name,
                r->params[0], why);
        status = pl_http_error(r, 403, "signature verification failed");
    } else if (car->inbound_parse(&in.params, &in.call, why, sizeof(why)) != 0) {
        status = reject(&in, "invalid_request", why);
    } else {
        status = answer(&in);
    }
    gw_number_clear(&in.num);
    pl_form_free(&in.params);
    return status;
}

int gw_cb_inbound_twilio(pl_req *r)
{
    return handle(r, &gw_twilio);
}

int gw_cb_inbound_plivo(pl_req *r)
{
    return handle(r, &gw_plivo);
}

int gw_cb_inbound_exotel(pl_req *r)
{
    return handle(r, &gw_exotel);
}

void gw_inbound_ended(gw *g, const char *execution_id, int attempt)
{
    gw_attempt a;
    pl_dbconn *c = pl_db_acquire(g->db);
    /* Loaded afresh: an agent hang-up recorded since the stream started keeps its hangup_by. */
    int rc = gw_attempt_load(g, c, execution_id, attempt, &a);
    if (rc == PL_OK) {
        if (a.status == PL_ST_IN_PROGRESS && !a.ended) {
            gw_event ev;
            gw_event_init(&ev);
            ev.kind = GW_EV_COMPLETED;
            gw_copy(ev.carrier_status, sizeof(ev.carrier_status), "completed");
            gw_copy(ev.hangup_by, sizeof(ev.hangup_by), "Caller");
            gw_copy(ev.hangup_reason, sizeof(ev.hangup_reason), "Caller hung up");
            if (gw_apply_event(g, c, &a, &ev, NULL) != PL_OK)
                PL_WARN("inbound call %s ended but not recorded (database); it stays in-progress",
                        execution_id);
        }
        gw_attempt_clear(&a);
    } else {
        PL_WARN("inbound call %s ended: attempt not loaded (%s)", execution_id, pl_strerror(rc));
    }
    pl_db_release(g->db, c);
}
