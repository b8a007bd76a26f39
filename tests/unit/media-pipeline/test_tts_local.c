/* tts_local: every voice (flite kal16, slt, awb, rms, kal; espeak-ng) says a sentence at 8 and
 * 16 kHz as non-silent audio of plausible length, in chunks of whole 20 ms frames; cancel drops
 * queued and in-flight text; close with a pump pending is safe; a worker thread pumps streams
 * woken from the "loop" thread. Prints the synthesis cost (real-time factor) of each voice. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "error.h"
#include "tts.h"

#define MAX_AUDIO (16000 * 30)

typedef struct sink {
    int16_t *pcm;
    size_t n;
    int chunks, bad_chunks, over;
    int rate;
    int done_count, done_err;
    uint32_t last_id, done_id;
    int woken;
} sink;

static mp_tts_engine *eng;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_audio(void *user, uint32_t id, const int16_t *pcm, size_t n)
{
    sink *k = user;
    size_t frame = (size_t)k->rate / 50, max = (size_t)k->rate * MP_TTS_CHUNK_MS / 1000;
    k->chunks++;
    if (n > max)
        k->bad_chunks++;
    if (n % frame != 0)
        k->over++; /* only the last chunk of a text may end with a partial frame */
    k->last_id = id;
    if (k->n + n <= MAX_AUDIO) {
        memcpy(k->pcm + k->n, pcm, n * sizeof(*pcm));
        k->n += n;
    }
}

static void on_done(void *user, uint32_t id, int err)
{
    sink *k = user;
    k->done_count++;
    k->done_err = err;
    k->done_id = id;
}

static void wake(void *user, mp_tts_stream *s)
{
    (void)s;
    ((sink *)user)->woken++;
}

static double rms_dbfs(const int16_t *pcm, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)pcm[i] * pcm[i];
    return n ? 20 * log10(sqrt(sum / (double)n) / 32768.0 + 1e-12) : -200;
}

/* Says text with voice at rate, pumping on this thread; returns the seconds spent pumping. */
static double say(const char *voice, int rate, const char *text, sink *k)
{
    memset(k, 0, sizeof(*k));
    k->pcm = malloc(MAX_AUDIO * sizeof(int16_t));
    k->rate = rate;
    mp_tts_config cfg = {.sample_rate = rate, .voice = voice};
    mp_tts_callbacks cb = {.on_audio = on_audio, .on_done = on_done, .wake = wake, .user = k};
    mp_tts_stream *s = NULL;
    CHECK(mp_tts_open(eng, &cfg, &cb, &s) == PL_OK);
    if (s == NULL)
        return 0;
    CHECK(mp_tts_speak(s, 7, text) == PL_OK);
    CHECK(k->woken == 1);
    double t0 = now();
    int guard = 0;
    while (mp_tts_pump(s) > 0 && guard++ < 1000)
        ;
    double dt = now() - t0;
    mp_tts_close(s);
    return dt;
}

static void each_voice_at_8k_and_16k(void)
{
    const char *voices[] = {NULL,  "slt",       "awb",    "rms",
                            "kal", "flite:slt", "espeak", "espeak:en-gb"};
    const char *text = "Hello, this is Parley. Your appointment is confirmed for Monday at ten.";
    for (size_t v = 0; v < sizeof(voices) / sizeof(voices[0]); v++) {
        for (int rate = 8000; rate <= 16000; rate += 8000) {
            sink k;
            double dt = say(voices[v], rate, text, &k);
            double secs = (double)k.n / rate;
            double db = rms_dbfs(k.pcm, k.n);
            printf("    %-12s %5d Hz: %.2f s of audio, %5.1f dBFS, %2d chunks, synthesis %.0f ms "
                   "(RTF %.3f)\n",
                   voices[v] ? voices[v] : "(default)", rate, secs, db, k.chunks, dt * 1000,
                   secs > 0 ? dt / secs : 0);
            CHECK(secs > 2.5 && secs < 9.0); /* ~12 words */
            CHECK(db > -35.0);
            CHECK(k.bad_chunks == 0);
            CHECK(k.over <= 1);
            CHECK(k.done_count == 1 && k.done_err == PL_OK && k.done_id == 7 && k.last_id == 7);
            CHECK(dt < secs); /* faster than real time, by far */
            free(k.pcm);
        }
    }
}

