/* endpoint: on synthesized speech between stretches of low noise, SPEECH_START comes once near
 * the speech onset and SPEECH_END exactly the configured hangover after the last speech frame; a
 * pause longer than the hangover splits the turn, a shorter one does not. 8 and 16 kHz. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "endpoint.h"
#include "error.h"
#include "tts.h"

#define MAX_AUDIO (16000 * 30)

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

/* Appends synthesized speech to b. */
static void say(buf *b, int rate, const char *text)
{
    mp_tts_config cfg = {.sample_rate = rate, .voice = "slt"};
    mp_tts_callbacks cb = {.on_audio = on_audio, .on_done = on_done, .wake = wake, .user = b};
    mp_tts_stream *s = NULL;
    CHECK(mp_tts_open(eng, &cfg, &cb, &s) == PL_OK);
    if (s == NULL)
        return;
    mp_tts_speak(s, 1, text);
    while (mp_tts_pump(s) > 0)
        ;
    mp_tts_close(s);
}

/* Appends ms of white noise at -60 dBFS (a quiet phone line). */
static void hiss(buf *b, int rate, int ms)
{
    static unsigned seed = 1;
    size_t n = (size_t)rate * (size_t)ms / 1000;
    for (size_t i = 0; i < n && b->n < MAX_AUDIO; i++) {
        seed = seed * 1103515245u + 12345u;
        b->pcm[b->n++] = (int16_t)((int)((seed >> 8) & 0x3F) - 32);
    }
}

/* Where speech really is: first and last 20 ms frame above -45 dBFS, and the longest quiet run
 * in between, in ms. */
static void truth(const buf *b, int rate, int *first_ms, int *last_ms, int *longest_gap_ms)
{
    size_t frame = (size_t)rate / 50;
    int first = -1, last = -1, gap = 0, longest = 0;
    for (size_t off = 0, i = 0; off + frame <= b->n; off += frame, i++) {
        if (mp_vad_frame_dbfs(b->pcm + off, frame) > -45.0f) {
            if (first < 0)
                first = (int)i;
            if (last >= 0 && gap > longest)
                longest = gap;
            last = (int)i;
            gap = 0;
        } else {
            gap++;
        }
    }
    *first_ms = first * 20;
    *last_ms = (last + 1) * 20;
    *longest_gap_ms = longest * 20;
}

typedef struct ev {
    int kind;
    int at_ms;     /* stream time the event was returned */
    int speech_ms; /* e->start_ms for a START, e->end_ms for an END */
} ev;

static int run(const buf *b, int rate, int hangover_ms, ev *evs, int max)
{
    mp_endpoint e;
    mp_endpoint_config cfg = {.frame_ms = 20, .hangover_ms = hangover_ms, .vad_mode = -1};
    CHECK(mp_endpoint_init(&e, rate, &cfg) == PL_OK);
    size_t frame = e.frame_samples;
    int n = 0;
    for (size_t off = 0; off + frame <= b->n; off += frame) {
        int r = mp_endpoint_process(&e, b->pcm + off, frame);
        CHECK(r >= 0);
        if (r > 0 && n < max) {
            evs[n].kind = r;
            evs[n].at_ms = (int)e.now_ms;
            evs[n].speech_ms = (int)(r == MP_EP_SPEECH_START ? e.start_ms : e.end_ms);
            n++;
        }
    }
    mp_endpoint_free(&e);
    return n;
}

static void one_turn(int rate)
{
    buf b = {malloc(MAX_AUDIO * sizeof(int16_t)), 0};
    hiss(&b, rate, 1000);
    say(&b, rate, "Hello there, I need some help with my order please.");
    hiss(&b, rate, 2000);
    int first, last, gap;
    truth(&b, rate, &first, &last, &gap);
    ev evs[16];
    int hang = gap + 300; /* longer than any pause inside the sentence */
    int n = run(&b, rate, hang, evs, 16);
    printf("    %5d Hz: speech %d..%d ms (longest pause %d ms); hangover %d: ", rate, first, last,
           gap, hang);
    for (int i = 0; i < n; i++)
        printf("%s@%d(%d) ", evs[i].kind == MP_EP_SPEECH_START ? "START" : "END", evs[i].at_ms,
               evs[i].speech_ms);
    printf("\n");
    CHECK(n == 2);
    if (n == 2) {
        CHECK(evs[0].kind == MP_EP_SPEECH_START && evs[1].kind == MP_EP_SPEECH_END);
        /* START within 200 ms of the onset, reported onset within 60 ms of it. */
        CHECK(evs[0].at_ms >= first && evs[0].at_ms <= first + 200);
        CHECK(abs(evs[0].speech_ms - first) <= 60);
        /* END exactly hangover after the reported end of speech, which is near the real one. */
        CHECK(evs[1].at_ms - evs[1].speech_ms == hang);
        CHECK(abs(evs[1].speech_ms - last) <= 100);
    }
    /* A hangover shorter than the pauses inside the sentence cuts it into several turns. */
    if (gap >= 100) {
        n = run(&b, rate, gap - 60, evs, 16);
        CHECK(n >= 4 && n % 2 == 0);
    }
    free(b.pcm);
}

