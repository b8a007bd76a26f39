/* VAD: WebRTC with an energy fallback; see vad.h for the contract. */
#include "vad.h"

#include <math.h>
#include <string.h>

#include "error.h"

/* libwebrtc-audio-processing 0.3 exports the C VAD but installs no header for it; these are the
 * prototypes of webrtc/common_audio/vad/include/webrtc_vad.h in that release (`nm -D` shows
 * WebRtcVad_Create/Init/set_mode/Process/Free; Create takes no argument and returns the
 * instance). */
typedef struct WebRtcVadInst VadInst;
VadInst *WebRtcVad_Create(void);
void WebRtcVad_Free(VadInst *handle);
int WebRtcVad_Init(VadInst *handle);
int WebRtcVad_set_mode(VadInst *handle, int mode);
int WebRtcVad_Process(VadInst *handle, int fs, const int16_t *audio_frame, size_t frame_length);

/* How far above the noise floor a frame must be: WebRTC has judged the frame already, the energy
 * detector has only this to go on. */
#define WEBRTC_MARGIN_DB 6.0f
#define ENERGY_MARGIN_DB 9.0f

static int webrtc_rate(int rate)
{
    return rate == 8000 || rate == 16000 || rate == 32000 || rate == 48000;
}

int mp_vad_init(mp_vad *v, mp_vad_kind kind, int rate, int mode)
{
    memset(v, 0, sizeof(*v));
    if (rate < 4000 || rate > 96000 || mode < 0 || mode > 3)
        return PL_ERR_INVALID;
    v->rate = rate;
    v->mode = mode;
    v->threshold_db = MP_VAD_ENERGY_DBFS;
    v->kind = MP_VAD_ENERGY;
    if (kind == MP_VAD_WEBRTC && webrtc_rate(rate)) {
        VadInst *inst = WebRtcVad_Create();
        if (inst != NULL && WebRtcVad_Init(inst) == 0 && WebRtcVad_set_mode(inst, mode) == 0) {
            v->webrtc = inst;
            v->kind = MP_VAD_WEBRTC;
        } else if (inst != NULL) {
            WebRtcVad_Free(inst);
        }
    }
    return PL_OK;
}

void mp_vad_free(mp_vad *v)
{
    if (v->webrtc != NULL)
        WebRtcVad_Free(v->webrtc);
    memset(v, 0, sizeof(*v));
}

float mp_vad_frame_dbfs(const int16_t *frame, size_t samples)
{
    if (samples == 0)
        return -96.0f;
    double sum = 0;
    for (size_t i = 0; i < samples; i++)
        sum += (double)frame[i] * frame[i];
    double rms = sqrt(sum / (double)samples);
    if (rms < 0.5)
        return -96.0f;
    return (float)(20.0 * log10(rms / 32768.0));
}

/* Records the frame's level and tells whether it passes the level gate. */
static int loud_enough(mp_vad *v, const int16_t *frame, size_t samples, float margin_db)
{
    float db = mp_vad_frame_dbfs(frame, samples);
    v->level[v->level_at] = db;
    v->level_at = (v->level_at + 1) % MP_VAD_FLOOR_FRAMES;
    if (v->levels < MP_VAD_FLOOR_FRAMES)
        v->levels++;
    /* Until the window has filled, a floor from a few frames would be too high a guess. */
    float floor_db = -96.0f;
    if (v->levels == MP_VAD_FLOOR_FRAMES) {
        floor_db = v->level[0];
        for (int i = 1; i < MP_VAD_FLOOR_FRAMES; i++)
            floor_db = v->level[i] < floor_db ? v->level[i] : floor_db;
    }
    return db > v->threshold_db && db > floor_db + margin_db;
}

int mp_vad_process(mp_vad *v, const int16_t *frame, size_t samples)
{
    if (v->kind == MP_VAD_WEBRTC) {
        size_t ms10 = (size_t)v->rate / 100;
        if (samples != ms10 && samples != 2 * ms10 && samples != 3 * ms10)
            return PL_ERR_INVALID;
        int rc = WebRtcVad_Process(v->webrtc, v->rate, frame, samples);
        if (rc < 0)
            return PL_ERR_INVALID;
        /* WebRTC's GMM calls steady noise speech: the level gate has the last word. */
        return loud_enough(v, frame, samples, WEBRTC_MARGIN_DB) && rc > 0;
    }
    /* Energy: any frame of 10 to 30 ms (22050 Hz has no whole 10 ms frame). */
    size_t lo = (size_t)v->rate / 100, hi = ((size_t)v->rate * 3 + 99) / 100;
    if (v->rate == 0 || samples < lo || samples > hi)
        return PL_ERR_INVALID;
    return loud_enough(v, frame, samples, ENERGY_MARGIN_DB);
}
