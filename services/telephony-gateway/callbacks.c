/* Carrier callbacks and answer documents (docs/dialing.md, "Gateway URLs").
 *
 * Every request is authenticated before anything changes: Twilio and Plivo by their signature
 * over the URL the carrier requested (PL_GATEWAY_PUBLIC_URL + path + query), Exotel by the
 * attempt's callback_token in the path. A forged or unsigned request gets 403, changes nothing
 * and is logged with the reason. An authentic callback is normalized by its carrier and applied
 * by lifecycle.c; a transition the state machine refuses is still a 200, so the carrier does not
 * retry what can never apply. Only a failure on our side (Postgres, Redis) answers 503, which
 * carriers retry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gateway.h"
#include "log.h"

#define MAX_PARAMS 200

static int reply_empty(pl_req *r)
{
    return pl_http_send(r, 200, "text/plain", "", 0, NULL);
}

/* The answer document: the media stream while the call is ours to serve, else a hang-up. */
static int reply_answer(pl_req *r, const gw_carrier *car, const gw_carrier_conf *conf,
                        const gw_attempt *a)
{
    char doc[2048];
    const char *token = a->status == PL_ST_IN_PROGRESS ? a->media_token : NULL;
    long n = car->answer(conf, token, doc, sizeof(doc));
    if (n < 0)
        return pl_http_error(r, 500, "answer document too large");
    if (token == NULL)
        PL_INFO("answer for %s while it is %s: hang-up document", a->execution_id,
                pl_status_name(a->status));
    return pl_http_send(r, 200, car->answer_ctype, doc, (size_t)n, NULL);
}

int gw_read_form(pl_req *r, pl_form *params)
{
    pl_form_init(params);
    char *body = NULL;
    size_t len = 0;
    int rc = pl_http_body(r, &body, &len);
    if (rc == PL_ERR_TOOBIG)
        return 413;
    if (rc != PL_OK)
        return 500;
    rc = pl_form_parse(params, body, len, MAX_PARAMS);
    free(body);
    return rc == PL_OK ? 0 : 400;
}

void gw_request_url(const pl_req *r, const gw_carrier_conf *conf, char *url, size_t cap)
{
    const char *path = r->ri->local_uri_raw != NULL ? r->ri->local_uri_raw : r->path;
    const char *query = r->ri->query_string;
    snprintf(url, cap, "%s%s%s%s", conf->public_url, path, query != NULL ? "?" : "",
             query != NULL ? query : "");
}

