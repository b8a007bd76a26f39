/* outq: the agent's audio on its way to the gateway. The synthesizer's workers append audio and
 * an end marker per spoken text; the call's loop takes whole 20 ms frames at real-time pace and
 * learns, from the markers, when each text's audio has all been sent (and then sends a mark).
 * Thread-safe: one mutex, held only for copies. The buffer grows by doubling and is reused, so
 * the steady state allocates nothing. */
#ifndef MP_OUTQ_H
#define MP_OUTQ_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define MP_OUTQ_MARKERS 256

typedef struct {
    uint32_t id;
    int err;
    uint64_t pos; /* sample position just past the text's audio */
} mp_outq_marker;

typedef struct {
    pthread_mutex_t mu;
    size_t frame; /* samples per 20 ms frame */
    int16_t *buf;
    size_t rd, wr, cap; /* samples */
    uint64_t written, taken;
    mp_outq_marker markers[MP_OUTQ_MARKERS];
    unsigned mk_head, mk_tail;
    uint64_t dropped; /* samples refused (out of memory) */
} mp_outq;

void mp_outq_init(mp_outq *q, size_t frame_samples);
void mp_outq_free(mp_outq *q);
/* Synthesizer side (any thread). */
void mp_outq_audio(mp_outq *q, const int16_t *pcm, size_t n);
/* Text id is complete: pads its audio to a whole frame and records its end. */
void mp_outq_done(mp_outq *q, uint32_t id, int err);
/* Loop side: copies the next whole frame into out; 1, or 0 when none is ready. */
int mp_outq_take(mp_outq *q, int16_t *out);
/* Loop side: pops a marker whose audio has all been taken; 1, or 0 when none. */
int mp_outq_marker_pop(mp_outq *q, mp_outq_marker *m);
/* Barge-in: drops all queued audio and markers. */
void mp_outq_clear(mp_outq *q);

#endif
