/* The media relay between telephony-gateway and media-pipeline (docs/media.md).
 *
 * Wire: one nng message carries a sequence of records for any number of calls, so that each
 * side sends one message per 20 ms tick per peer, not one per call per frame (toolchain.md:
 * per-frame messages cost more CPU than a call's real work). A record, little-endian:
 *
 *   call     16  execution id (the uuid's 16 bytes)
 *   attempt   2  attempt number
 *   kind      1  pl_relay_kind
 *   flags     1  0 (reserved; receivers ignore it)
 *   seq       4  per-call, per-direction sequence number of the record
 *   len       2  payload bytes
 *   payload len  see pl_relay_kind
 *
 * Transport: every process that takes part opens one pl_relay endpoint: an nng PULL socket
 * listening on its own address, plus one PUSH socket per peer it sends to, dialled on first use
 * and kept: nng redials a peer that restarts, and while it is away up to 128 messages wait in the
 * PUSH queue; beyond that sends are dropped and counted. The gateway tells the worker
 * where to answer in the START record's JSON ("reply"); the worker's address comes from the
 * Redis registry <prefix>pipeline:workers.
 *
 * Threads: pl_relay_send may be called from any thread. The receive callback runs on an nng
 * thread, one message at a time, in arrival order; it must not block for long (copy or route
 * the records and return).
 */
#ifndef PL_RELAY_H
#define PL_RELAY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PL_RELAY_AUDIO = 1,  /* PCM16 LE mono samples at the call's rate (whole 20 ms frames) */
    PL_RELAY_MARK = 2,   /* name (UTF-8, no NUL): pipeline->gw "send this mark after the audio
                            before it"; gw->pipeline "the carrier played up to this mark" */
    PL_RELAY_CLEAR = 3,  /* pipeline->gw: drop queued audio (barge-in); gw->pipeline: the
                            carrier confirmed the clear. No payload */
    PL_RELAY_DTMF = 4,   /* gw->pipeline: one digit */
    PL_RELAY_START = 5,  /* gw->pipeline: JSON {"rate","carrier","call_id","stream_id","reply"} */
    PL_RELAY_STOP = 6,   /* gw->pipeline: the call's media ended (caller hung up or carrier
                            closed). pipeline->gw: the worker cannot serve the call (JSON
                            {"reason"}); the gateway ends it with that error */
    PL_RELAY_HANGUP = 7, /* pipeline->gw: end the call now. JSON {"by","reason"} */
} pl_relay_kind;

#define PL_RELAY_HEADER  26
#define PL_RELAY_MAX_LEN 65535 /* payload bytes of one record */

typedef struct {
    uint8_t call[16];
    uint16_t attempt;
    uint8_t kind;
    uint8_t flags;
    uint32_t seq;
    uint16_t len;
    const uint8_t *payload; /* points into the message being read */
} pl_relay_rec;

/* A growing message being assembled. Reusable: reset keeps the allocation. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
} pl_relay_batch;

/* Appends one record; 0, or PL_ERR_TOOBIG (len over PL_RELAY_MAX_LEN) / PL_ERR_NOMEM. */
int pl_relay_put(pl_relay_batch *b, const uint8_t call[16], uint16_t attempt, pl_relay_kind kind,
                 uint32_t seq, const void *payload, size_t len);
static inline void pl_relay_reset(pl_relay_batch *b)
{
    b->len = 0;
}
void pl_relay_batch_free(pl_relay_batch *b);

/* Reads the record at *off of msg (len bytes) into r and advances *off. 1: a record; 0: the end;
 * PL_ERR_INVALID: a truncated record (the rest of the message is unusable). */
int pl_relay_next(const uint8_t *msg, size_t len, size_t *off, pl_relay_rec *r);

/* The 16 bytes of a textual uuid ("0190...-..."): 0, or PL_ERR_INVALID. */
int pl_relay_uuid_parse(const char *text, uint8_t out[16]);
/* The textual form (37 bytes with the NUL) of 16 uuid bytes. */
void pl_relay_uuid_format(const uint8_t in[16], char out[37]);

/* ---- transport ---- */

typedef struct pl_relay pl_relay;
/* Called on an nng thread with one received message; msg is valid during the call only. */
typedef void (*pl_relay_recv_fn)(void *user, const uint8_t *msg, size_t len);

/* Listens on listen_url ("tcp://0.0.0.0:8093", "tcp://127.0.0.1:0" picks a port). NULL on error
 * (logged). advertise_host, if set, replaces the host in pl_relay_url. */
pl_relay *pl_relay_open(const char *listen_url, const char *advertise_host, pl_relay_recv_fn fn,
                        void *user);
/* The address peers send to, e.g. "tcp://127.0.0.1:40211". */
const char *pl_relay_url(const pl_relay *r);
/* Sends one message to the endpoint at peer_url without blocking: 0 (delivered or queued),
 * PL_ERR_IO when it could not be queued (the peer is away or slow and its queue is full: the
 * message is dropped, and counted), PL_ERR_NOMEM. */
int pl_relay_send(pl_relay *r, const char *peer_url, const void *msg, size_t len);
/* Messages dropped by pl_relay_send so far. */
uint64_t pl_relay_dropped(const pl_relay *r);
/* Stops receiving (no callback runs after it returns) and closes every socket. */
void pl_relay_close(pl_relay *r);

#endif