static int handle(pl_req *r, const gw_carrier *car, const char *kind)
{
    gw *g = r->app;
    const gw_carrier_conf *conf = &g->conf[car->id];
    const char *eid = r->params[0];
    long n = gw_str_long(r->params[1], -1);
    const char *path_token = car->id == GW_EXOTEL ? r->params[2] : NULL;
    pl_form params;
    int rc = gw_read_form(r, &params);
    if (rc != 0) {
        pl_form_free(&params);
        if (rc != 400)
            return rc == 413 ? 413 : pl_http_error(r, 500, "cannot read the request body");
        pl_metric_add(g->stats.cb_invalid[car->id], 1);
        PL_WARN("%s %s callback for %s/%s: body is not form data", car->name, kind, eid,
                r->params[1]);
        return pl_http_error(r, 400, "body is not application/x-www-form-urlencoded data");
    }
    char url[2048];
    gw_request_url(r, conf, url, sizeof(url));

    gw_callback cb = {
        .kind = kind,
        .url = url,
        .params = &params,
        .signature = car->id == GW_TWILIO ? pl_http_header(r, "X-Twilio-Signature")
                                          : pl_http_header(r, "X-Plivo-Signature-V3"),
        .nonce = pl_http_header(r, "X-Plivo-Signature-V3-Nonce"),
        .path_token = path_token,
        .expected_token = NULL,
    };
    char why[256] = "";
    gw_event ev;
    pl_dbconn *c = pl_db_acquire(g->db);
    gw_attempt a;
    memset(&a, 0, sizeof(a));
    int found, verified;
    if (car->id != GW_EXOTEL) {
        /* Signed over the URL and the body alone: authenticated before any database work, so a
         * callback that changes no status costs one round trip (load and record together). */
        verified = car->verify(conf, &cb, why, sizeof(why)) == 0;
        if (verified) {
            car->parse(&cb, &ev);
            if (ev.kind == GW_EV_NONE || ev.kind == GW_EV_INITIATED || ev.kind == GW_EV_RINGING ||
                ev.kind == GW_EV_ANSWERED)
                rc = n >= 0 ? gw_attempt_event(g, c, eid, (int)n, car->name, &ev, &a)
                            : PL_ERR_INVALID;
            else
                rc = n >= 0 ? gw_attempt_load(g, c, eid, (int)n, &a) : PL_ERR_INVALID;
        } else {
            rc = PL_ERR_INVALID;
        }
    } else {
        /* Exotel signs nothing: the attempt's callback_token authenticates the request. */
        rc = n >= 0 ? gw_attempt_load(g, c, eid, (int)n, &a) : PL_ERR_INVALID;
        if (rc != PL_ERR_DB) {
            cb.expected_token =
                rc == PL_OK && strcmp(a.provider, car->name) == 0 ? a.callback_token : NULL;
            verified = car->verify(conf, &cb, why, sizeof(why)) == 0;
            if (verified)
                car->parse(&cb, &ev);
        } else {
            verified = 0;
        }
    }
    if (rc == PL_ERR_DB) {
        pl_db_release(g->db, c);
        pl_form_free(&params);
        return pl_http_error(r, 503, "database unavailable; retry");
    }
    found = rc == PL_OK && strcmp(a.provider, car->name) == 0;
    int status;
    if (!verified) {
        pl_metric_add(g->stats.cb_forged[car->id], 1);
        PL_WARN("%s %s callback for %s/%s refused (403, nothing changed): %s", car->name, kind, eid,
                r->params[1], why);
        status = pl_http_error(r, 403, "signature verification failed");
    } else if (!found) {
        pl_metric_add(g->stats.cb_unknown[car->id], 1);
        PL_WARN("%s %s callback for unknown attempt %s/%s", car->name, kind, eid, r->params[1]);
        status = pl_http_error(r, 404, "no such %s call attempt", car->name);
    } else {
        int applied = 0;
        rc = gw_apply_event(g, c, &a, &ev, &applied);
        PL_DEBUG("%s %s callback for %s/%ld: %s (%s)", car->name, kind, eid, n, ev.carrier_status,
                 applied ? "applied" : "no change");
        if (rc != PL_OK) {
            status = pl_http_error(r, 503, "cannot apply the callback now; retry");
        } else {
            pl_metric_add(applied ? g->stats.cb_applied[car->id] : g->stats.cb_refused[car->id], 1);
            status = strcmp(kind, "answer") == 0 ? reply_answer(r, car, conf, &a) : reply_empty(r);
        }
    }
    if (rc == PL_OK || found)
        gw_attempt_clear(&a);
    pl_db_release(g->db, c);
    pl_form_free(&params);
    return status;
}

int gw_cb_twilio_status(pl_req *r)
{
    return handle(r, &gw_twilio, "status");
}

int gw_cb_twilio_answer(pl_req *r)
{
    return handle(r, &gw_twilio, "answer");
}

int gw_cb_plivo_answer(pl_req *r)
{
    return handle(r, &gw_plivo, "answer");
}

int gw_cb_plivo_ring(pl_req *r)
{
    return handle(r, &gw_plivo, "ring");
}

int gw_cb_plivo_hangup(pl_req *r)
{
    return handle(r, &gw_plivo, "hangup");
}

int gw_cb_exotel_status(pl_req *r)
{
    return handle(r, &gw_exotel, "status");
}
