/* Playout: the audio, marks and clears a media-pipeline worker sends for one call, turned into
 * that call's carrier media messages (gw_carrier.media_out).
 *
 * Audio arrives as 20 ms PCM16 frames, several per relay message. Consecutive frames are staged
 * and leave as one carrier message (up to 200 ms of audio) when the relay message has been read
 * (gw_playout_flush): one WebSocket write per call per tick, not one per frame. A carrier with a
 * minimum chunk (Exotel: 3.2 KB) keeps a shorter tail staged until more audio arrives; before a
 * mark, and once no audio has come for GW_PLAYOUT_IDLE_MS, the tail is padded with silence to
 * the minimum, so the audio before a mark is all sent and a last word is never held back.
 *
 * Buffers are allocated once by gw_playout_init: nothing is allocated per frame. Not
 * thread-safe: the owner serializes calls (media.c holds the session's write lock).
 */
#ifndef GW_PLAYOUT_H
#define GW_PLAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "carrier.h"

#define GW_PLAYOUT_IDLE_MS 60 /* a staged tail this old with no audio after it is sent padded */

/* Sends one text message on the call's WebSocket: 0, or -1 when the socket is gone. */
typedef int (*gw_playout_write_fn)(void *ctx, const char *text, size_t len);

typedef struct {
    const gw_carrier *car;
    char stream_id[128];
    int rate;
    int16_t *pcm;     /* staged samples */
    size_t have, cap; /* cap: most samples in one message (200 ms, at least min) */
    size_t min;       /* fewest samples in one media message (car->media_out_min / 2) */
    char *msg;        /* the message being rendered */
    size_t msg_cap;
    int64_t last_audio;  /* when audio was last staged (ms) */
    uint64_t sent, lost; /* messages written / refused by the socket */
    gw_playout_write_fn write;
    void *ctx;
} gw_playout;

/* PL_OK, or PL_ERR_NOMEM. */
int gw_playout_init(gw_playout *p, const gw_carrier *car, const char *stream_id, int rate,
                    gw_playout_write_fn write, void *ctx);
void gw_playout_free(gw_playout *p);

/* Stages PCM16 LE audio (an odd last byte is ignored); full messages leave at once. */
void gw_playout_audio(gw_playout *p, const uint8_t *pcm16le, size_t bytes, int64_t now);
/* Sends what is staged: all of it when it reaches the carrier's minimum, or when pad is set
 * (padded with silence up to the minimum); otherwise the tail stays staged. */
void gw_playout_flush(gw_playout *p, int pad);
/* Sends the staged audio (padded) and then a mark of that name (len bytes, not NUL-terminated).
 * -1 when the name is longer than GW_MARK_MAX (nothing sent), else 0. */
int gw_playout_mark(gw_playout *p, const char *name, size_t len);
/* Drops the staged audio and tells the carrier to drop what it queued. */
void gw_playout_clear(gw_playout *p);
/* Sends a staged tail padded once no audio has come for GW_PLAYOUT_IDLE_MS (call it now and
 * then; the session calls it on each inbound message). */
void gw_playout_idle(gw_playout *p, int64_t now);

#endif
