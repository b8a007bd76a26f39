/* Endpointing over VAD decisions; see endpoint.h for the contract. */
#include "endpoint.h"

#include <string.h>

#include "error.h"

int mp_endpoint_init(mp_endpoint *e, int rate, const mp_endpoint_config *cfg)
{
    memset(e, 0, sizeof(*e));
    mp_endpoint_config c = *cfg;
    if (c.frame_ms != 10 && c.frame_ms != 20 && c.frame_ms != 30)
        return PL_ERR_INVALID;
    if (c.start_ms == 0)
        c.start_ms = MP_EP_START_MS_DEFAULT;
    if (c.hangover_ms == 0)
        c.hangover_ms = MP_EP_HANGOVER_MS_DEFAULT;
    if (c.vad_mode < 0)
        c.vad_mode = MP_VAD_MODE_DEFAULT;
    if (c.start_ms < 0 || c.hangover_ms < 0 || c.start_ms > 2000 || c.hangover_ms > 60000 ||
        rate % (1000 / c.frame_ms) != 0)
        return PL_ERR_INVALID;
    int rc = mp_vad_init(&e->vad, c.vad_kind, rate, c.vad_mode);
    if (rc != PL_OK)
        return rc;
    e->cfg = c;
    e->rate = rate;
    e->frame_samples = (size_t)rate * (size_t)c.frame_ms / 1000;
    int frames = 2 * c.start_ms / c.frame_ms;
    if (frames < 1)
        frames = 1;
    if (frames > MP_EP_WINDOW_MAX_FRAMES)
        frames = MP_EP_WINDOW_MAX_FRAMES;
    e->window_frames = frames;
    return PL_OK;
}

void mp_endpoint_free(mp_endpoint *e)
{
    mp_vad_free(&e->vad);
}

void mp_endpoint_reset(mp_endpoint *e)
{
    e->window = 0;
    e->in_speech = 0;
    e->silence_ms = 0;
}

int mp_endpoint_process(mp_endpoint *e, const int16_t *frame, size_t samples)
{
    if (samples != e->frame_samples)
        return PL_ERR_INVALID;
    int speech = mp_vad_process(&e->vad, frame, samples);
    if (speech < 0)
        return speech;
    uint64_t mask = e->window_frames >= 64 ? ~0ull : ((1ull << e->window_frames) - 1);
    e->window = ((e->window << 1) | (uint64_t)speech) & mask;
    e->now_ms += (uint64_t)e->cfg.frame_ms;

    if (!e->in_speech) {
        int voiced_ms = __builtin_popcountll(e->window) * e->cfg.frame_ms;
        if (voiced_ms < e->cfg.start_ms || !speech)
            return MP_EP_NONE;
        /* The turn began at the oldest speech frame still in the window. */
        int oldest = 63 - __builtin_clzll(e->window);
        e->start_ms = e->now_ms - (uint64_t)(oldest + 1) * (uint64_t)e->cfg.frame_ms;
        e->in_speech = 1;
        e->silence_ms = 0;
        return MP_EP_SPEECH_START;
    }
    if (speech) {
        e->silence_ms = 0;
        return MP_EP_NONE;
    }
    e->silence_ms += (uint32_t)e->cfg.frame_ms;
    if (e->silence_ms < (uint32_t)e->cfg.hangover_ms)
        return MP_EP_NONE;
    e->in_speech = 0;
    e->end_ms = e->now_ms - e->silence_ms;
    e->window = 0;
    e->silence_ms = 0;
    return MP_EP_SPEECH_END;
}
