#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define MAX_SERIES 256
#define NBUCKETS   10

static const double bucket_le[NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,  0.1,    0.5,   1.0,  10.0};

struct pl_metric {
    char name[64];
    char labels[128];
    const char *help;
    const char *type;
    _Atomic int64_t value;
};

struct pl_histogram {
    char name[64];
    char labels[128];
    const char *help;
    _Atomic uint64_t buckets[NBUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pl_metric *series[MAX_SERIES];
static int nseries;
static pl_histogram *histos[MAX_SERIES];
static int nhistos;

static pl_metric *reg(const char *name, const char *labels, const char *help, const char *type)
{
    pthread_mutex_lock(&reg_mu);
    pl_metric *m = NULL;
    for (int i = 0; i < nseries; i++)
        if (strcmp(series[i]->name, name) == 0 &&
            strcmp(series[i]->labels, labels != NULL ? labels : "") == 0)
            m = series[i];
    if (m == NULL && nseries < MAX_SERIES && (m = calloc(1, sizeof(*m))) != NULL) {
        snprintf(m->name, sizeof(m->name), "%s", name);
        snprintf(m->labels, sizeof(m->labels), "%s", labels != NULL ? labels : "");
        m->help = help;
        m->type = type;
        series[nseries++] = m;
    }
    pthread_mutex_unlock(&reg_mu);
    return m;
}

pl_metric *pl_metric_counter(const char *name, const char *labels, const char *help)
{
    return reg(name, labels, help, "counter");
}

pl_metric *pl_metric_gauge(const char *name, const char *labels, const char *help)
{
    return reg(name, labels, help, "gauge");
}

void pl_metric_add(pl_metric *m, int64_t delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
}

void pl_metric_set(pl_metric *m, int64_t value)
{
    if (m != NULL)
        atomic_store_explicit(&m->value, value, memory_order_relaxed);
}

int64_t pl_metric_get(const pl_metric *m)
{
    return m != NULL ? atomic_load_explicit(&m->value, memory_order_relaxed) : 0;
}

pl_histogram *pl_histogram_new(const char *name, const char *labels, const char *help)
{
    pl_histogram *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->labels, sizeof(h->labels), "%s", labels != NULL ? labels : "");
    h->help = help;
    pthread_mutex_lock(&reg_mu);
    if (nhistos < MAX_SERIES)
        histos[nhistos++] = h;
    pthread_mutex_unlock(&reg_mu);
    return h;
}

void pl_histogram_observe(pl_histogram *h, double seconds)
{
    if (h == NULL)
        return;
    for (int i = 0; i < NBUCKETS; i++)
        if (seconds <= bucket_le[i]) {
            atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
            break;
        }
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (*len < cap)                                                                            \
            *len += (size_t)snprintf(buf + *len, cap - *len, __VA_ARGS__);                         \
    } while (0)

void pl_metrics_render(char *buf, size_t cap, size_t *len)
{
    pthread_mutex_lock(&reg_mu);
    const char *last = "";
    for (int i = 0; i < nseries; i++) {
        pl_metric *m = series[i];
        if (strcmp(last, m->name) != 0)
            APPEND("# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
        last = m->name;
        APPEND("%s%s%s%s %lld\n", m->name, m->labels[0] ? "{" : "", m->labels,
               m->labels[0] ? "}" : "", (long long)pl_metric_get(m));
    }
    last = "";
    for (int i = 0; i < nhistos; i++) {
        pl_histogram *h = histos[i];
        const char *sep = h->labels[0] ? "," : "";
        if (strcmp(last, h->name) != 0)
            APPEND("# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
        last = h->name;
        uint64_t cum = 0;
        for (int b = 0; b < NBUCKETS; b++) {
            cum += atomic_load(&h->buckets[b]);
            APPEND("%s_bucket{%s%sle=\"%g\"} %llu\n", h->name, h->labels, sep, bucket_le[b],
                   (unsigned long long)cum);
        }
        uint64_t count = atomic_load(&h->count);
        APPEND("%s_bucket{%s%sle=\"+Inf\"} %llu\n", h->name, h->labels, sep,
               (unsigned long long)count);
        APPEND("%s_sum%s%s%s %.6f\n", h->name, h->labels[0] ? "{" : "", h->labels,
               h->labels[0] ? "}" : "", (double)atomic_load(&h->sum_us) / 1e6);
        APPEND("%s_count%s%s%s %llu\n", h->name, h->labels[0] ? "{" : "", h->labels,
               h->labels[0] ? "}" : "", (unsigned long long)count);
    }
    pthread_mutex_unlock(&reg_mu);
    if (*len >= cap)
        *len = cap - 1;
}
