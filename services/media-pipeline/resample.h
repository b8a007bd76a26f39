/* PCM16 mono sample-rate conversion (speexdsp, quality 3 "VoIP"), one state per audio stream.
 *
 * The state keeps the filter history between calls, so a stream must be fed through one
 * mp_resampler from its first to its last sample and never reset between frames. Nothing is
 * allocated after mp_resampler_init: the caller passes the output buffer, sized with
 * mp_resampler_out_max(). Not thread-safe; one stream is converted by one thread at a time.
 *
 * Timing: the output is aligned with the input (the filter's start-up delay is skipped), and
 * mp_resampler_drain() pushes out the last samples still inside the filter, so a finished stream
 * of N input samples yields round(N * out_rate / in_rate) output samples, exactly. */
#ifndef MP_RESAMPLE_H
#define MP_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define MP_RESAMPLE_QUALITY 3
#define MP_RATE_MIN         4000
#define MP_RATE_MAX         96000

typedef struct mp_resampler {
    void *st; /* SpeexResamplerState; NULL when in_rate == out_rate (plain copy) */
    int in_rate;
    int out_rate;
    uint64_t in_total;  /* input samples consumed since init */
    uint64_t out_total; /* output samples produced since init */
} mp_resampler;

/* Prepares r for in_rate -> out_rate (each within MP_RATE_MIN..MP_RATE_MAX). Returns 0,
 * PL_ERR_INVALID for a bad rate or PL_ERR_NOMEM. */
int mp_resampler_init(mp_resampler *r, int in_rate, int out_rate);

/* Releases the state; r may then be initialised again. Safe on a zeroed or released r. */
void mp_resampler_free(mp_resampler *r);

/* The most output samples one call with n input samples can produce (drain included). */
size_t mp_resampler_out_max(const mp_resampler *r, size_t n);

/* Converts all n input samples, writing at most out_cap samples to out and the count to *out_n.
 * out_cap >= mp_resampler_out_max(r, n) always suffices. Returns 0, or PL_ERR_TOOBIG if out
 * was too small (nothing is lost from the state's point of view only when it is big enough, so
 * size it properly). in may be NULL when n is 0. */
int mp_resampler_process(mp_resampler *r, const int16_t *in, size_t n, int16_t *out, size_t out_cap,
                         size_t *out_n);

/* Ends the stream: writes the samples still held in the filter so that the output totals
 * round(in_total * out_rate / in_rate). Same buffer rule as process (with n = 0). */
int mp_resampler_drain(mp_resampler *r, int16_t *out, size_t out_cap, size_t *out_n);

/* Forgets the history (a new, unrelated stream on the same rates). */
void mp_resampler_reset(mp_resampler *r);

#endif
