/* parley-transcribe: transcribes a WAV file with the media-pipeline's local transcriber
 * (pocketsphinx, the same engine and settings a call uses) and prints the text on one line.
 * For operators checking a recording, and for tests that check what a callee heard.
 *
 *   parley-transcribe [--phrases "yes|no|talk to a human"] FILE.wav
 *
 * Stereo files are mixed to mono. Exit status 0 with the text (possibly empty), 1 on a file or
 * engine error (reason on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/media-pipeline/stt.h"
#include "../../services/media-pipeline/wav.h"

#define MAX_BYTES (512u * 1024 * 1024)

typedef struct {
    char text[65536];
    size_t len;
    int woken;
    int failed;
} out;

static void on_event(void *user, const mp_stt_event *ev)
{
    out *o = user;
    if (ev->kind == MP_STT_ERROR) {
        fprintf(stderr, "transcriber error: %s\n", ev->text);
        o->failed = 1;
        return;
    }
    if (ev->kind != MP_STT_FINAL || ev->text[0] == '\0')
        return;
    int n =
        snprintf(o->text + o->len, sizeof(o->text) - o->len, "%s%s", o->len ? " " : "", ev->text);
    if (n > 0 && o->len + (size_t)n < sizeof(o->text))
        o->len += (size_t)n;
}

static void wake(void *user, mp_stt_stream *s)
{
    (void)s;
    ((out *)user)->woken = 1;
}

static void pump_all(out *o, mp_stt_stream *s)
{
    while (o->woken) {
        o->woken = 0;
        while (mp_stt_pump(s) > 0)
            ;
    }
}

int main(int argc, char **argv)
{
    const char *phrases_arg = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--phrases") == 0 && i + 1 < argc)
            phrases_arg = argv[++i];
        else if (argv[i][0] != '-')
            path = argv[i];
    }
    if (path == NULL) {
        fprintf(stderr, "usage: parley-transcribe [--phrases \"a|b|c\"] FILE.wav\n");
        return 2;
    }
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0;
    char err[256];
    if (mp_wav_read_file(path, MAX_BYTES, &pcm, &n, &rate, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", path, err);
        return 1;
    }
    const char *phrases[64];
    size_t nphrases = 0;
    char *copy = phrases_arg != NULL ? strdup(phrases_arg) : NULL;
    for (char *save = NULL, *p = copy != NULL ? strtok_r(copy, "|", &save) : NULL;
         p != NULL && nphrases < 64; p = strtok_r(NULL, "|", &save))
        phrases[nphrases++] = p;
    mp_stt_local_config lc = {.max_decoders = 1};
    mp_stt_engine *e = NULL;
    if (mp_stt_local_new(&lc, &e) != 0) {
        fprintf(stderr, "local transcriber: models missing under %s\n", MP_STT_LOCAL_MODEL_DIR);
        return 1;
    }
    static out o;
    mp_stt_config sc = {.sample_rate = rate,
                        .language = "en",
                        .phrases = nphrases ? phrases : NULL,
                        .n_phrases = nphrases};
    mp_stt_callbacks cb = {.on_event = on_event, .wake = wake, .user = &o};
    mp_stt_stream *s = NULL;
    if (mp_stt_open(e, &sc, &cb, &s) != 0) {
        fprintf(stderr, "cannot open a transcriber stream at %d Hz\n", rate);
        return 1;
    }
    size_t step = (size_t)rate / 50;
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        while (mp_stt_feed(s, pcm + off, k) != 0)
            pump_all(&o, s);
        pump_all(&o, s);
    }
    mp_stt_finalize(s);
    pump_all(&o, s);
    mp_stt_close(s);
    mp_stt_engine_free(e);
    free(pcm);
    free(copy);
    printf("%s\n", o.text);
    return o.failed ? 1 : 0;
}