/* The 8 kHz output of a 16 kHz voice is the same speech: durations agree within 1%. */
static void rates_agree_on_duration(void)
{
    sink a, b;
    say("slt", 8000, "Please hold while I check that for you.", &a);
    say("slt", 16000, "Please hold while I check that for you.", &b);
    double da = (double)a.n / 8000, db = (double)b.n / 16000;
    CHECK(fabs(da - db) < 0.01 * db + 0.001);
    free(a.pcm);
    free(b.pcm);
}

static void bad_config_and_text(void)
{
    sink k = {0};
    mp_tts_callbacks cb = {.on_audio = on_audio, .on_done = on_done, .wake = wake, .user = &k};
    mp_tts_stream *s = NULL;
    mp_tts_config cfg = {.sample_rate = 8000, .voice = "nosuchvoice"};
    CHECK(mp_tts_open(eng, &cfg, &cb, &s) == PL_ERR_INVALID);
    cfg.voice = "espeak:nosuchlanguage";
    CHECK(mp_tts_open(eng, &cfg, &cb, &s) == PL_ERR_INVALID);
    cfg.voice = "kal16";
    cfg.sample_rate = 100;
    CHECK(mp_tts_open(eng, &cfg, &cb, &s) == PL_ERR_INVALID);
    cfg.sample_rate = 8000;
    CHECK(mp_tts_open(eng, &cfg, &cb, &s) == PL_OK);
    CHECK(mp_tts_speak(s, 1, "") == PL_ERR_INVALID);
    static char big[MP_TTS_TEXT_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    CHECK(mp_tts_speak(s, 1, big) == PL_ERR_TOOBIG);
    for (int i = 0; i < MP_TTS_QUEUE_MAX; i++)
        CHECK(mp_tts_speak(s, (uint32_t)i, "ok") == PL_OK);
    CHECK(mp_tts_speak(s, 99, "one too many") == PL_ERR_TOOBIG);
    CHECK(k.woken == 1); /* one wake until a pump goes idle */
    /* Close with a pump pending: the pump frees the stream and calls nothing back. */
    mp_tts_close(s);
    CHECK(mp_tts_pump(s) == 0);
    CHECK(k.chunks == 0 && k.done_count == 0);
}

/* Barge-in: after cancel, nothing more of the cancelled texts; the next text plays whole. */
static void cancel_drops_queued_and_current(void)
{
    sink k = {0};
    k.pcm = malloc(MAX_AUDIO * sizeof(int16_t));
    k.rate = 8000;
    mp_tts_callbacks cb = {.on_audio = on_audio, .on_done = on_done, .wake = wake, .user = &k};
    mp_tts_config cfg = {.sample_rate = 8000, .voice = "kal16"};
    mp_tts_stream *s = NULL;
    CHECK(mp_tts_open(eng, &cfg, &cb, &s) == PL_OK);
    CHECK(mp_tts_speak(s, 1, "First sentence here. Second sentence here. Third one too.") == PL_OK);
    CHECK(mp_tts_speak(s, 2, "Queued text that must never be heard.") == PL_OK);
    CHECK(mp_tts_pump(s) > 0); /* says the first sentence of text 1 */
    size_t heard = k.n;
    CHECK(heard > 0 && k.done_count == 0);
    CHECK(mp_tts_cancel(s) == PL_OK);
    int guard = 0;
    while (mp_tts_pump(s) > 0 && guard++ < 100)
        ;
    CHECK(k.n == heard);      /* no audio after cancel */
    CHECK(k.done_count == 0); /* and no done for cancelled texts */
    CHECK(mp_tts_speak(s, 3, "After the interruption.") == PL_OK);
    while (mp_tts_pump(s) > 0 && guard++ < 200)
        ;
    CHECK(k.n > heard && k.done_count == 1 && k.done_id == 3 && k.last_id == 3);
    mp_tts_close(s);
    free(k.pcm);
}

/* A worker thread pumps what the loop (this thread) wakes: the contract of tts.h. */
typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mp_tts_stream *q[64];
    int head, len, stop;
} pool;
static pool P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0};

