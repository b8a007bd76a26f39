/* Where a media session's audio goes: the seam between the carrier side (media.c) and the
 * media-pipeline relay (relay.c, gw_relay_sink).
 *
 * A sink receives, on the session's WebSocket thread and in order: open once, then whole 20 ms
 * PCM16 mono frames at info->rate and the stream's events, then close once. It must not block
 * for long (it runs on the carrier's read path).
 */
#ifndef GW_SINK_H
#define GW_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "carrier.h"

typedef struct {
    const char *execution_id;
    int attempt;
    const char *carrier;     /* "twilio" */
    const char *call_id;     /* the carrier's call id */
    const char *stream_id;   /* the carrier's stream id */
    int rate;                /* samples per second of every frame */
    const char *worker_addr; /* the pipeline worker chosen for the call */
} gw_media_info;

typedef struct {
    /* ctx: the sink's owner, as given to gw_media_start. 0 and *self set, or non-zero to
     * refuse the session (the call is then ended). info is valid during the call only. */
    int (*open)(void *ctx, const gw_media_info *info, void **self);
    /* One 20 ms frame: rate / 50 samples. */
    void (*frame)(void *self, const int16_t *pcm, size_t samples);
    /* GW_MM_MARK (arg: mark name), GW_MM_DTMF (arg: digit), GW_MM_CLEARED, GW_MM_STOP. */
    void (*event)(void *self, gw_mm_kind kind, const char *arg);
    void (*close)(void *self);
} gw_sink_ops;

#endif
