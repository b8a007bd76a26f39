/* Local synthesizer: flite 2.2 (voices kal16, slt, awb, rms at 16 kHz; kal at 8 kHz) and
 * espeak-ng 1.51 (22,050 Hz), resampled with speexdsp to the call's rate (flite's own resampler
 * stretches audio by ~7%).
 *
 * A stream keeps a queue of texts. Each pump says the next sentence of the text at the head
 * (sentences keep the first audio early and make cancel take effect between sentences; espeak-ng
 * also checks it between its 100 ms buffers). Audio is resampled through a per-stream resampler
 * into a per-stream chunk buffer and delivered in MP_TTS_CHUNK_MS chunks; nothing is allocated per
 * chunk.
 *
 * Locks: `mu` guards the queue and flags shared with the loop; `cb_mu` is held while delivering,
 * so cancel and close can promise no stale audio after they return. Never both at once.
 * flite_mu / espeak_mu serialise the two libraries, which have global state. */
#include "tts.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <espeak-ng/speak_lib.h>
#include <flite/flite.h>

#include "error.h"
#include "log.h"
#include "resample.h"

/* The flite voice libraries export these but ship no header for them. */
cst_voice *register_cmu_us_kal(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);

#define SENTENCE_MAX     300 /* bytes of one synthesis call */
#define RESAMPLE_IN_MS   100 /* input fed to the resampler at a time */
#define ESPEAK_BUFFER_MS 100
#define ESPEAK_VOICE_MAX 64
#define ESPEAK_NAMES_MAX 1024

typedef enum { FLITE, ESPEAK } synth_kind;

static const struct {
    const char *name;
    cst_voice *(*reg)(const char *);
} flite_voices[] = {
    {"kal16", register_cmu_us_kal16}, {"slt", register_cmu_us_slt}, {"awb", register_cmu_us_awb},
    {"rms", register_cmu_us_rms},     {"kal", register_cmu_us_kal},
};
#define N_FLITE (sizeof(flite_voices) / sizeof(flite_voices[0]))

/* Process-wide library state, set once by lib_init. */
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t flite_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t espeak_mu = PTHREAD_MUTEX_INITIALIZER;
static cst_voice *flite_voice[N_FLITE];
static int flite_rate[N_FLITE];
static int espeak_rate;     /* 0: espeak-ng unavailable */
static char **espeak_names; /* voice names, identifiers and languages espeak-ng accepts */
static size_t n_espeak_names;

typedef struct engine {
    mp_tts_engine base;
    atomic_uint_fast64_t samples_out, audio_us, synth_ns;
} engine;

typedef struct item {
    uint32_t id;
    unsigned gen;
    char *text;
} item;

typedef struct stream {
    mp_tts_stream base;
    engine *e;
    mp_tts_callbacks cb;
    int rate;
    synth_kind kind;
    int voice;                           /* FLITE: index in flite_voices */
    char espeak_voice[ESPEAK_VOICE_MAX]; /* ESPEAK */
    int voice_rate;

    /* Shared with the loop, under mu. */
    pthread_mutex_t mu;
    item queue[MP_TTS_QUEUE_MAX];
    size_t q_head, q_len;
    int scheduled, closed;

    /* Under cb_mu (gen is also read without it, as a hint, by the worker). */
    pthread_mutex_t cb_mu;
    atomic_uint gen; /* bumped by cancel: items of older generations are dropped */
    int quiet;       /* close was called */

    /* Worker only. */
    item cur; /* text being said; cur.text NULL when none */
    size_t cur_off;
    int cur_abort; /* delivery refused (cancelled or closed): drop cur */
    mp_resampler rs;
    int16_t *rs_out;
    size_t rs_out_cap;
    int16_t *chunk;
    size_t chunk_len, chunk_cap;
    char sentence[SENTENCE_MAX + 1];
} stream;

static const struct mp_tts_ops local_ops;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int espeak_cb(short *wav, int n, espeak_EVENT *ev);

