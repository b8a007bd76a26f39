/* prompt: {var} substitution, system variables and time zones, the history and its trimming. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "prompt.h"

static char *fill(const char *tmpl, const prompt_vars *vs)
{
    static char out[2048];
    char *s = prompt_fill(tmpl, vs);
    snprintf(out, sizeof(out), "%s", s != NULL ? s : "(null)");
    free(s);
    return out;
}

static void test_fill_known_and_unknown(void)
{
    prompt_vars vs;
    prompt_vars_init(&vs);
    CHECK(prompt_vars_set(&vs, "name", "Alice") == PL_OK);
    CHECK(prompt_vars_set(&vs, "order_id", "A-17") == PL_OK);
    CHECK(prompt_vars_set(&vs, "first name", "Al") == PL_OK);
    CHECK_STR(fill("Hello {name}, order {order_id} ships {ship_date}.", &vs),
              "Hello Alice, order A-17 ships {ship_date}.");
    CHECK_STR(fill("{name}{name}", &vs), "AliceAlice");
    CHECK_STR(fill("Hi {first name}", &vs), "Hi Al");
    /* Braces that do not enclose a known name stay as written. */
    CHECK_STR(fill("JSON {\"a\": {\"b\": 1}} {} { name } {name", &vs),
              "JSON {\"a\": {\"b\": 1}} {} { name } {name");
    CHECK_STR(fill("{{name}}", &vs), "{Alice}");
    CHECK_STR(fill("{na\nme}", &vs), "{na\nme}");
    CHECK_STR(fill("", &vs), "");
    CHECK_STR(fill("no vars", NULL), "no vars");
    /* A value is not expanded again. */
    CHECK(prompt_vars_set(&vs, "name", "{order_id}") == PL_OK);
    CHECK_STR(fill("{name}", &vs), "{order_id}");
    CHECK_STR(prompt_vars_get(&vs, "name"), "{order_id}");
    CHECK(prompt_vars_get(&vs, "nope") == NULL);
    prompt_vars_free(&vs);
}

static void test_user_data_types(void)
{
    cJSON *ud = cJSON_Parse("{\"name\":\"Alice\",\"n\":3,\"f\":2.5,\"big\":12345678901,"
                            "\"b\":true,\"z\":null,\"o\":{\"k\":[1,2]},\"third\":0.1}");
    prompt_vars vs;
    prompt_vars_init(&vs);
    CHECK(prompt_vars_add_json(&vs, ud) == PL_OK);
    CHECK_STR(fill("{name}|{n}|{f}|{big}|{b}|{z}|{o}|{third}", &vs),
              "Alice|3|2.5|12345678901|true||{\"k\":[1,2]}|0.1");
    CHECK(prompt_vars_add_json(&vs, NULL) == PL_OK);
    prompt_vars_free(&vs);
    cJSON_Delete(ud);
}

static void test_system_variables(void)
{
    cJSON *ud = cJSON_Parse("{\"name\":\"Alice\",\"call_sid\":\"from-user-data\"}");
    prompt_vars vs;
    prompt_vars_init(&vs);
    CHECK(prompt_vars_add_json(&vs, ud) == PL_OK);
    prompt_system sys = {.agent_id = "ag1",
                         .execution_id = "ex1",
                         .call_sid = "CA1",
                         .from_number = "+15550001",
                         .to_number = "+15550002",
                         .timezone = "UTC",
                         .now = 1704067200}; /* 2024-01-01 00:00:00 UTC, a Monday */
    CHECK(prompt_vars_add_system(&vs, &sys) == PL_OK);
    CHECK_STR(fill("{agent_id} {execution_id} {call_sid} {from_number} {to_number} {name}", &vs),
              "ag1 ex1 CA1 +15550001 +15550002 Alice");
    CHECK_STR(fill("{current_date} {current_time} {timezone}", &vs),
              "Monday, January 01, 2024 12:00:00 AM UTC");
    prompt_vars_free(&vs);
    cJSON_Delete(ud);
}

static void date_in(const char *tz, time_t now, const char *want_tz, const char *want)
{
    prompt_vars vs;
    prompt_vars_init(&vs);
    prompt_system sys = {.timezone = tz, .now = now};
    CHECK(prompt_vars_add_system(&vs, &sys) == PL_OK);
    char *got = prompt_fill("{current_date} {current_time}", &vs);
    CHECK_STR(got, want);
    CHECK_STR(prompt_vars_get(&vs, "timezone"), want_tz);
    free(got);
    prompt_vars_free(&vs);
}

