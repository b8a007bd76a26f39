/* vad: WebRTC VAD calls synthesized speech speech and digital silence / low noise not, at 8 and
 * 16 kHz and 10/20/30 ms frames; the energy fallback (22,050 Hz, or asked for) does the same;
 * bad frame lengths are refused. Speech comes from the local TTS (flite, espeak-ng). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "error.h"
#include "tts.h"
#include "vad.h"

#define MAX_AUDIO (22050 * 20)

static mp_tts_engine *eng;

typedef struct buf {
    int16_t *pcm;
    size_t n;
} buf;

static void on_audio(void *user, uint32_t id, const int16_t *pcm, size_t n)
{
    (void)id;
    buf *b = user;
    if (b->n + n <= MAX_AUDIO) {
        memcpy(b->pcm + b->n, pcm, n * sizeof(*pcm));
        b->n += n;
    }
}

static void on_done(void *user, uint32_t id, int err)
{
    (void)user;
    (void)id;
    (void)err;
}

static void wake(void *user, mp_tts_stream *s)
{
    (void)user;
    (void)s;
}

/* Synthesised speech at rate (pumped on this thread). */
static buf speech(const char *voice, int rate, const char *text)
{
    buf b = {malloc(MAX_AUDIO * sizeof(int16_t)), 0};
    mp_tts_config cfg = {.sample_rate = rate, .voice = voice};
    mp_tts_callbacks cb = {.on_audio = on_audio, .on_done = on_done, .wake = wake, .user = &b};
    mp_tts_stream *s = NULL;
    if (mp_tts_open(eng, &cfg, &cb, &s) != PL_OK)
        return b;
    mp_tts_speak(s, 1, text);
    while (mp_tts_pump(s) > 0)
        ;
    mp_tts_close(s);
    return b;
}

/* Deterministic white noise of the given RMS. */
static void noise(int16_t *out, size_t n, double rms, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        double u = ((seed >> 8) & 0xFFFF) / 65535.0 * 2 - 1; /* uniform: rms = 1/sqrt(3) */
        out[i] = (int16_t)lrint(u * rms * sqrt(3.0));
    }
}

/* Fraction of frames the detector calls speech, among frames louder than -45 dBFS (the pauses
 * between words are not speech and should not count against it). */
static void measure(mp_vad *v, const int16_t *pcm, size_t n, size_t frame, double *voiced,
                    double *all)
{
    int loud = 0, loud_speech = 0, frames = 0, speech_frames = 0;
    for (size_t off = 0; off + frame <= n; off += frame) {
        int r = mp_vad_process(v, pcm + off, frame);
        CHECK(r == 0 || r == 1);
        frames++;
        speech_frames += r == 1;
        if (mp_vad_frame_dbfs(pcm + off, frame) > -45.0f) {
            loud++;
            loud_speech += r == 1;
        }
    }
    *voiced = loud ? (double)loud_speech / loud : 0;
    *all = frames ? (double)speech_frames / frames : 0;
}

static void check_detector(mp_vad_kind kind, int rate, int frame_ms, const char *voice)
{
    mp_vad v;
    CHECK(mp_vad_init(&v, kind, rate, MP_VAD_MODE_DEFAULT) == PL_OK);
    size_t frame = (size_t)rate * (size_t)frame_ms / 1000;
    buf sp = speech(voice, rate, "Hello, I would like to book a table for two people tonight.");
    CHECK(sp.n > (size_t)rate * 2);
    double voiced, all;
    measure(&v, sp.pcm, sp.n, frame, &voiced, &all);
    /* Then silence and low noise (-60 dBFS and -50 dBFS), 2 s each, after the speech so the
     * detector has adapted to a talker (the harder case). */
    size_t quiet_n = (size_t)rate * 2;
    int16_t *quiet = calloc(quiet_n, sizeof(int16_t));
    double sil_v, sil_all, n60_v, n60_all, n50_v, n50_all;
    measure(&v, quiet, quiet_n, frame, &sil_v, &sil_all);
    noise(quiet, quiet_n, 32768 * pow(10, -60 / 20.0), 1);
    measure(&v, quiet, quiet_n, frame, &n60_v, &n60_all);
    noise(quiet, quiet_n, 32768 * pow(10, -50 / 20.0), 2);
    measure(&v, quiet, quiet_n, frame, &n50_v, &n50_all);
    /* A louder steady hiss (-35 dBFS): the floor rises to it within MP_VAD_FLOOR_FRAMES, so
     * after its first 2 s it is no longer speech. */
    double n35_v, n35_all, n35_late_v, n35_late;
    noise(quiet, quiet_n, 32768 * pow(10, -35 / 20.0), 3);
    measure(&v, quiet, quiet_n, frame, &n35_v, &n35_all);
    noise(quiet, quiet_n / 2, 32768 * pow(10, -35 / 20.0), 4);
    measure(&v, quiet, quiet_n / 2, frame, &n35_late_v, &n35_late);
    printf("    %-6s %5d Hz %2d ms %-7s: speech %3.0f%% of loud frames; silence %.0f%%, "
           "noise -60 dB %.0f%%, -50 dB %.0f%%, -35 dB %.0f%% then %.0f%%\n",
           v.kind == MP_VAD_WEBRTC ? "webrtc" : "energy", rate, frame_ms, voice ? voice : "kal16",
           voiced * 100, sil_all * 100, n60_all * 100, n50_all * 100, n35_all * 100,
           n35_late * 100);
    CHECK(voiced > 0.8);
    CHECK(sil_all == 0);
    CHECK(n60_all < 0.05);
    CHECK(n50_all < 0.05);
    CHECK(n35_late < 0.05);
    free(quiet);
    free(sp.pcm);
    mp_vad_free(&v);
}