typedef struct tsink {
    pthread_mutex_t mu;
    size_t n;
    int done;
} tsink;

static void pool_push(mp_tts_stream *s)
{
    pthread_mutex_lock(&P.mu);
    P.q[(P.head + P.len++) % 64] = s;
    pthread_cond_signal(&P.cv);
    pthread_mutex_unlock(&P.mu);
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&P.mu);
        while (P.len == 0 && !P.stop)
            pthread_cond_wait(&P.cv, &P.mu);
        if (P.len == 0) {
            pthread_mutex_unlock(&P.mu);
            return NULL;
        }
        mp_tts_stream *s = P.q[P.head];
        P.head = (P.head + 1) % 64;
        P.len--;
        pthread_mutex_unlock(&P.mu);
        if (mp_tts_pump(s) > 0)
            pool_push(s);
    }
}

static void t_audio(void *user, uint32_t id, const int16_t *pcm, size_t n)
{
    (void)id;
    (void)pcm;
    tsink *t = user;
    pthread_mutex_lock(&t->mu);
    t->n += n;
    pthread_mutex_unlock(&t->mu);
}

static void t_done(void *user, uint32_t id, int err)
{
    (void)id;
    (void)err;
    tsink *t = user;
    pthread_mutex_lock(&t->mu);
    t->done++;
    pthread_mutex_unlock(&t->mu);
}

static void t_wake(void *user, mp_tts_stream *s)
{
    (void)user;
    pool_push(s);
}

static void worker_pool(void)
{
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    tsink t[3];
    mp_tts_stream *s[3];
    const char *voices[3] = {"kal16", "espeak", "slt"};
    for (int i = 0; i < 3; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        pthread_mutex_init(&t[i].mu, NULL);
        mp_tts_callbacks cb = {
            .on_audio = t_audio, .on_done = t_done, .wake = t_wake, .user = &t[i]};
        mp_tts_config cfg = {.sample_rate = 8000, .voice = voices[i]};
        CHECK(mp_tts_open(eng, &cfg, &cb, &s[i]) == PL_OK);
        CHECK(mp_tts_speak(s[i], 1, "Thanks for calling. Goodbye.") == PL_OK);
        CHECK(mp_tts_speak(s[i], 2, "One more thing.") == PL_OK);
    }
    /* Close the third at once: whichever side comes last frees it; no callback after close. */
    mp_tts_close(s[2]);
    size_t seen_after_close;
    pthread_mutex_lock(&t[2].mu);
    seen_after_close = t[2].n;
    pthread_mutex_unlock(&t[2].mu);
    for (int wait = 0; wait < 500; wait++) {
        pthread_mutex_lock(&t[0].mu);
        int d0 = t[0].done;
        pthread_mutex_unlock(&t[0].mu);
        pthread_mutex_lock(&t[1].mu);
        int d1 = t[1].done;
        pthread_mutex_unlock(&t[1].mu);
        if (d0 == 2 && d1 == 2)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(t[0].done == 2 && t[1].done == 2);
    CHECK(t[0].n > 8000 && t[1].n > 8000);
    mp_tts_close(s[0]);
    mp_tts_close(s[1]);
    pthread_mutex_lock(&P.mu);
    P.stop = 1;
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(t[2].n == seen_after_close);
    CHECK(t[2].done == 0);
}

static void stats(void)
{
    mp_tts_local_stats st;
    mp_tts_local_stats_get(eng, &st);
    printf("    total: %.1f s of audio synthesised in %.0f ms (RTF %.3f)\n", st.audio_ms / 1000.0,
           st.synth_ns / 1e6, st.audio_ms ? st.synth_ns / 1e6 / (double)st.audio_ms : 0);
    CHECK(st.audio_ms > 10000);
}

int main(void)
{
    if (mp_tts_local_new(&eng) != PL_OK) {
        printf("cannot create the local TTS engine\n");
        return 1;
    }
    RUN(each_voice_at_8k_and_16k);
    RUN(rates_agree_on_duration);
    RUN(bad_config_and_text);
    RUN(cancel_drops_queued_and_current);
    RUN(worker_pool);
    RUN(stats);
    mp_tts_engine_free(eng);
    return check_summary();
}