static void add_espeak_name(const char *name)
{
    if (name == NULL || name[0] == '\0' || n_espeak_names >= ESPEAK_NAMES_MAX ||
        strlen(name) >= ESPEAK_VOICE_MAX)
        return;
    char *copy = strdup(name);
    if (copy != NULL)
        espeak_names[n_espeak_names++] = copy;
}

static void lib_init(void)
{
    flite_init();
    for (size_t i = 0; i < N_FLITE; i++) {
        flite_voice[i] = flite_voices[i].reg(NULL);
        /* kal is the 8 kHz diphone voice; the others are 16 kHz. */
        flite_rate[i] = strcmp(flite_voices[i].name, "kal") == 0 ? 8000 : 16000;
    }
    int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ESPEAK_BUFFER_MS, NULL,
                                 espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0) {
        PL_WARN("tts_local: espeak-ng unavailable (espeak-ng-data missing?)");
        return;
    }
    espeak_SetSynthCallback(espeak_cb);
    espeak_names = calloc(ESPEAK_NAMES_MAX, sizeof(*espeak_names));
    if (espeak_names == NULL)
        return;
    const espeak_VOICE **list = espeak_ListVoices(NULL);
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        add_espeak_name(list[i]->name);
        const char *id = list[i]->identifier;
        if (id != NULL) {
            add_espeak_name(id);
            const char *slash = strrchr(id, '/');
            add_espeak_name(slash != NULL ? slash + 1 : NULL);
        }
        /* languages: (priority byte, NUL-terminated name) pairs, ended by a 0 priority. */
        for (const char *p = list[i]->languages; p != NULL && p[0] != '\0';) {
            add_espeak_name(p + 1);
            p += 1 + strlen(p + 1) + 1;
        }
    }
    espeak_rate = rate;
}

static int espeak_known(const char *name)
{
    char base[ESPEAK_VOICE_MAX];
    size_t n = strcspn(name, "+"); /* "en+f3": voice plus variant */
    if (n == 0 || n >= sizeof(base))
        return 0;
    memcpy(base, name, n);
    base[n] = '\0';
    for (size_t i = 0; i < n_espeak_names; i++)
        if (strcasecmp(espeak_names[i], base) == 0)
            return 1;
    return 0;
}

static void engine_free(mp_tts_engine *base)
{
    /* The libraries stay initialised for the life of the process. */
    free(base);
}

int mp_tts_local_new(mp_tts_engine **out)
{
    pthread_once(&lib_once, lib_init);
    engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return PL_ERR_NOMEM;
    e->base.ops = &local_ops;
    for (size_t i = 0; i < N_FLITE; i++) {
        if (flite_voice[i] == NULL) {
            PL_ERROR("tts_local: flite voice %s failed to register", flite_voices[i].name);
            free(e);
            return PL_ERR_INVALID;
        }
    }
    *out = &e->base;
    return PL_OK;
}

void mp_tts_local_stats_get(mp_tts_engine *base, mp_tts_local_stats *out)
{
    engine *e = (engine *)base;
    out->samples_out = atomic_load(&e->samples_out);
    out->audio_ms = atomic_load(&e->audio_us) / 1000;
    out->synth_ns = atomic_load(&e->synth_ns);
}

/* Resolves cfg->voice into the stream's synthesizer; PL_ERR_INVALID for an unknown voice. */
static int pick_voice(stream *s, const char *voice)
{
    if (voice == NULL || voice[0] == '\0')
        voice = "kal16";
    if (strncmp(voice, "flite:", 6) == 0)
        voice += 6;
    if (strcmp(voice, "espeak") == 0 || strncmp(voice, "espeak:", 7) == 0) {
        const char *name = voice[6] == ':' ? voice + 7 : "en-us";
        if (espeak_rate == 0 || !espeak_known(name))
            return PL_ERR_INVALID;
        s->kind = ESPEAK;
        snprintf(s->espeak_voice, sizeof(s->espeak_voice), "%s", name);
        s->voice_rate = espeak_rate;
        return PL_OK;
    }
    for (size_t i = 0; i < N_FLITE; i++) {
        if (strcmp(voice, flite_voices[i].name) == 0) {
            s->kind = FLITE;
            s->voice = (int)i;
            s->voice_rate = flite_rate[i];
            return PL_OK;
        }
    }
    return PL_ERR_INVALID;
}

