/* stt_local: flite kal16 says a phrase, pocketsphinx transcribes it back. With a grammar of a few
 * phrases (the agent's expected answers) the text comes back exactly, at 16 kHz and from 8 kHz
 * telephone audio; with the full language model at least one word survives. Also: a worker
 * thread serving several streams (the thread contract of stt.h), close with a pump pending, the
 * decoder pool limit, bad grammars. Prints the decoding cost (real-time factor). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "error.h"
#include "stt.h"
#include "tts.h"

#define MAX_AUDIO (16000 * 20)

static mp_tts_engine *tts;
static mp_stt_engine *stt;

static const char *const phrases[] = {"hello world", "talk to a human",    "yes please",
                                      "no thanks",   "call me back later", "what is my balance"};
#define N_PHRASES (sizeof(phrases) / sizeof(phrases[0]))

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- audio from the local TTS ---- */

typedef struct buf {
    int16_t *pcm;
    size_t n;
} buf;

static void tts_audio(void *user, uint32_t id, const int16_t *pcm, size_t n)
{
    (void)id;
    buf *b = user;
    if (b->n + n <= MAX_AUDIO) {
        memcpy(b->pcm + b->n, pcm, n * sizeof(*pcm));
        b->n += n;
    }
}

static void tts_done(void *user, uint32_t id, int err)
{
    (void)user;
    (void)id;
    (void)err;
}

static void tts_wake(void *user, mp_tts_stream *s)
{
    (void)user;
    (void)s;
}

/* 0.5 s of silence, the phrase, 1 s of silence, at rate. */
static buf speech(int rate, const char *voice, const char *text)
{
    buf b = {calloc(MAX_AUDIO, sizeof(int16_t)), 0};
    b.n = (size_t)rate / 2;
    mp_tts_config cfg = {.sample_rate = rate, .voice = voice};
    mp_tts_callbacks cb = {
        .on_audio = tts_audio, .on_done = tts_done, .wake = tts_wake, .user = &b};
    mp_tts_stream *s = NULL;
    CHECK(mp_tts_open(tts, &cfg, &cb, &s) == PL_OK);
    if (s != NULL) {
        mp_tts_speak(s, 1, text);
        while (mp_tts_pump(s) > 0)
            ;
        mp_tts_close(s);
    }
    b.n += (size_t)rate;
    return b;
}

/* ---- a transcript collector ---- */

typedef struct result {
    pthread_mutex_t mu;
    char finals[512]; /* FINAL texts joined by spaces */
    char interim[256];
    int n_finals, n_interims, replies, errors;
    int woken;
    mp_stt_stream *s;
} result;

