/* crypto, config and log: the small pure modules. */
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "config.h"
#include "crypto.h"
#include "log.h"
#include "metrics.h"

static void sha256_vector(void)
{
    char out[65];
    pl_sha256_hex("abc", 3, out);
    CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void hmac_rfc4231_case2(void)
{
    char out[65];
    const char *data = "what do ya want for nothing?";
    pl_hmac_sha256_hex("Jefe", 4, data, strlen(data), out);
    CHECK_STR(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void random_and_compare(void)
{
    char a[33], b[33];
    CHECK(pl_random_hex(a, 16) == 0);
    CHECK(pl_random_hex(b, 16) == 0);
    CHECK(strlen(a) == 32);
    CHECK(strcmp(a, b) != 0);
    CHECK(pl_secure_equal("abc", "abc"));
    CHECK(!pl_secure_equal("abc", "abd"));
    CHECK(!pl_secure_equal("abc", "abcd"));
}

typedef struct {
    const char *name;
    long port;
    int flag;
} demo_cfg;

static const pl_cfg_opt demo_opts[] = {
    {"T_NAME", PL_CFG_STR, offsetof(demo_cfg, name), "dflt", 0, 0, "a name"},
    {"T_PORT", PL_CFG_INT, offsetof(demo_cfg, port), "8080", 1, 65535, "a port"},
    {"T_FLAG", PL_CFG_BOOL, offsetof(demo_cfg, flag), "false", 0, 0, "a flag"},
};

static void config_defaults_and_env(void)
{
    demo_cfg c;
    char err[256];
    unsetenv("T_NAME");
    unsetenv("T_PORT");
    unsetenv("T_FLAG");
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) == 0);
    CHECK_STR(c.name, "dflt");
    CHECK(c.port == 8080);
    CHECK(c.flag == 0);
    setenv("T_NAME", "x", 1);
    setenv("T_PORT", "9000", 1);
    setenv("T_FLAG", "yes", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) == 0);
    CHECK_STR(c.name, "x");
    CHECK(c.port == 9000);
    CHECK(c.flag == 1);
}

static void config_errors_name_the_variable(void)
{
    demo_cfg c;
    char err[256];
    setenv("T_PORT", "80x", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "T_PORT") != NULL);
    setenv("T_PORT", "70000", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "T_PORT") != NULL && strstr(err, "1..65535") != NULL);
    setenv("T_PORT", "80", 1);
    setenv("T_FLAG", "maybe", 1);
    CHECK(pl_config_load(demo_opts, 3, &c, err, sizeof(err)) != 0);
    CHECK(strstr(err, "T_FLAG") != NULL);
    unsetenv("T_FLAG");
}

/* Captures what the log writes to stderr. */
static void log_lines_are_json(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    int saved = dup(2);
    dup2(fds[1], 2);
    pl_log_init("unit", "debug");
    PL_INFO("hello \"%s\"\n\ttab", "world");
    PL_DEBUG("debug %d", 1);
    pl_log_init("unit", "warn");
    PL_INFO("suppressed");
    dup2(saved, 2);
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    CHECK(n > 0);
    buf[n > 0 ? n : 0] = '\0';
    char *nl = strchr(buf, '\n');
    CHECK(nl != NULL);
    if (nl == NULL)
        return;
    *nl = '\0';
    cJSON *j = cJSON_Parse(buf);
    CHECK(j != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg")), "hello \"world\"\n\ttab");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "level")), "info");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "service")), "unit");
    cJSON_Delete(j);
    CHECK(strstr(nl + 1, "debug 1") != NULL);
    CHECK(strstr(nl + 1, "suppressed") == NULL);
}

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
    RUN(sha256_vector);
    RUN(hmac_rfc4231_case2);
    RUN(random_and_compare);
    RUN(config_defaults_and_env);
    RUN(config_errors_name_the_variable);
    RUN(log_lines_are_json);
    RUN(metrics_render);
    return check_summary();
}
