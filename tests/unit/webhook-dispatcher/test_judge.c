/* How a finished attempt is judged: delivered, retried or dead, with a reason a person can act
 * on, whatever the receiver answered. */
#include <curl/curl.h>

#include "check.h"
#include "dispatcher.h"

static wd_result judge(int cc, long code, const char *err, const char *refused, const char *resp,
                       const char *loc, int attempts)
{
    wd_result r;
    memset(&r, 0, sizeof(r));
    wd_judge(cc, code, err, refused, resp, loc, attempts, 10, 10000, &r);
    return r;
}

static void test_2xx_is_delivered(void)
{
    wd_result r = judge(CURLE_OK, 200, "", "", "ok", NULL, 0);
    CHECK(r.outcome == WD_DELIVERED && r.code == 200 && r.error[0] == '\0');
    r = judge(CURLE_OK, 204, "", "", "", NULL, 9);
    CHECK(r.outcome == WD_DELIVERED);
    /* a 2xx whose body went over the limit was accepted all the same */
    r = judge(CURLE_WRITE_ERROR, 200, "Failure writing output", "", "xxx", NULL, 0);
    CHECK(r.outcome == WD_DELIVERED);
}

static void test_failures_are_retried_with_a_reason(void)
{
    wd_result r = judge(CURLE_OK, 500, "", "", "  oops\r\n\tbroken \x01 thing ", NULL, 0);
    CHECK(r.outcome == WD_RETRY && r.code == 500);
    CHECK_STR(r.error, "HTTP 500: oops broken ? thing");
    r = judge(CURLE_OK, 404, "", "", "", NULL, 0);
    CHECK_STR(r.error, "HTTP 404");
    r = judge(CURLE_OPERATION_TIMEDOUT, 0, "Operation timed out after 10001 milliseconds", "", "",
              NULL, 0);
    CHECK(r.outcome == WD_RETRY && r.code == 0);
    CHECK(strncmp(r.error, "timed out after 10000 ms", 24) == 0);
    r = judge(CURLE_COULDNT_CONNECT, 0, "Failed to connect to x port 1: Connection refused", "", "",
              NULL, 0);
    CHECK(r.outcome == WD_RETRY);
    CHECK_STR(r.error, "Failed to connect to x port 1: Connection refused");
    r = judge(CURLE_WEIRD_SERVER_REPLY, 0, "", "", "", NULL, 0); /* no buffer text: strerror */
    CHECK(r.outcome == WD_RETRY && strlen(r.error) > 0);
    r = judge(CURLE_WRITE_ERROR, 500, "", "", "", NULL, 0);
    CHECK(r.outcome == WD_RETRY && strstr(r.error, "over 65536 bytes") != NULL);
}

static void test_redirects_are_not_followed(void)
{
    wd_result r = judge(CURLE_OK, 302, "", "", "", "http://10.0.0.1/internal", 0);
    CHECK(r.outcome == WD_RETRY);
    CHECK_STR(r.error, "HTTP 302: redirects are not followed (Location: http://10.0.0.1/internal)");
}

static void test_permanent_failures_are_dead_at_once(void)
{
    wd_result r =
        judge(CURLE_COULDNT_CONNECT, 0, "", "refused to connect to 10.0.0.1: private", "", NULL, 0);
    CHECK(r.outcome == WD_DEAD);
    CHECK_STR(r.error, "SSRF guard: refused to connect to 10.0.0.1: private");
    r = judge(CURLE_URL_MALFORMAT, 0, "bad", "", "", NULL, 0);
    CHECK(r.outcome == WD_DEAD && strncmp(r.error, "invalid webhook_url", 19) == 0);
}

static void test_last_attempt_is_dead(void)
{
    CHECK(judge(CURLE_OK, 500, "", "", "", NULL, 8).outcome == WD_RETRY);
    wd_result r = judge(CURLE_OK, 500, "", "", "", NULL, 9);
    CHECK(r.outcome == WD_DEAD);
    CHECK_STR(r.error, "HTTP 500");
}

int main(void)
{
    RUN(test_2xx_is_delivered);
    RUN(test_failures_are_retried_with_a_reason);
    RUN(test_redirects_are_not_followed);
    RUN(test_permanent_failures_are_dead_at_once);
    RUN(test_last_attempt_is_dead);
    return check_summary();
}