static void stream_free(stream *s)
{
    for (size_t i = 0; i < s->q_len; i++)
        free(s->queue[(s->q_head + i) % MP_TTS_QUEUE_MAX].text);
    free(s->cur.text);
    free(s->rs_out);
    free(s->chunk);
    mp_resampler_free(&s->rs);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->cb_mu);
    free(s);
}

static int local_open(mp_tts_engine *base, const mp_tts_config *cfg, const mp_tts_callbacks *cb,
                      mp_tts_stream **out)
{
    *out = NULL;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 48000 || cb->on_audio == NULL ||
        cb->on_done == NULL || cb->wake == NULL)
        return PL_ERR_INVALID;
    stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PL_ERR_NOMEM;
    s->base.ops = &local_ops;
    s->e = (engine *)base;
    s->cb = *cb;
    s->rate = cfg->sample_rate;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cb_mu, NULL);
    int rc = pick_voice(s, cfg->voice);
    if (rc == PL_OK)
        rc = mp_resampler_init(&s->rs, s->voice_rate, s->rate);
    if (rc == PL_OK) {
        s->rs_out_cap = mp_resampler_out_max(&s->rs, (size_t)s->voice_rate * RESAMPLE_IN_MS / 1000);
        s->rs_out = malloc(s->rs_out_cap * sizeof(*s->rs_out));
        s->chunk_cap = (size_t)s->rate * MP_TTS_CHUNK_MS / 1000;
        s->chunk = malloc(s->chunk_cap * sizeof(*s->chunk));
        if (s->rs_out == NULL || s->chunk == NULL)
            rc = PL_ERR_NOMEM;
    }
    if (rc != PL_OK) {
        stream_free(s);
        return rc;
    }
    *out = &s->base;
    return PL_OK;
}

static int local_speak(mp_tts_stream *base, uint32_t id, const char *text)
{
    stream *s = (stream *)base;
    size_t n = strlen(text);
    if (n == 0)
        return PL_ERR_INVALID;
    if (n > MP_TTS_TEXT_MAX)
        return PL_ERR_TOOBIG;
    char *copy = strdup(text);
    if (copy == NULL)
        return PL_ERR_NOMEM;
    pthread_mutex_lock(&s->mu);
    if (s->closed || s->q_len == MP_TTS_QUEUE_MAX) {
        int closed = s->closed;
        pthread_mutex_unlock(&s->mu);
        free(copy);
        return closed ? PL_ERR_INVALID : PL_ERR_TOOBIG;
    }
    item *it = &s->queue[(s->q_head + s->q_len) % MP_TTS_QUEUE_MAX];
    it->id = id;
    it->gen = atomic_load(&s->gen);
    it->text = copy;
    s->q_len++;
    int wake = !s->scheduled;
    s->scheduled = 1;
    pthread_mutex_unlock(&s->mu);
    if (wake)
        s->cb.wake(s->cb.user, &s->base);
    return PL_OK;
}

static int local_cancel(mp_tts_stream *base)
{
    stream *s = (stream *)base;
    /* Under cb_mu: a delivery in flight finishes first; later ones see the new generation. */
    pthread_mutex_lock(&s->cb_mu);
    atomic_fetch_add(&s->gen, 1);
    pthread_mutex_unlock(&s->cb_mu);
    char *drop[MP_TTS_QUEUE_MAX];
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (; s->q_len > 0; s->q_len--, s->q_head = (s->q_head + 1) % MP_TTS_QUEUE_MAX)
        drop[n++] = s->queue[s->q_head].text;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        free(drop[i]);
    return PL_OK;
}

static void local_close(mp_tts_stream *base)
{
    stream *s = (stream *)base;
    pthread_mutex_lock(&s->cb_mu);
    s->quiet = 1;
    pthread_mutex_unlock(&s->cb_mu);
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    int pending = s->scheduled;
    pthread_mutex_unlock(&s->mu);
    if (!pending)
        stream_free(s); /* otherwise the pump that was asked for frees it */
}