static void on_event(void *user, const mp_stt_event *ev)
{
    result *r = user;
    pthread_mutex_lock(&r->mu);
    if (ev->kind == MP_STT_INTERIM) {
        r->n_interims++;
        snprintf(r->interim, sizeof(r->interim), "%s", ev->text);
    } else if (ev->kind == MP_STT_FINAL) {
        r->n_finals++;
        r->replies += ev->finalize_reply;
        if (ev->text[0] != '\0') {
            size_t len = strlen(r->finals);
            snprintf(r->finals + len, sizeof(r->finals) - len, "%s%s", len ? " " : "", ev->text);
        }
    } else {
        r->errors++;
        printf("    error event: %s\n", ev->text);
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_wake_inline(void *user, mp_stt_stream *s)
{
    result *r = user;
    r->woken++;
    r->s = s;
}

static void result_init(result *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
}

/* Feeds b in 20 ms frames as the loop would, pumping inline whenever woken, then finalizes. */
static void transcribe(mp_stt_stream *s, result *r, const buf *b, int rate)
{
    size_t frame = (size_t)rate / 50;
    for (size_t off = 0; off + frame <= b->n; off += frame) {
        CHECK(mp_stt_feed(s, b->pcm + off, frame) == PL_OK);
        if (r->woken) {
            r->woken = 0;
            CHECK(mp_stt_lag_ms(s) >= 100); /* woken with 100 ms buffered, none decoded */
            while (mp_stt_pump(s) > 0)
                ;
            CHECK(mp_stt_lag_ms(s) < 100); /* idle: less than a wake's worth left */
        }
    }
    CHECK(mp_stt_finalize(s) == PL_OK);
    CHECK(r->woken == 1);
    r->woken = 0;
    while (mp_stt_pump(s) > 0)
        ;
    CHECK(mp_stt_lag_ms(s) == 0); /* finalized: every sample decoded */
}

static void grammar_case(int rate, const char *text)
{
    buf b = speech(rate, "kal16", text);
    result r;
    result_init(&r);
    mp_stt_config cfg = {.sample_rate = rate, .phrases = phrases, .n_phrases = N_PHRASES};
    mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_inline, .user = &r};
    mp_stt_stream *s = NULL;
    CHECK(mp_stt_open(stt, &cfg, &cb, &s) == PL_OK);
    if (s == NULL)
        return;
    double t0 = now();
    transcribe(s, &r, &b, rate);
    double dt = now() - t0, secs = (double)b.n / rate;
    printf("    grammar %5d Hz \"%s\" -> \"%s\" (%d interims, %d finals) %.2f s audio in %.0f ms "
           "(RTF %.3f)\n",
           rate, text, r.finals, r.n_interims, r.n_finals, secs, dt * 1000, dt / secs);
    CHECK_STR(r.finals, text);
    CHECK(r.replies == 1 && r.errors == 0);
    mp_stt_close(s);
    free(b.pcm);
}

static void grammar_16k(void)
{
    grammar_case(16000, "hello world");
    grammar_case(16000, "what is my balance");
}

static void grammar_8k(void)
{
    grammar_case(8000, "hello world");
    grammar_case(8000, "talk to a human");
    grammar_case(8000, "call me back later");
    grammar_case(8000, "no thanks");
    grammar_case(8000, "yes please");
}

/* A caller-written JSGF grammar (wins over phrases). */
static void jsgf_grammar(void)
{
    const char *g = "#JSGF V1.0;\ngrammar digits;\npublic <pin> = <d> <d> <d>;\n"
                    "<d> = one | two | three | four | five | six | seven | eight | nine | zero;\n";
    buf b = speech(8000, "kal16", "four one seven");
    result r;
    result_init(&r);
    mp_stt_config cfg = {.sample_rate = 8000, .jsgf = g};
    mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_inline, .user = &r};
    mp_stt_stream *s = NULL;
    CHECK(mp_stt_open(stt, &cfg, &cb, &s) == PL_OK);
    if (s != NULL) {
        transcribe(s, &r, &b, 8000);
        printf("    jsgf digits -> \"%s\"\n", r.finals);
        CHECK_STR(r.finals, "four one seven");
        mp_stt_close(s);
    }
    free(b.pcm);
}

/* A decoder created for the stream (none pooled), whose first utterance is 8 kHz audio handed
 * over in one piece (the worker was late): the narrowband CMN prior makes it come out right.
 * Then a 16 kHz call on the same decoder starts again from the wideband prior. */
static void fresh_decoder(void)
{
    mp_stt_engine *e = NULL;
    mp_stt_local_config cfg = {.max_decoders = 1, .preload = 0, .lm = ""};
    CHECK(mp_stt_local_new(&cfg, &e) == PL_OK);
    if (e == NULL)
        return;
    const int rates[3] = {8000, 16000, 8000};
    const char *texts[3] = {"no thanks", "yes please", "talk to a human"};
    for (int i = 0; i < 3; i++) {
        buf b = speech(rates[i], "kal16", texts[i]);
        result r;
        result_init(&r);
        mp_stt_config c = {.sample_rate = rates[i], .phrases = phrases, .n_phrases = N_PHRASES};
        mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_inline, .user = &r};
        mp_stt_stream *s = NULL;
        CHECK(mp_stt_open(e, &c, &cb, &s) == PL_OK);
        if (s == NULL)
            break;
        CHECK(mp_stt_feed(s, b.pcm, b.n) == PL_OK);
        CHECK(mp_stt_finalize(s) == PL_OK);
        while (mp_stt_pump(s) > 0)
            ;
        printf("    fresh decoder %5d Hz, all at once: \"%s\"\n", rates[i], r.finals);
        CHECK_STR(r.finals, texts[i]);
        mp_stt_close(s);
        free(b.pcm);
    }
    /* This engine has no language model: open vocabulary is refused at open. */
    mp_stt_config c = {.sample_rate = 8000};
    result r;
    result_init(&r);
    mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_inline, .user = &r};
    mp_stt_stream *s = NULL;
    CHECK(mp_stt_open(e, &c, &cb, &s) == PL_ERR_INVALID);
    mp_stt_local_stats st;
    mp_stt_local_stats_get(e, &st);
    CHECK(st.decoders_loaded == 1 && st.decoders_busy == 0);
    mp_stt_engine_free(e);
}

