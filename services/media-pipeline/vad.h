/* Voice activity detection on one frame of PCM16 mono: WebRTC's GMM VAD where it applies
 * (8/16/32/48 kHz, 10/20/30 ms frames), an energy detector otherwise.
 *
 * Both are gated by level: a frame is speech only if it is louder than threshold_db
 * (MP_VAD_ENERGY_DBFS by default) and clearly above the noise floor, the quietest frame of the
 * last MP_VAD_FLOOR_FRAMES. WebRTC alone calls steady noise speech (white noise at -60 dBFS: every
 * frame); the floor also lets the energy detector ignore a steady hiss or hum within a second.
 *
 * State per audio stream (WebRTC adapts its noise model), allocated once in mp_vad_init; a frame
 * costs a few microseconds and never allocates, so it runs on the audio loop. One thread at a
 * time per mp_vad. */
#ifndef MP_VAD_H
#define MP_VAD_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MP_VAD_WEBRTC = 0, /* libwebrtc-audio-processing's WebRtcVad_* */
    MP_VAD_ENERGY = 1, /* frame level alone, against the threshold and the noise floor */
} mp_vad_kind;

/* WebRTC aggressiveness, 0 (least) to 3 (most); 2 suits phone audio. */
#define MP_VAD_MODE_DEFAULT 2
/* The quietest frame called speech, dBFS. */
#define MP_VAD_ENERGY_DBFS (-45.0f)
/* Frames the noise floor is the minimum of (~1.3 s of 20 ms frames). */
#define MP_VAD_FLOOR_FRAMES 64

typedef struct mp_vad {
    mp_vad_kind kind;
    int rate;
    int mode;
    void *webrtc;       /* VadInst, for MP_VAD_WEBRTC */
    float threshold_db; /* quietest frame called speech, dBFS; may be changed after init */
    float level[MP_VAD_FLOOR_FRAMES]; /* dBFS of the last frames, a ring */
    int level_at, levels;
} mp_vad;

/* Sets up a detector for frames at `rate` Hz. kind MP_VAD_WEBRTC falls back to MP_VAD_ENERGY
 * when the rate is not one WebRTC takes (e.g. 22050, 24000) or its instance cannot be created;
 * v->kind tells which one runs. mode is the WebRTC aggressiveness 0..3. Returns 0 or
 * PL_ERR_INVALID (rate outside 4000..96000, mode outside 0..3). */
int mp_vad_init(mp_vad *v, mp_vad_kind kind, int rate, int mode);

/* 1 if the frame holds speech, 0 if not, PL_ERR_INVALID for a bad frame length: WebRTC takes
 * exactly 10, 20 or 30 ms at v->rate; the energy detector any length from 10 to 30 ms. */
int mp_vad_process(mp_vad *v, const int16_t *frame, size_t samples);

/* Frame RMS in dBFS (-96 for digital silence); used by the energy detector, handy for metrics. */
float mp_vad_frame_dbfs(const int16_t *frame, size_t samples);

/* Releases the detector; safe on a zeroed or released v. */
void mp_vad_free(mp_vad *v);

#endif
