/* metrics: counters, histograms, the Prometheus text format. */
#include "check.h"
#include "metrics.h"

static void metrics_render(void)
{
    pl_metric *a = pl_metric_counter("t_total", "k=\"a\"", "test counter");
    pl_metric *b = pl_metric_counter("t_total", "k=\"b\"", "test counter");
    CHECK(pl_metric_counter("t_total", "k=\"a\"", "test counter") == a);
    pl_metric_add(a, 3);
    pl_metric_add(b, 1);
    pl_histogram *h = pl_histogram_new("t_seconds", NULL, "test histogram");
    pl_histogram_observe(h, 0.002);
    pl_histogram_observe(h, 2.0);
    char buf[8192];
    size_t len = 0;
    pl_metrics_render(buf, sizeof(buf), &len);
    CHECK(strstr(buf, "# TYPE t_total counter\n") != NULL);
    CHECK(strstr(buf, "t_total{k=\"a\"} 3\n") != NULL);
    CHECK(strstr(buf, "t_total{k=\"b\"} 1\n") != NULL);
    CHECK(strstr(buf, "t_seconds_bucket{le=\"0.0025\"} 1\n") != NULL);
    CHECK(strstr(buf, "t_seconds_bucket{le=\"+Inf\"} 2\n") != NULL);
    CHECK(strstr(buf, "t_seconds_count 2\n") != NULL);
}

int main(void)
{
    RUN(metrics_render);
    return check_summary();
}
