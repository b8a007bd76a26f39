/* One call's conversation, owned by one loop (docs/media.md). Everything here runs on the
 * owning loop's thread unless it says otherwise. */
#ifndef MP_CALL_H
#define MP_CALL_H

#include <stdint.h>

#include "llm.h"
#include "mp.h"

typedef struct mp_call mp_call;

/* ---- what the loop offers its calls (loop.c) ---- */

/* A message posted to a loop from any thread: fn runs on the loop thread, which then owns p
 * (fn frees it if it was allocated). */
typedef struct mp_post {
    void (*fn)(mp_loop *l, struct mp_post *p);
    struct mp_post *next;
} mp_post;

void mp_loop_post(mp_loop *l, mp_post *p);
mp *mp_loop_app(mp_loop *l);
const llm_loop *mp_loop_llm(mp_loop *l);
/* The loop's live call with this serial, or NULL (it ended). */
mp_call *mp_loop_find(mp_loop *l, uint64_t serial);
/* Queues a record for the gateway at peer (sent with the loop's next flush, at most 20 ms). */
void mp_loop_send(mp_loop *l, const char *peer, const uint8_t call[16], uint16_t attempt,
                  pl_relay_kind kind, uint32_t seq, const void *payload, size_t len);
int64_t mp_loop_now(mp_loop *l); /* ms, monotonic, sampled once per loop turn */

/* ---- the call (call.c) ---- */

/* A START record arrived: a new call (it loads its agent on the job pool). NULL when it cannot
 * be taken (the gateway is told with a STOP record). */
mp_call *mp_call_new(mp_loop *l, uint64_t serial, const pl_relay_rec *start);
/* Any other record of this call. */
void mp_call_record(mp_call *c, const pl_relay_rec *r);
/* Every 20 ms: paces audio out and applies the hangup rules. */
void mp_call_tick(mp_call *c, int64_t now);
/* 1 once the call is over and nothing refers to it any more: the loop may free it. */
int mp_call_finished(mp_call *c);
void mp_call_free(mp_call *c);
/* SIGTERM with the drain deadline passed: end the call now (hang up as the agent). */
void mp_call_abort(mp_call *c, const char *reason);

int mp_call_matches(const mp_call *c, const uint8_t call[16], uint16_t attempt);
uint64_t mp_call_serial(const mp_call *c);

#endif