static void webrtc_8k(void)
{
    check_detector(MP_VAD_WEBRTC, 8000, 20, NULL);
    check_detector(MP_VAD_WEBRTC, 8000, 10, "slt");
    check_detector(MP_VAD_WEBRTC, 8000, 30, "espeak");
}

static void webrtc_16k(void)
{
    check_detector(MP_VAD_WEBRTC, 16000, 20, NULL);
    check_detector(MP_VAD_WEBRTC, 16000, 20, "awb");
}

static void energy_fallback(void)
{
    mp_vad v;
    CHECK(mp_vad_init(&v, MP_VAD_WEBRTC, 22050, 2) == PL_OK);
    CHECK(v.kind == MP_VAD_ENERGY); /* WebRTC does not take 22,050 Hz */
    mp_vad_free(&v);
    check_detector(MP_VAD_WEBRTC, 22050, 20, NULL);
    check_detector(MP_VAD_ENERGY, 8000, 20, "slt");
    check_detector(MP_VAD_ENERGY, 24000, 20, NULL);
}

static void bad_frames_and_config(void)
{
    mp_vad v;
    int16_t frame[480] = {0};
    CHECK(mp_vad_init(&v, MP_VAD_WEBRTC, 8000, 4) == PL_ERR_INVALID);
    CHECK(mp_vad_init(&v, MP_VAD_WEBRTC, 100, 2) == PL_ERR_INVALID);
    CHECK(mp_vad_init(&v, MP_VAD_WEBRTC, 8000, 3) == PL_OK);
    CHECK(v.kind == MP_VAD_WEBRTC);
    CHECK(mp_vad_process(&v, frame, 159) == PL_ERR_INVALID);
    CHECK(mp_vad_process(&v, frame, 480) == PL_ERR_INVALID); /* 60 ms */
    CHECK(mp_vad_process(&v, frame, 240) == 0);
    mp_vad_free(&v);
    mp_vad_free(&v); /* safe twice */
    CHECK(mp_vad_init(&v, MP_VAD_ENERGY, 22050, 2) == PL_OK);
    CHECK(mp_vad_process(&v, frame, 441) == 0);
    CHECK(mp_vad_process(&v, frame, 100) == PL_ERR_INVALID);
    mp_vad_free(&v);
    CHECK(mp_vad_frame_dbfs(frame, 160) == -96.0f);
    for (int i = 0; i < 160; i++)
        frame[i] = (int16_t)(i % 2 ? 16384 : -16384);
    CHECK(fabsf(mp_vad_frame_dbfs(frame, 160) - -6.02f) < 0.01f);
}

static void cost(void)
{
    mp_vad v;
    CHECK(mp_vad_init(&v, MP_VAD_WEBRTC, 16000, 2) == PL_OK);
    int16_t frame[320];
    noise(frame, 320, 3000, 3);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 5000; i++)
        mp_vad_process(&v, frame, 320);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / 5000;
    printf("    webrtc 16 kHz: %.1f us per 20 ms frame\n", us);
    CHECK(us < 200);
    mp_vad_free(&v);
}

int main(void)
{
    if (mp_tts_local_new(&eng) != PL_OK) {
        printf("cannot create the local TTS engine\n");
        return 1;
    }
    RUN(webrtc_8k);
    RUN(webrtc_16k);
    RUN(energy_fallback);
    RUN(bad_frames_and_config);
    RUN(cost);
    mp_tts_engine_free(eng);
    return check_summary();
}