static void one_turn_8k(void)
{
    one_turn(8000);
}

static void one_turn_16k(void)
{
    one_turn(16000);
}

/* Two sentences 1.5 s apart (1 s of line noise plus the voice's own silences): one turn with a
 * 2 s hangover, two with a 0.7 s one. */
static void pause_splits_turns(void)
{
    int rate = 8000;
    buf b = {malloc(MAX_AUDIO * sizeof(int16_t)), 0};
    hiss(&b, rate, 500);
    say(&b, rate, "Yes.");
    hiss(&b, rate, 1000);
    say(&b, rate, "That works for me.");
    hiss(&b, rate, 2000);
    ev evs[16];
    int n = run(&b, rate, 2000, evs, 16);
    CHECK(n == 2);
    n = run(&b, rate, 700, evs, 16);
    CHECK(n == 4);
    if (n == 4) {
        CHECK(evs[0].kind == MP_EP_SPEECH_START && evs[1].kind == MP_EP_SPEECH_END);
        CHECK(evs[2].kind == MP_EP_SPEECH_START && evs[3].kind == MP_EP_SPEECH_END);
        int pause = evs[2].speech_ms - evs[1].speech_ms;
        printf("    pause between the sentences: %d ms\n", pause);
        CHECK(pause >= 1000 && pause < 2000);
    }
    free(b.pcm);
}

/* A click (one loud 20 ms frame) is not a turn: START needs start_ms of speech. */
static void click_is_not_speech(void)
{
    int rate = 8000;
    buf b = {malloc(MAX_AUDIO * sizeof(int16_t)), 0};
    hiss(&b, rate, 500);
    buf sp = {malloc(MAX_AUDIO * sizeof(int16_t)), 0};
    say(&sp, rate, "Okay.");
    int first, last, gap;
    truth(&sp, rate, &first, &last, &gap);
    size_t at = (size_t)first * (size_t)rate / 1000 + (size_t)rate / 20;
    memcpy(b.pcm + b.n, sp.pcm + at, (size_t)rate / 50 * sizeof(int16_t)); /* one voiced frame */
    b.n += (size_t)rate / 50;
    hiss(&b, rate, 1000);
    ev evs[4];
    CHECK(run(&b, rate, 500, evs, 4) == 0);
    free(sp.pcm);
    free(b.pcm);
}

static void bad_config(void)
{
    mp_endpoint e;
    mp_endpoint_config cfg = {.frame_ms = 25};
    CHECK(mp_endpoint_init(&e, 8000, &cfg) == PL_ERR_INVALID);
    cfg.frame_ms = 10;
    CHECK(mp_endpoint_init(&e, 22050, &cfg) == PL_ERR_INVALID); /* no whole 10 ms frame */
    cfg.frame_ms = 20;
    cfg.hangover_ms = -5;
    CHECK(mp_endpoint_init(&e, 8000, &cfg) == PL_ERR_INVALID);
    cfg.hangover_ms = 0;
    CHECK(mp_endpoint_init(&e, 8000, &cfg) == PL_OK);
    CHECK(e.cfg.hangover_ms == MP_EP_HANGOVER_MS_DEFAULT &&
          e.cfg.start_ms == MP_EP_START_MS_DEFAULT);
    int16_t frame[320] = {0};
    CHECK(mp_endpoint_process(&e, frame, 320) == PL_ERR_INVALID);
    CHECK(mp_endpoint_process(&e, frame, 160) == MP_EP_NONE);
    mp_endpoint_free(&e);
    /* 22,050 Hz in 20 ms frames runs on the energy detector. */
    CHECK(mp_endpoint_init(&e, 22050, &cfg) == PL_OK);
    CHECK(e.vad.kind == MP_VAD_ENERGY && e.frame_samples == 441);
    mp_endpoint_free(&e);
}

int main(void)
{
    if (mp_tts_local_new(&eng) != PL_OK) {
        printf("cannot create the local TTS engine\n");
        return 1;
    }
    RUN(one_turn_8k);
    RUN(one_turn_16k);
    RUN(pause_splits_turns);
    RUN(click_is_not_speech);
    RUN(bad_config);
    mp_tts_engine_free(eng);
    return check_summary();
}
