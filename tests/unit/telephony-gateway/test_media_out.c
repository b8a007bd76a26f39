/* The carriers' outbound media messages (reference/providers.md §1-3: media / playAudio, mark /
 * checkpoint, clear / clearAudio) checked field by field, payloads decoded back; and the
 * playout that cuts the pipeline's frames into them (coalescing, Exotel's minimum chunk, marks
 * after their audio, clears, the idle tail). */
#include <cjson/cJSON.h>

#include "carrier.h"
#include "check.h"
#include "codec.h"
#include "error.h"
#include "playout.h"

#define SID "MZ0123456789abcdef0123456789abcdef"

static int16_t tone[9600]; /* 200 ms at 48 kHz of a ramp that covers the μ-law range */

static void fill_tone(void)
{
    for (size_t i = 0; i < sizeof(tone) / sizeof(tone[0]); i++)
        tone[i] = (int16_t)((long)(i * 7919 % 65536) - 32768);
}

/* Renders a message with a buffer gw_media_out_cap sized, and parses it. */
static cJSON *render(const gw_carrier *car, gw_out_kind kind, int rate, const int16_t *pcm,
                     size_t n, const char *name)
{
    size_t cap = gw_media_out_cap(n, strlen(SID));
    char *buf = malloc(cap);
    long len = car->media_out(kind, SID, rate, pcm, n, name, buf, cap);
    CHECK(len > 0 && (size_t)len == strlen(buf));
    cJSON *j = len > 0 ? cJSON_ParseWithLength(buf, (size_t)len) : NULL;
    CHECK(j != NULL);
    free(buf);
    return j;
}