static void test_time_zones(void)
{
    date_in("Asia/Kolkata", 1704067200, "Asia/Kolkata", "Monday, January 01, 2024 05:30:00 AM");
    date_in("America/New_York", 1704067200, "America/New_York",
            "Sunday, December 31, 2023 07:00:00 PM");
    date_in("America/New_York", 1719835200, "America/New_York",
            "Monday, July 01, 2024 08:00:00 AM");
    date_in("Australia/Sydney", 1704067200, "Australia/Sydney",
            "Monday, January 01, 2024 11:00:00 AM");
    /* Unknown or unsafe names fall back to UTC, and say so. */
    date_in("Mars/Olympus_Mons", 1704067200, "UTC", "Monday, January 01, 2024 12:00:00 AM");
    date_in("../../../etc/passwd", 1704067200, "UTC", "Monday, January 01, 2024 12:00:00 AM");

    /* The zone from user_data when the system gives none. */
    prompt_vars vs;
    prompt_vars_init(&vs);
    CHECK(prompt_vars_set(&vs, "timezone", "Asia/Kolkata") == PL_OK);
    prompt_system sys = {.now = 1719835200};
    CHECK(prompt_vars_add_system(&vs, &sys) == PL_OK);
    CHECK_STR(prompt_vars_get(&vs, "current_time"), "05:30:00 PM");
    prompt_vars_free(&vs);
}

static void test_tz_offsets_and_rules(void)
{
    long off;
    CHECK(prompt_tz_offset("UTC", 1704067200, &off) == PL_OK && off == 0);
    CHECK(prompt_tz_offset("Europe/London", 1719835200, &off) == PL_OK && off == 3600);
    /* Past the transitions listed in the file: the footer's rules (EST5EDT,M3.2.0,M11.1.0). */
    CHECK(prompt_tz_offset("America/New_York", 4108690799, &off) == PL_OK && off == -18000);
    CHECK(prompt_tz_offset("America/New_York", 4108690800, &off) == PL_OK && off == -14400);
    CHECK(prompt_tz_offset("America/New_York", 4129250399, &off) == PL_OK && off == -14400);
    CHECK(prompt_tz_offset("America/New_York", 4129250400, &off) == PL_OK && off == -18000);
    /* Southern hemisphere: summer time spans the new year. */
    CHECK(prompt_tz_offset("Australia/Sydney", 4110451199, &off) == PL_OK && off == 39600);
    CHECK(prompt_tz_offset("Australia/Sydney", 4110451200, &off) == PL_OK && off == 36000);
    CHECK(prompt_tz_offset("Australia/Sydney", 4126175999, &off) == PL_OK && off == 36000);
    CHECK(prompt_tz_offset("Australia/Sydney", 4126176000, &off) == PL_OK && off == 39600);
    CHECK(prompt_tz_offset("Asia/Kolkata", 4118126400, &off) == PL_OK && off == 19800);
    CHECK(prompt_tz_offset("../etc/passwd", 0, &off) == PL_ERR_INVALID);
    CHECK(prompt_tz_offset("/etc/passwd", 0, &off) == PL_ERR_INVALID);
    CHECK(prompt_tz_offset("Europe/London;rm", 0, &off) == PL_ERR_INVALID);
    CHECK(prompt_tz_offset("Nowhere/Atlantis", 0, &off) == PL_ERR_NOTFOUND);
    CHECK(prompt_tz_offset("", 0, &off) == PL_ERR_INVALID);
}

static void test_history_stream_and_cut(void)
{
    prompt_history h;
    prompt_history_init(&h, 0);
    CHECK(prompt_history_append(&h, "x", 1) == PL_ERR_INVALID);
    CHECK(prompt_history_add(&h, PROMPT_USER, "What time is it?", 16) == PL_OK);
    CHECK(prompt_history_add(&h, PROMPT_ASSISTANT, "", 0) == PL_OK);
    const char *toks[] = {"It is ", "ten ", "o'clock, ", "and the ", "weather is fine."};
    for (int i = 0; i < 5; i++)
        CHECK(prompt_history_append(&h, toks[i], strlen(toks[i])) == PL_OK);
    CHECK(h.n == 2);
    CHECK_STR(h.msgs[1].content, "It is ten o'clock, and the weather is fine.");
    size_t before = h.bytes;
    /* The caller heard "It is ten o'clock, " and barged in. */
    CHECK(prompt_history_cut(&h, 1, 19) == PL_OK);
    CHECK_STR(h.msgs[1].content, "It is ten o'clock,");
    CHECK(h.msgs[1].len == strlen("It is ten o'clock,"));
    CHECK(h.msgs[1].interrupted);
    CHECK(h.bytes == before - (43 - 18));
    CHECK(prompt_history_cut(&h, 0, 3) == PL_ERR_INVALID); /* a user turn */
    CHECK(prompt_history_cut(&h, 7, 3) == PL_ERR_INVALID);
    CHECK(!h.msgs[0].interrupted);
    prompt_history_free(&h);
}