/* Open vocabulary: the full en-us language model. */
static void full_lm(void)
{
    const int rates[2] = {16000, 8000};
    for (int i = 0; i < 2; i++) {
        int rate = rates[i];
        buf b = speech(rate, "kal16", "hello world");
        result r;
        result_init(&r);
        mp_stt_config cfg = {.sample_rate = rate};
        mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_inline, .user = &r};
        mp_stt_stream *s = NULL;
        CHECK(mp_stt_open(stt, &cfg, &cb, &s) == PL_OK);
        if (s == NULL)
            continue;
        /* The first pump loads the language model (~0.4 s): once per decoder, timed apart. */
        double t0 = now();
        CHECK(mp_stt_feed(s, b.pcm, (size_t)rate / 10) == PL_OK);
        while (mp_stt_pump(s) > 0)
            ;
        r.woken = 0;
        double load = now() - t0;
        buf rest = {b.pcm + rate / 10, b.n - (size_t)rate / 10};
        t0 = now();
        transcribe(s, &r, &rest, rate);
        double dt = now() - t0, secs = (double)rest.n / rate;
        printf("    full lm %5d Hz \"hello world\" -> \"%s\" (interim \"%s\") lm load %.0f ms, "
               "%.2f s audio in %.0f ms (RTF %.3f)\n",
               rate, r.finals, r.interim, load * 1000, secs, dt * 1000, dt / secs);
        CHECK(strstr(r.finals, "hello") != NULL || strstr(r.finals, "world") != NULL);
        CHECK(r.replies == 1);
        mp_stt_close(s);
        free(b.pcm);
    }
}

/* ---- one worker thread serving every stream (stt.h's contract) ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mp_stt_stream *q[64];
    int head, len, stop;
} P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0};

static void pool_push(mp_stt_stream *s)
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
        mp_stt_stream *s = P.q[P.head];
        P.head = (P.head + 1) % 64;
        P.len--;
        pthread_mutex_unlock(&P.mu);
        if (mp_stt_pump(s) > 0)
            pool_push(s);
    }
}

static void on_wake_pool(void *user, mp_stt_stream *s)
{
    (void)user;
    pool_push(s);
}

static void worker_thread_serves_streams(void)
{
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    const char *texts[2] = {"yes please", "no thanks"};
    buf b[2];
    result r[3];
    mp_stt_stream *s[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        result_init(&r[i]);
        mp_stt_config cfg = {.sample_rate = 8000, .phrases = phrases, .n_phrases = N_PHRASES};
        mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_pool, .user = &r[i]};
        CHECK(mp_stt_open(stt, &cfg, &cb, &s[i]) == PL_OK);
    }
    for (int i = 0; i < 2; i++)
        b[i] = speech(8000, "kal16", texts[i]);
    /* The loop: frames of both calls interleaved, in real order, never waiting for decoding. */
    double t0 = now(), worst = 0, total = 0;
    int feeds = 0;
    for (size_t off = 0; off + 160 <= b[0].n || off + 160 <= b[1].n; off += 160) {
        for (int i = 0; i < 2; i++) {
            if (off + 160 <= b[i].n) {
                double f0 = now();
                CHECK(mp_stt_feed(s[i], b[i].pcm + off, 160) == PL_OK);
                double f = now() - f0;
                worst = f > worst ? f : worst;
                total += f;
                feeds++;
            }
        }
        if (off == 8000) /* the third call hangs up early, possibly mid-pump */
            mp_stt_close(s[2]);
        CHECK(mp_stt_feed(s[2 - (off < 8000 ? 0 : 2)], b[0].pcm + off, 0) == PL_OK);
    }
    for (int i = 0; i < 2; i++)
        CHECK(mp_stt_finalize(s[i]) == PL_OK);
    for (int wait = 0; wait < 1000; wait++) {
        pthread_mutex_lock(&r[0].mu);
        int d0 = r[0].replies;
        pthread_mutex_unlock(&r[0].mu);
        pthread_mutex_lock(&r[1].mu);
        int d1 = r[1].replies;
        pthread_mutex_unlock(&r[1].mu);
        if (d0 && d1)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("    worker: \"%s\" and \"%s\" in %.0f ms; feed %.1f us on average, %.1f us at worst\n",
           r[0].finals, r[1].finals, (now() - t0) * 1000, total / feeds * 1e6, worst * 1e6);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&r[i].mu);
        CHECK_STR(r[i].finals, texts[i]);
        CHECK(r[i].replies == 1);
        pthread_mutex_unlock(&r[i].mu);
        mp_stt_close(s[i]);
        free(b[i].pcm);
    }
    CHECK(total / feeds < 50e-6); /* feed only copies; the worst case is the scheduler's */
    pthread_mutex_lock(&P.mu);
    P.stop = 1;
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    pthread_join(th, NULL);
    mp_stt_local_stats st;
    mp_stt_local_stats_get(stt, &st);
    CHECK(st.decoders_busy == 0);
}