/* Worker side from here on. */

/* Hands the chunk buffer to the caller unless cur was cancelled or the stream closed. */
static void flush_chunk(stream *s)
{
    if (s->chunk_len == 0)
        return;
    pthread_mutex_lock(&s->cb_mu);
    if (s->quiet || s->cur.gen != atomic_load(&s->gen))
        s->cur_abort = 1;
    else
        s->cb.on_audio(s->cb.user, s->cur.id, s->chunk, s->chunk_len);
    pthread_mutex_unlock(&s->cb_mu);
    if (!s->cur_abort) {
        atomic_fetch_add(&s->e->samples_out, s->chunk_len);
        atomic_fetch_add(&s->e->audio_us, (uint64_t)s->chunk_len * 1000000u / (uint64_t)s->rate);
    }
    s->chunk_len = 0;
}

static void append(stream *s, const int16_t *pcm, size_t n)
{
    while (n > 0 && !s->cur_abort) {
        size_t k = s->chunk_cap - s->chunk_len;
        if (k > n)
            k = n;
        memcpy(s->chunk + s->chunk_len, pcm, k * sizeof(*pcm));
        s->chunk_len += k;
        pcm += k;
        n -= k;
        if (s->chunk_len == s->chunk_cap)
            flush_chunk(s);
    }
}

/* Resamples voice-rate audio to the stream's rate and delivers it; 0, or -1 once cancelled. */
static int deliver(stream *s, const int16_t *pcm, size_t n)
{
    size_t step = (size_t)s->voice_rate * RESAMPLE_IN_MS / 1000;
    for (size_t off = 0; off < n && !s->cur_abort; off += step) {
        size_t k = n - off < step ? n - off : step, got = 0;
        mp_resampler_process(&s->rs, pcm + off, k, s->rs_out, s->rs_out_cap, &got);
        append(s, s->rs_out, got);
    }
    if (!s->cur_abort && atomic_load(&s->gen) != s->cur.gen)
        s->cur_abort = 1; /* cancelled: stop synthesising early */
    return s->cur_abort ? -1 : 0;
}

static int espeak_cb(short *wav, int n, espeak_EVENT *ev)
{
    stream *s = ev != NULL ? ev->user_data : NULL;
    if (s == NULL || wav == NULL || n <= 0)
        return s != NULL && s->cur_abort ? 1 : 0;
    return deliver(s, wav, (size_t)n) == 0 ? 0 : 1; /* 1 aborts the synthesis */
}

static int say_flite(stream *s, const char *text)
{
    cst_wave *volatile w = NULL;
    jmp_buf jb;
    pthread_mutex_lock(&flite_mu);
    /* flite reports internal errors with cst_error(), which exits the process unless cst_errjmp
     * points at a jmp_buf. */
    cst_errjmp = &jb;
    if (setjmp(jb) == 0)
        w = flite_text_to_wave(text, flite_voice[s->voice]);
    cst_errjmp = NULL;
    pthread_mutex_unlock(&flite_mu);
    cst_wave *wave = w;
    if (wave == NULL)
        return PL_ERR_INVALID;
    int rc = PL_OK;
    if (wave->sample_rate != s->voice_rate || wave->num_channels != 1)
        rc = PL_ERR_INVALID; /* never for the built-in voices */
    else if (wave->num_samples > 0)
        deliver(s, wave->samples, (size_t)wave->num_samples);
    delete_wave(wave);
    return rc;
}

static int say_espeak(stream *s, const char *text)
{
    pthread_mutex_lock(&espeak_mu);
    /* By voice name or file ("en-us" is the file gmw/en-US), else by language ("en-gb"). */
    int rc = PL_OK;
    if (espeak_SetVoiceByName(s->espeak_voice) != EE_OK) {
        espeak_VOICE spec = {.languages = s->espeak_voice};
        if (espeak_SetVoiceByProperties(&spec) != EE_OK)
            rc = PL_ERR_INVALID;
    }
    if (rc == PL_OK &&
        espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, s) !=
            EE_OK &&
        !s->cur_abort)
        rc = PL_ERR_INVALID;
    pthread_mutex_unlock(&espeak_mu);
    return rc;
}

