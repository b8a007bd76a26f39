/* log: JSON lines with levels; the line is captured from stderr. */
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "log.h"

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

int main(void)
{
    RUN(log_lines_are_json);
    return check_summary();
}