/* Pool limit, close with a pump pending, bad input. */
static void limits_and_errors(void)
{
    result r[4];
    mp_stt_stream *s[4] = {NULL, NULL, NULL, NULL};
    mp_stt_local_stats st;
    mp_stt_local_stats_get(stt, &st);
    int max = 3; /* as created in main */
    for (int i = 0; i < max; i++) {
        result_init(&r[i]);
        mp_stt_config cfg = {.sample_rate = 8000, .phrases = phrases, .n_phrases = 2};
        mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_inline, .user = &r[i]};
        CHECK(mp_stt_open(stt, &cfg, &cb, &s[i]) == PL_OK);
    }
    result_init(&r[3]);
    mp_stt_config cfg = {.sample_rate = 8000, .phrases = phrases, .n_phrases = 2};
    mp_stt_callbacks cb = {.on_event = on_event, .wake = on_wake_inline, .user = &r[3]};
    CHECK(mp_stt_open(stt, &cfg, &cb, &s[3]) == PL_ERR_TOOBIG); /* every decoder is taken */
    /* Close with a pump pending: the pump frees the stream without calling back. */
    int16_t frame[800] = {0};
    CHECK(mp_stt_feed(s[0], frame, 800) == PL_OK);
    CHECK(r[0].woken == 1);
    mp_stt_close(s[0]);
    CHECK(mp_stt_pump(r[0].s) == 0);
    CHECK(r[0].n_finals == 0);
    /* A full buffer refuses audio (the workers are behind) instead of growing. */
    int refused = 0;
    for (int i = 0; i < 100 && !refused; i++)
        refused = mp_stt_feed(s[1], frame, 800) == PL_ERR_TOOBIG;
    CHECK(refused);
    mp_stt_close(s[1]);
    CHECK(mp_stt_pump(r[1].s) == 0);
    mp_stt_close(s[2]);
    /* Phrases none of whose words the dictionary knows: an ERROR event, then feed refuses. */
    const char *unknown[] = {"xyzzyq plughh"};
    mp_stt_config bad = {.sample_rate = 8000, .phrases = unknown, .n_phrases = 1};
    CHECK(mp_stt_open(stt, &bad, &cb, &s[3]) == PL_OK);
    CHECK(mp_stt_finalize(s[3]) == PL_OK);
    while (mp_stt_pump(s[3]) > 0)
        ;
    CHECK(r[3].errors == 1);
    CHECK(mp_stt_feed(s[3], frame, 160) == PL_ERR_INVALID);
    mp_stt_close(s[3]);
    /* Bad configs. */
    mp_stt_config c2 = {.sample_rate = 100};
    CHECK(mp_stt_open(stt, &c2, &cb, &s[3]) == PL_ERR_INVALID);
    c2.sample_rate = 8000;
    c2.language = "hi";
    CHECK(mp_stt_open(stt, &c2, &cb, &s[3]) == PL_ERR_INVALID);
    const char *punct[] = {"?!", "..."};
    mp_stt_config c3 = {.sample_rate = 8000, .phrases = punct, .n_phrases = 2};
    CHECK(mp_stt_open(stt, &c3, &cb, &s[3]) == PL_ERR_INVALID);
    mp_stt_local_stats_get(stt, &st);
    CHECK(st.decoders_busy == 0 && st.decoders_loaded <= max);
}

static void cost_summary(void)
{
    mp_stt_local_stats st;
    mp_stt_local_stats_get(stt, &st);
    double secs = st.samples_decoded / 16000.0;
    printf("    pocketsphinx: %.1f s of audio decoded in %.0f ms (RTF %.3f, all modes); "
           "%d decoders loaded, %llu samples dropped\n",
           secs, st.decode_ns / 1e6, secs > 0 ? st.decode_ns / 1e9 / secs : 0, st.decoders_loaded,
           (unsigned long long)st.samples_dropped);
    CHECK(st.samples_decoded > 0);
}

int main(void)
{
    double t0 = now();
    if (mp_tts_local_new(&tts) != PL_OK) {
        printf("cannot create the local TTS engine\n");
        return 1;
    }
    mp_stt_local_config cfg = {.max_decoders = 3, .preload = 1};
    if (mp_stt_local_new(&cfg, &stt) != PL_OK) {
        printf("cannot create the local STT engine (pocketsphinx-en-us installed?)\n");
        return 1;
    }
    printf("    engines ready in %.0f ms (one decoder preloaded)\n", (now() - t0) * 1000);
    RUN(grammar_16k);
    RUN(grammar_8k);
    RUN(jsgf_grammar);
    RUN(fresh_decoder);
    RUN(full_lm);
    RUN(worker_thread_serves_streams);
    RUN(limits_and_errors);
    RUN(cost_summary);
    mp_stt_engine_free(stt);
    mp_tts_engine_free(tts);
    return check_summary();
}
