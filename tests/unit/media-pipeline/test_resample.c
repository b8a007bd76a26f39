/* resample: a 1 kHz tone keeps its frequency (zero crossings) through 8k->16k, 16k->8k and the
 * other call rates; a stream fed in 20 ms frames ends with exactly in * out / in samples; the cost
 * of a second of audio is printed. */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "error.h"
#include "resample.h"

#define MAX_SAMPLES (48000 * 4)

static int16_t in_buf[MAX_SAMPLES], out_buf[MAX_SAMPLES * 6];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void tone(int16_t *buf, size_t n, int rate, double hz, double amp)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (int16_t)lrint(amp * sin(2 * M_PI * hz * (double)i / rate));
}

/* Frequency from sign changes over [from, to) samples, with linear interpolation of the first
 * and last crossing so the estimate does not depend on where the window falls. */
static double frequency(const int16_t *buf, size_t from, size_t to, int rate)
{
    double first = -1, last = -1;
    int crossings = 0;
    for (size_t i = from + 1; i < to; i++) {
        if ((buf[i - 1] < 0) != (buf[i] < 0)) {
            double t = (double)(i - 1) + (double)buf[i - 1] / ((double)buf[i - 1] - buf[i]);
            if (first < 0)
                first = t;
            last = t;
            crossings++;
        }
    }
    if (crossings < 2)
        return 0;
    return (double)(crossings - 1) / 2.0 / ((last - first) / rate);
}

/* Streams `seconds` of a 1 kHz tone at in_rate through a resampler in 20 ms frames, drains it,
 * and checks the output length and frequency. */
static void convert(int in_rate, int out_rate)
{
    size_t n = (size_t)in_rate * 2; /* 2 s */
    tone(in_buf, n, in_rate, 1000.0, 12000.0);
    mp_resampler r;
    CHECK(mp_resampler_init(&r, in_rate, out_rate) == PL_OK);
    size_t frame = (size_t)in_rate / 50, total = 0;
    /* 22050 Hz has no whole 20 ms frame: the last frame is shorter. */
    for (size_t off = 0; off < n; off += frame) {
        size_t k = n - off < frame ? n - off : frame, got = 0;
        CHECK(mp_resampler_process(&r, in_buf + off, k, out_buf + total,
                                   mp_resampler_out_max(&r, k), &got) == PL_OK);
        total += got;
    }
    size_t got = 0;
    CHECK(mp_resampler_drain(&r, out_buf + total, mp_resampler_out_max(&r, 0), &got) == PL_OK);
    total += got;
    size_t expect = (size_t)((uint64_t)n * (uint64_t)out_rate / (uint64_t)in_rate);
    size_t out_frame = (size_t)out_rate / 50;
    CHECK(total + out_frame >= expect && total <= expect + out_frame); /* ±1 frame */
    CHECK(total == expect); /* and in fact exact, thanks to drain */
    /* Ignore the filter's edges (10 ms each side). */
    double hz =
        frequency(out_buf, (size_t)out_rate / 100, total - (size_t)out_rate / 100, out_rate);
    printf("    %5d -> %5d Hz: %zu -> %zu samples, tone %.2f Hz\n", in_rate, out_rate, n, total,
           hz);
    CHECK(fabs(hz - 1000.0) < 10.0); /* within 1% */
    /* Amplitude survives (no attenuation of an in-band tone beyond a dB or so). */
    int peak = 0;
    for (size_t i = total / 4; i < total * 3 / 4; i++)
        peak = abs(out_buf[i]) > peak ? abs(out_buf[i]) : peak;
    CHECK(peak > 10000 && peak < 14000);
    mp_resampler_free(&r);
}

static void up_8k_to_16k(void)
{
    convert(8000, 16000);
}

static void down_16k_to_8k(void)
{
    convert(16000, 8000);
}

static void other_call_rates(void)
{
    convert(22050, 8000);
    convert(22050, 16000);
    convert(24000, 8000);
    convert(24000, 16000);
    convert(8000, 24000);
    convert(16000, 22050);
}

/* Output sample k is aligned with input time k/out_rate: the start-up delay is skipped. */
static void output_is_time_aligned(void)
{
    size_t n = 8000;
    tone(in_buf, n, 8000, 1000.0, 12000.0);
    mp_resampler r;
    CHECK(mp_resampler_init(&r, 8000, 16000) == PL_OK);
    size_t got = 0, more = 0;
    CHECK(mp_resampler_process(&r, in_buf, n, out_buf, sizeof(out_buf) / 2, &got) == PL_OK);
    CHECK(mp_resampler_drain(&r, out_buf + got, sizeof(out_buf) / 2 - got, &more) == PL_OK);
    /* Compare with the ideal 16 kHz tone in the middle: small error means no delay. */
    double err = 0, ref = 0;
    for (size_t i = 4000; i < 12000; i++) {
        double ideal = 12000.0 * sin(2 * M_PI * 1000.0 * (double)i / 16000);
        err += (out_buf[i] - ideal) * (out_buf[i] - ideal);
        ref += ideal * ideal;
    }
    CHECK(err / ref < 0.01); /* better than -20 dB */
    mp_resampler_free(&r);
}

static void same_rate_copies_and_bad_rates_fail(void)
{
    mp_resampler r;
    CHECK(mp_resampler_init(&r, 8000, 8000) == PL_OK);
    int16_t a[3] = {1, -2, 3}, b[3] = {0};
    size_t got = 0;
    CHECK(mp_resampler_process(&r, a, 3, b, 3, &got) == PL_OK);
    CHECK(got == 3 && b[0] == 1 && b[1] == -2 && b[2] == 3);
    CHECK(mp_resampler_process(&r, a, 3, b, 2, &got) == PL_ERR_TOOBIG);
    mp_resampler_free(&r);
    CHECK(mp_resampler_init(&r, 0, 8000) == PL_ERR_INVALID);
    CHECK(mp_resampler_init(&r, 8000, 1000000) == PL_ERR_INVALID);
    mp_resampler_free(&r); /* safe on a failed init */
    /* An output buffer too small is reported, not overrun. */
    CHECK(mp_resampler_init(&r, 8000, 16000) == PL_OK);
    tone(in_buf, 160, 8000, 1000.0, 1000.0);
    CHECK(mp_resampler_process(&r, in_buf, 160, out_buf, 100, &got) == PL_ERR_TOOBIG);
    CHECK(got <= 100);
    mp_resampler_free(&r);
}

/* Cost on this machine: 60 s of 8 kHz audio to 16 kHz in 20 ms frames. */
static void cost(void)
{
    tone(in_buf, 160, 8000, 440.0, 8000.0);
    mp_resampler r;
    CHECK(mp_resampler_init(&r, 8000, 16000) == PL_OK);
    double t0 = now();
    for (int f = 0; f < 3000; f++) {
        size_t got = 0;
        mp_resampler_process(&r, in_buf, 160, out_buf, 400, &got);
    }
    double dt = now() - t0;
    printf("    8k->16k: %.1f us per 20 ms frame (RTF %.5f)\n", dt / 3000 * 1e6, dt / 60.0);
    CHECK(dt < 1.0);
    mp_resampler_free(&r);
}

int main(void)
{
    RUN(up_8k_to_16k);
    RUN(down_16k_to_8k);
    RUN(other_call_rates);
    RUN(output_is_time_aligned);
    RUN(same_rate_copies_and_bad_rates_fail);
    RUN(cost);
    return check_summary();
}
