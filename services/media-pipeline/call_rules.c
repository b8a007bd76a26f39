/* call_rules: how the agent ends a call (call_internal.h). The hangup rules are checked every
 * tick while LIVE; ending goes HANGING: the hangup message plays, then HANGUP goes to the gateway,
 * which then ends the call's media. A provider failure ends the call the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call_internal.h"
#include "log.h"

#define STOP_WAIT_MS  10000
#define FALLBACK_TEXT "Sorry, something went wrong on our side. Please call again later. Goodbye."

static const char *agent_side(const mp_call *c)
{
    /* hangup_by names the party: for an outbound call the agent placed it (Caller). */
    return c->agent.inbound ? "Callee" : "Caller";
}

void call_send_hangup(mp_call *c)
{
    if (c->hangup_sent)
        return;
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"by\":\"%s\",\"reason\":\"%s\"}", agent_side(c),
             c->hangup_reason);
    call_send_rec(c, PL_RELAY_HANGUP, payload, strlen(payload));
    c->hangup_sent = 1;
    c->deadline = c->now + STOP_WAIT_MS;
    pl_metric_add(c->app->stats.hangups, 1);
    PL_INFO("%s: hanging up (%s)", c->id, c->hangup_reason);
}

/* The agent ends the call: says message (if any) and hangs up once it was heard. */
void call_begin_hangup(mp_call *c, const char *reason, const char *message)
{
    if (c->phase != LIVE)
        return;
    c->phase = HANGING;
    snprintf(c->hangup_reason, sizeof(c->hangup_reason), "%s", reason);
    if (c->ls != NULL) {
        llm_cancel(c->ls);
        c->ls = NULL;
    }
    if (message != NULL && message[0] != '\0' && c->tts != NULL) {
        call_say_turn(c, message, CH_HANGUP);
        c->deadline = c->now + HANGUP_WAIT_MS;
        return;
    }
    call_send_hangup(c);
}

/* A provider failed: never silent, never stuck. */
void call_fail(mp_call *c, const char *reason, const char *detail)
{
    PL_WARN("%s: %s: %s", c->id, reason, detail);
    if (c->error_message == NULL) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s: %s", reason, detail);
        c->error_message = strdup(buf);
    }
    if (c->phase == LOADING) {
        char payload[600];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "reason", c->error_message ? c->error_message : reason);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        snprintf(payload, sizeof(payload), "%s", s != NULL ? s : "{}");
        cJSON_free(s);
        call_send_rec(c, PL_RELAY_STOP, payload, strlen(payload));
        call_end(c, reason);
        return;
    }
    if (strcmp(reason, "synthesizer_error") == 0 || c->tts == NULL) {
        if (c->phase == LIVE || c->phase == HANGING) {
            c->phase = HANGING;
            snprintf(c->hangup_reason, sizeof(c->hangup_reason), "%s", reason);
            call_clear_speech(c);
            call_send_hangup(c);
        }
        return;
    }
    if (c->phase == HANGING) { /* already ending: just make sure it ends */
        snprintf(c->hangup_reason, sizeof(c->hangup_reason), "%s", reason);
        return;
    }
    call_clear_speech(c);
    call_close_reply(c, 1);
    call_begin_hangup(c, reason, FALLBACK_TEXT);
}

void call_apply_rules(mp_call *c)
{
    mp_agent *a = &c->agent;
    if (c->now - c->t0 >= a->call_terminate_ms) {
        call_begin_hangup(c, "call_terminate", a->hangup_message);
        return;
    }
    if (c->hangup_after_reply && !call_speaking(c)) {
        call_begin_hangup(c, "llm_prompted_hangup", a->hangup_message);
        return;
    }
    if (call_speaking(c) || c->caller_speaking || c->awaiting_final)
        return;
    int64_t silent = c->now - c->last_activity;
    if (a->check_online && !c->online_asked && silent >= a->online_after_ms &&
        a->online_after_ms < a->silence_hangup_ms) {
        c->online_asked = 1;
        call_say_turn(c, a->online_message, CH_ONLINE);
        return;
    }
    if (silent >= a->silence_hangup_ms)
        call_begin_hangup(c, "inactivity_timeout", a->hangup_message);
}
