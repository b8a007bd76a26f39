/* Turn detection on the caller's audio: VAD decisions smoothed into two events.
 *
 *   MP_EP_SPEECH_START  the caller has spoken for start_ms within the last 2 * start_ms: a turn
 *                       has begun (the pipeline uses it for barge-in: stop the agent's audio).
 *   MP_EP_SPEECH_END    after a start, hangover_ms of continuous non-speech: the turn is over
 *                       (hand the transcript to the LLM). hangover_ms plays the part of Bolna's
 *                       task_config.incremental_delay: the silence that ends a turn.
 *
 * One mp_endpoint per call, fed every frame of the caller's audio in order, on the audio loop;
 * a frame costs one VAD decision, nothing is allocated after init. */
#ifndef MP_ENDPOINT_H
#define MP_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "vad.h"

typedef enum {
    MP_EP_NONE = 0,
    MP_EP_SPEECH_START = 1,
    MP_EP_SPEECH_END = 2,
} mp_endpoint_event;

#define MP_EP_START_MS_DEFAULT    100
#define MP_EP_HANGOVER_MS_DEFAULT 700
#define MP_EP_WINDOW_MAX_FRAMES   64

typedef struct mp_endpoint_config {
    int frame_ms;    /* 10, 20 or 30: every frame fed has this length */
    int start_ms;    /* speech needed to start a turn; 0 means MP_EP_START_MS_DEFAULT */
    int hangover_ms; /* silence that ends a turn; 0 means MP_EP_HANGOVER_MS_DEFAULT */
    int vad_mode;    /* WebRTC aggressiveness 0..3; -1 means MP_VAD_MODE_DEFAULT */
    mp_vad_kind vad_kind;
} mp_endpoint_config;

typedef struct mp_endpoint {
    mp_endpoint_config cfg;
    mp_vad vad;
    int rate;
    size_t frame_samples;
    int window_frames;   /* frames looked at for a start: 2 * start_ms / frame_ms, at least 1 */
    uint64_t window;     /* one bit per recent frame, bit 0 the newest: 1 = speech */
    int in_speech;       /* between a START and its END */
    uint32_t silence_ms; /* continuous non-speech so far, while in_speech */
    uint64_t now_ms;     /* stream time at the end of the last frame fed */
    uint64_t start_ms;   /* stream time the current/last turn's speech began */
    uint64_t end_ms; /* stream time the last turn's speech ended (end of its last speech frame) */
} mp_endpoint;

/* Prepares an endpointer for frames of cfg->frame_ms at rate Hz. Returns 0 or PL_ERR_INVALID. */
int mp_endpoint_init(mp_endpoint *e, int rate, const mp_endpoint_config *cfg);

/* Feeds the next frame (exactly e->frame_samples samples) and returns the event it causes, if
 * any; e->start_ms / e->end_ms then tell when the speech began / ended. A bad frame length is
 * PL_ERR_INVALID (negative). */
int mp_endpoint_process(mp_endpoint *e, const int16_t *frame, size_t samples);

/* Forgets the current turn (stream time keeps running), e.g. when the call is put on hold. */
void mp_endpoint_reset(mp_endpoint *e);

void mp_endpoint_free(mp_endpoint *e);

#endif