static int nkeys(const cJSON *o)
{
    return cJSON_GetArraySize(o);
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *obj(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* The base64 payload decoded: its byte count, into out. */
static long decode(const char *b64, uint8_t *out, size_t cap)
{
    return b64 != NULL ? pl_base64_decode(b64, strlen(b64), out, cap) : -1;
}

static void twilio_media_is_ulaw(void)
{
    cJSON *j = render(&gw_twilio, GW_OUT_MEDIA, 8000, tone, 800, NULL);
    CHECK(nkeys(j) == 3);
    CHECK_STR(str(j, "event"), "media");
    CHECK_STR(str(j, "streamSid"), SID);
    const cJSON *media = obj(j, "media");
    CHECK(nkeys(media) == 1);
    uint8_t got[1000], want[800];
    CHECK(decode(str(media, "payload"), got, sizeof(got)) == 800);
    pl_ulaw_encode(tone, 800, want);
    CHECK(memcmp(got, want, 800) == 0);
    int16_t back[800]; /* and it decodes to the audio, within μ-law's step */
    pl_ulaw_decode(got, 800, back);
    int close = 1;
    for (int i = 0; i < 800; i++)
        close &= abs(back[i] - tone[i]) <= (abs(tone[i]) >> 4) + 8;
    CHECK(close);
    cJSON_Delete(j);
}

static void twilio_mark_and_clear(void)
{
    cJSON *j = render(&gw_twilio, GW_OUT_MARK, 8000, NULL, 0, "c7");
    CHECK(nkeys(j) == 3);
    CHECK_STR(str(j, "event"), "mark");
    CHECK_STR(str(j, "streamSid"), SID);
    CHECK(nkeys(obj(j, "mark")) == 1);
    CHECK_STR(str(obj(j, "mark"), "name"), "c7");
    cJSON_Delete(j);
    j = render(&gw_twilio, GW_OUT_CLEAR, 8000, NULL, 0, NULL);
    CHECK(nkeys(j) == 2);
    CHECK_STR(str(j, "event"), "clear");
    CHECK_STR(str(j, "streamSid"), SID);
    cJSON_Delete(j);
}

static void plivo_play_audio_is_l16(void)
{
    cJSON *j = render(&gw_plivo, GW_OUT_MEDIA, 16000, tone, 1600, NULL);
    CHECK(nkeys(j) == 2);
    CHECK_STR(str(j, "event"), "playAudio");
    const cJSON *media = obj(j, "media");
    CHECK(nkeys(media) == 3);
    CHECK_STR(str(media, "contentType"), "audio/x-l16");
    const cJSON *rate = obj(media, "sampleRate");
    CHECK(cJSON_IsNumber(rate) && rate->valueint == 16000);
    uint8_t got[4000], want[3200];
    CHECK(decode(str(media, "payload"), got, sizeof(got)) == 3200);
    pl_pcm16le_encode(tone, 1600, want);
    CHECK(memcmp(got, want, 3200) == 0);
    CHECK(got[0] == (uint8_t)(tone[0] & 0xff) && got[1] == (uint8_t)((uint16_t)tone[0] >> 8));
    cJSON_Delete(j);
    j = render(&gw_plivo, GW_OUT_MEDIA, 8000, tone, 160, NULL);
    CHECK(obj(obj(j, "media"), "sampleRate")->valueint == 8000);
    cJSON_Delete(j);
}

static void plivo_checkpoint_and_clear_audio(void)
{
    cJSON *j = render(&gw_plivo, GW_OUT_MARK, 16000, NULL, 0, "c12");
    CHECK(nkeys(j) == 3);
    CHECK_STR(str(j, "event"), "checkpoint");
    CHECK_STR(str(j, "streamId"), SID);
    CHECK_STR(str(j, "name"), "c12");
    cJSON_Delete(j);
    j = render(&gw_plivo, GW_OUT_CLEAR, 16000, NULL, 0, NULL);
    CHECK(nkeys(j) == 2);
    CHECK_STR(str(j, "event"), "clearAudio");
    CHECK_STR(str(j, "streamId"), SID);
    cJSON_Delete(j);
}

static void exotel_media_mark_clear(void)
{
    cJSON *j = render(&gw_exotel, GW_OUT_MEDIA, 16000, tone, 1600, NULL);
    CHECK(nkeys(j) == 3);
    CHECK_STR(str(j, "event"), "media");
    CHECK_STR(str(j, "stream_sid"), SID);
    CHECK(nkeys(obj(j, "media")) == 1);
    uint8_t got[4000], want[3200];
    CHECK(decode(str(obj(j, "media"), "payload"), got, sizeof(got)) == 3200);
    pl_pcm16le_encode(tone, 1600, want);
    CHECK(memcmp(got, want, 3200) == 0);
    cJSON_Delete(j);
    j = render(&gw_exotel, GW_OUT_MARK, 16000, NULL, 0, "c3");
    CHECK_STR(str(j, "event"), "mark");
    CHECK_STR(str(j, "stream_sid"), SID);
    CHECK_STR(str(obj(j, "mark"), "name"), "c3");
    cJSON_Delete(j);
    j = render(&gw_exotel, GW_OUT_CLEAR, 16000, NULL, 0, NULL);
    CHECK(nkeys(j) == 2);
    CHECK_STR(str(j, "event"), "clear");
    CHECK_STR(str(j, "stream_sid"), SID);
    cJSON_Delete(j);
    CHECK(gw_exotel.media_out_min == 3200 && gw_twilio.media_out_min == 0);
}

static void names_are_escaped_and_buffers_bounded(void)
{
    const char *odd = "say \"hi\"\\\n\x01\xc3\xa9";
    const gw_carrier *cars[] = {&gw_twilio, &gw_plivo, &gw_exotel};
    for (int i = 0; i < 3; i++) {
        cJSON *j = render(cars[i], GW_OUT_MARK, 8000, NULL, 0, odd);
        const char *name = i == 1 ? str(j, "name") : str(obj(j, "mark"), "name");
        CHECK_STR(name, odd);
        cJSON_Delete(j);
        /* Too small a buffer: -1, never a truncated message. */
        char small[64];
        for (size_t cap = 0; cap < sizeof(small); cap++)
            CHECK(cars[i]->media_out(GW_OUT_MEDIA, SID, 8000, tone, 160, NULL, small, cap) == -1);
        char big[8192];
        long len = cars[i]->media_out(GW_OUT_MEDIA, SID, 8000, tone, 160, NULL, big, sizeof(big));
        CHECK(len > 0);
        CHECK(cars[i]->media_out(GW_OUT_MEDIA, SID, 8000, tone, 160, NULL, big, (size_t)len) == -1);
        CHECK(cars[i]->media_out(GW_OUT_MEDIA, SID, 8000, tone, 160, NULL, big, (size_t)len + 1) ==
              len);
    }
    /* The largest message the playout renders fits the buffer it sizes: 200 ms at 48 kHz. */
    size_t cap = gw_media_out_cap(9600, strlen(SID));
    char *buf = malloc(cap);
    for (int i = 0; i < 3; i++)
        CHECK(cars[i]->media_out(GW_OUT_MEDIA, SID, 48000, tone, 9600, NULL, buf, cap) > 0);
    char name[GW_MARK_MAX + 1];
    memset(name, '"', GW_MARK_MAX);
    name[GW_MARK_MAX] = '\0';
    for (int i = 0; i < 3; i++)
        CHECK(cars[i]->media_out(GW_OUT_MARK, SID, 8000, NULL, 0, name, buf, cap) > 0);
    free(buf);
}

/* ---- playout ---- */

#define MAX_SENT 32

typedef struct {
    int n;
    cJSON *msg[MAX_SENT];
} sent_log;

static int record(void *ctx, const char *text, size_t len)
{
    sent_log *l = ctx;
    if (l->n < MAX_SENT)
        l->msg[l->n++] = cJSON_ParseWithLength(text, len);
    return 0;
}

static void sent_reset(sent_log *l)
{
    for (int i = 0; i < l->n; i++)
        cJSON_Delete(l->msg[i]);
    l->n = 0;
}

/* Samples carried by a Twilio (μ-law) or Exotel / Plivo (PCM16) media message; -1 otherwise. */
static long samples_of(const cJSON *m)
{
    const char *ev = str(m, "event");
    if (ev == NULL || (strcmp(ev, "media") != 0 && strcmp(ev, "playAudio") != 0))
        return -1;
    uint8_t raw[40000];
    long n = decode(str(obj(m, "media"), "payload"), raw, sizeof(raw));
    return str(m, "streamSid") != NULL ? n : n / 2;
}

/* n 20 ms frames at rate as PCM16 LE, from the ramp. */
static size_t frames(uint8_t *out, int rate, int n)
{
    size_t samples = (size_t)(rate / 50 * n);
    pl_pcm16le_encode(tone, samples, out);
    return samples * 2;
}

static void playout_coalesces_a_message_of_frames(void)
{
    sent_log l = {0};
    gw_playout p;
    CHECK(gw_playout_init(&p, &gw_twilio, SID, 8000, record, &l) == PL_OK);
    uint8_t le[8000];
    size_t bytes = frames(le, 8000, 5);
    for (int i = 0; i < 5; i++) /* five AUDIO records of one relay message */
        gw_playout_audio(&p, le + i * 320, 320, 1000);
    CHECK(l.n == 0);
    gw_playout_flush(&p, 0); /* the message has been read */
    CHECK(l.n == 1 && samples_of(l.msg[0]) == 800);
    uint8_t got[800], want[800];
    decode(str(obj(l.msg[0], "media"), "payload"), got, sizeof(got));
    pl_ulaw_encode(tone, 800, want);
    CHECK(memcmp(got, want, 800) == 0);
    CHECK(bytes == 1600);
    /* More than 200 ms at once leaves in 200 ms messages. */
    sent_reset(&l);
    uint8_t big[2 * 8000];
    bytes = frames(big, 8000, 25);
    gw_playout_audio(&p, big, bytes, 1020);
    gw_playout_flush(&p, 0);
    CHECK(l.n == 3 && samples_of(l.msg[0]) == 1600 && samples_of(l.msg[1]) == 1600 &&
          samples_of(l.msg[2]) == 800);
    CHECK(p.sent == 4 && p.lost == 0);
    sent_reset(&l);
    gw_playout_free(&p);
}

static void playout_marks_follow_their_audio(void)
{
    sent_log l = {0};
    gw_playout p;
    CHECK(gw_playout_init(&p, &gw_plivo, SID, 16000, record, &l) == PL_OK);
    uint8_t le[2000];
    gw_playout_audio(&p, le, frames(le, 16000, 2), 1000);
    CHECK(gw_playout_mark(&p, "c1xx", 2) == 0); /* not NUL-terminated: 2 bytes */
    CHECK(l.n == 2);
    CHECK(samples_of(l.msg[0]) == 640); /* no minimum on Plivo: no padding */
    CHECK_STR(str(l.msg[1], "event"), "checkpoint");
    CHECK_STR(str(l.msg[1], "name"), "c1");
    char huge[GW_MARK_MAX + 1];
    memset(huge, 'x', sizeof(huge));
    CHECK(gw_playout_mark(&p, huge, sizeof(huge)) == -1);
    CHECK(l.n == 2);
    sent_reset(&l);
    gw_playout_free(&p);
}

static void playout_exotel_minimum_chunk(void)
{
    sent_log l = {0};
    gw_playout p;
    CHECK(gw_playout_init(&p, &gw_exotel, SID, 16000, record, &l) == PL_OK);
    uint8_t le[8000];
    frames(le, 16000, 6);
    /* 40 ms per relay message: kept until 3.2 KB (100 ms at 16 kHz) is staged. */
    gw_playout_audio(&p, le, 1280, 1000);
    gw_playout_flush(&p, 0);
    gw_playout_audio(&p, le + 1280, 1280, 1040);
    gw_playout_flush(&p, 0);
    CHECK(l.n == 0);
    gw_playout_audio(&p, le + 2560, 1280, 1080);
    gw_playout_flush(&p, 0);
    CHECK(l.n == 1 && samples_of(l.msg[0]) == 1920); /* 3840 B: ≥ 3.2 KB, a multiple of 320 */
    /* A tail before a mark is padded with silence to the minimum, then the mark. */
    gw_playout_audio(&p, le, 640, 1100);
    gw_playout_mark(&p, "c9", 2);
    CHECK(l.n == 3 && samples_of(l.msg[1]) == 1600);
    CHECK_STR(str(l.msg[2], "event"), "mark");
    uint8_t raw[3200];
    CHECK(decode(str(obj(l.msg[1], "media"), "payload"), raw, sizeof(raw)) == 3200);
    int silent = 1;
    for (int i = 640; i < 3200; i++)
        silent &= raw[i] == 0;
    CHECK(silent && memcmp(raw, le, 640) == 0);
    /* A tail with no audio after it goes out padded once it is idle. */
    sent_reset(&l);
    gw_playout_audio(&p, le, 640, 2000);
    gw_playout_idle(&p, 2000 + GW_PLAYOUT_IDLE_MS - 1);
    CHECK(l.n == 0);
    gw_playout_idle(&p, 2000 + GW_PLAYOUT_IDLE_MS);
    CHECK(l.n == 1 && samples_of(l.msg[0]) == 1600);
    /* A clear drops the staged tail and is sent at once. */
    sent_reset(&l);
    gw_playout_audio(&p, le, 640, 3000);
    gw_playout_clear(&p);
    gw_playout_flush(&p, 1);
    CHECK(l.n == 1);
    CHECK_STR(str(l.msg[0], "event"), "clear");
    sent_reset(&l);
    gw_playout_free(&p);
    /* At 8 kHz the minimum is 200 ms: one message per 3.2 KB, odd bytes ignored. */
    CHECK(gw_playout_init(&p, &gw_exotel, SID, 8000, record, &l) == PL_OK);
    frames(le, 8000, 11);
    gw_playout_audio(&p, le, 3521, 1000);
    gw_playout_flush(&p, 0);
    CHECK(l.n == 1 && samples_of(l.msg[0]) == 1600 && p.have == 160);
    sent_reset(&l);
    gw_playout_free(&p);
}

int main(void)
{
    fill_tone();
    RUN(twilio_media_is_ulaw);
    RUN(twilio_mark_and_clear);
    RUN(plivo_play_audio_is_l16);
    RUN(plivo_checkpoint_and_clear_audio);
    RUN(exotel_media_mark_clear);
    RUN(names_are_escaped_and_buffers_bounded);
    RUN(playout_coalesces_a_message_of_frames);
    RUN(playout_marks_follow_their_audio);
    RUN(playout_exotel_minimum_chunk);
    return check_summary();
}