static void test_cut_respects_utf8(void)
{
    prompt_history h;
    prompt_history_init(&h, 0);
    const char *t = "caf\xc3\xa9 \xe2\x98\x95 ok"; /* "café ☕ ok" */
    CHECK(prompt_history_add(&h, PROMPT_ASSISTANT, t, strlen(t)) == PL_OK);
    /* Offset 7 is inside ☕ (bytes 6..8): the cut moves back before it. */
    CHECK(prompt_history_cut(&h, 0, 7) == PL_OK);
    CHECK_STR(h.msgs[0].content, "caf\xc3\xa9");
    /* Inside é. */
    CHECK(prompt_history_add(&h, PROMPT_ASSISTANT, t, strlen(t)) == PL_OK);
    CHECK(prompt_history_cut(&h, 1, 4) == PL_OK);
    CHECK_STR(h.msgs[1].content, "caf");
    /* All heard: whole and not interrupted. */
    CHECK(prompt_history_add(&h, PROMPT_ASSISTANT, t, strlen(t)) == PL_OK);
    CHECK(prompt_history_cut(&h, 2, 100) == PL_OK);
    CHECK_STR(h.msgs[2].content, t);
    CHECK(!h.msgs[2].interrupted);
    /* Nothing heard. */
    CHECK(prompt_history_cut(&h, 2, 0) == PL_OK);
    CHECK_STR(h.msgs[2].content, "");
    CHECK(h.msgs[2].interrupted);
    prompt_history_free(&h);
}

static void test_tool_turns(void)
{
    prompt_history h;
    prompt_history_init(&h, 0);
    CHECK(prompt_history_add(&h, PROMPT_USER, "bye", 3) == PL_OK);
    CHECK(prompt_history_add_tool_call(&h, "call_1", "end_call", "{\"reason\":\"done\"}") == PL_OK);
    CHECK(prompt_history_add_tool_call(&h, "call_2", "log", NULL) == PL_OK);
    CHECK(prompt_history_add_tool_result(&h, "call_1", "ok") == PL_OK);
    CHECK(h.n == 3);
    CHECK(h.msgs[1].role == PROMPT_ASSISTANT);
    CHECK_STR(h.msgs[1].content, "");
    char *tc = cJSON_PrintUnformatted(h.msgs[1].tool_calls);
    CHECK_STR(tc, "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                  "\"end_call\",\"arguments\":\"{\\\"reason\\\":\\\"done\\\"}\"}},"
                  "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"log\","
                  "\"arguments\":\"{}\"}}]");
    free(tc);
    CHECK(h.msgs[2].role == PROMPT_TOOL);
    CHECK_STR(h.msgs[2].tool_call_id, "call_1");
    CHECK_STR(h.msgs[2].content, "ok");
    CHECK_STR(prompt_role_name(PROMPT_TOOL), "tool");
    prompt_history_free(&h);
}

static void test_trimming_keeps_recent_turns(void)
{
    prompt_history h;
    prompt_history_init(&h, 50);
    const char *twenty = "aaaaaaaaaaaaaaaaaaaa";
    CHECK(prompt_history_add(&h, PROMPT_USER, twenty, 20) == PL_OK);
    CHECK(prompt_history_add(&h, PROMPT_ASSISTANT, twenty, 20) == PL_OK);
    CHECK(h.n == 2 && h.bytes == 40);
    CHECK(prompt_history_add(&h, PROMPT_USER, "bbbbbbbbbbbbbbbbbbbb", 20) == PL_OK);
    /* 60 > 50: the first user turn goes, then the assistant turn before the next user turn. */
    CHECK(h.n == 1);
    CHECK(h.msgs[0].role == PROMPT_USER && h.msgs[0].content[0] == 'b');
    CHECK(h.bytes == 20);
    CHECK(prompt_history_add(&h, PROMPT_ASSISTANT, "ccccc", 5) == PL_OK);
    CHECK(prompt_history_add(&h, PROMPT_USER, "ddddd", 5) == PL_OK);
    CHECK(h.n == 3 && h.bytes == 30);
    /* The newest turn stays even when it alone is over the limit. */
    char big[100];
    memset(big, 'e', sizeof(big));
    CHECK(prompt_history_add(&h, PROMPT_USER, big, sizeof(big)) == PL_OK);
    CHECK(h.n == 1 && h.msgs[0].len == 100 && h.bytes == 100);
    /* Growing one turn token by token trims too. */
    prompt_history_free(&h);
    prompt_history_init(&h, 50);
    CHECK(prompt_history_add(&h, PROMPT_USER, twenty, 20) == PL_OK);
    CHECK(prompt_history_add(&h, PROMPT_ASSISTANT, "", 0) == PL_OK);
    for (int i = 0; i < 40; i++)
        CHECK(prompt_history_append(&h, "x", 1) == PL_OK);
    CHECK(h.n == 1 && h.msgs[0].role == PROMPT_ASSISTANT && h.msgs[0].len == 40);
    prompt_history_free(&h);
}

int main(void)
{
    RUN(test_fill_known_and_unknown);
    RUN(test_user_data_types);
    RUN(test_system_variables);
    RUN(test_time_zones);
    RUN(test_tz_offsets_and_rules);
    RUN(test_history_stream_and_cut);
    RUN(test_cut_respects_utf8);
    RUN(test_tool_turns);
    RUN(test_trimming_keeps_recent_turns);
    return check_summary();
}