/* Length of the next sentence of text: up to and including . ! ? ; : or a newline followed by
 * white space, at most SENTENCE_MAX bytes (cut at a space, or at a UTF-8 character boundary). */
static size_t sentence_len(const char *text)
{
    size_t n = strlen(text);
    size_t limit = n < SENTENCE_MAX ? n : SENTENCE_MAX;
    for (size_t i = 0; i < limit; i++) {
        char c = text[i];
        if (c == '\n' || ((c == '.' || c == '!' || c == '?' || c == ';' || c == ':') &&
                          (text[i + 1] == '\0' || text[i + 1] == ' ' || text[i + 1] == '\n')))
            return i + 1;
    }
    if (n <= SENTENCE_MAX)
        return n;
    for (size_t i = SENTENCE_MAX; i > SENTENCE_MAX / 2; i--)
        if (text[i] == ' ')
            return i;
    size_t i = SENTENCE_MAX;
    while (i > 0 && ((unsigned char)text[i] & 0xC0) == 0x80)
        i--;
    return i > 0 ? i : SENTENCE_MAX;
}

static void done(stream *s, int err)
{
    pthread_mutex_lock(&s->cb_mu);
    if (!s->quiet && s->cur.gen == atomic_load(&s->gen))
        s->cb.on_done(s->cb.user, s->cur.id, err);
    pthread_mutex_unlock(&s->cb_mu);
    free(s->cur.text);
    s->cur.text = NULL;
    s->cur_abort = 0;
    s->chunk_len = 0;
    mp_resampler_reset(&s->rs);
}

/* Says the next sentence of cur; finishes cur at its end. */
static void step(stream *s)
{
    if (atomic_load(&s->gen) != s->cur.gen) {
        done(s, PL_OK); /* cancelled: done() delivers nothing for an old generation */
        return;
    }
    const char *rest = s->cur.text + s->cur_off;
    while (*rest == ' ' || *rest == '\n' || *rest == '\t' || *rest == '\r')
        rest++;
    size_t n = sentence_len(rest);
    memcpy(s->sentence, rest, n);
    s->sentence[n] = '\0';
    s->cur_off = (size_t)(rest - s->cur.text) + n;
    int rc = PL_OK;
    uint64_t t0 = now_ns();
    if (n > 0)
        rc = s->kind == FLITE ? say_flite(s, s->sentence) : say_espeak(s, s->sentence);
    int last = s->cur.text[s->cur_off] == '\0';
    if (rc == PL_OK && !s->cur_abort && last) {
        size_t got = 0;
        mp_resampler_drain(&s->rs, s->rs_out, s->rs_out_cap, &got);
        append(s, s->rs_out, got);
        flush_chunk(s);
    }
    atomic_fetch_add(&s->e->synth_ns, now_ns() - t0);
    if (rc != PL_OK || s->cur_abort || last)
        done(s, rc);
}

static int local_pump(mp_tts_stream *base)
{
    stream *s = (stream *)base;
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        stream_free(s);
        return 0;
    }
    if (s->cur.text == NULL && s->q_len > 0) {
        s->cur = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % MP_TTS_QUEUE_MAX;
        s->q_len--;
        s->cur_off = 0;
        s->cur_abort = 0;
    }
    pthread_mutex_unlock(&s->mu);

    if (s->cur.text != NULL)
        step(s);

    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        stream_free(s);
        return 0;
    }
    int more = s->cur.text != NULL || s->q_len > 0;
    if (!more)
        s->scheduled = 0;
    pthread_mutex_unlock(&s->mu);
    return more; /* s may be freed by close as soon as scheduled is 0: not touched again */
}

static const struct mp_tts_ops local_ops = {
    .name = "local",
    .open = local_open,
    .speak = local_speak,
    .cancel = local_cancel,
    .pump = local_pump,
    .close = local_close,
    .engine_free = engine_free,
};
