/* Inbound calls at the carrier edge (docs/inbound.md): numbers as each carrier writes them, the
 * webhook fields each carrier sends, and the streaming and reject answers each carrier reads
 * (reference/providers.md §1-3). */
#include <cjson/cJSON.h>

#include <stdlib.h>

#include "carrier.h"
#include "check.h"
#include "form.h"
#include "gateway.h"

static const gw_carrier_conf conf = {.media_url = "wss://media.example.org",
                                     .public_url = "https://gw.example.org"};

static void e164_forms(void)
{
    char out[40];
    CHECK(gw_e164("+14155550100", NULL, out, sizeof(out)) == 0);
    CHECK_STR(out, "+14155550100");
    CHECK(gw_e164("14155550100", NULL, out, sizeof(out)) == 0); /* Plivo: no '+' */
    CHECK_STR(out, "+14155550100");
    CHECK(gw_e164("0014155550100", NULL, out, sizeof(out)) == 0); /* international prefix */
    CHECK_STR(out, "+14155550100");
    CHECK(gw_e164("09876543210", "91", out, sizeof(out)) == 0); /* Exotel India, national */
    CHECK_STR(out, "+919876543210");
    CHECK(gw_e164("+1 (415) 555-0100", NULL, out, sizeof(out)) == 0);
    CHECK_STR(out, "+14155550100");
    CHECK(gw_e164("09876543210", NULL, out, sizeof(out)) != 0); /* national without a country */
    CHECK(gw_e164("+123456", NULL, out, sizeof(out)) != 0);     /* 6 digits */
    CHECK(gw_e164("+1234567890123456", NULL, out, sizeof(out)) != 0);
    CHECK(gw_e164("client:alice", NULL, out, sizeof(out)) != 0); /* Twilio client id */
    CHECK(gw_e164("+1415+5550100", NULL, out, sizeof(out)) != 0);
    CHECK(gw_e164(NULL, NULL, out, sizeof(out)) != 0);
    CHECK(gw_e164("+14155550100", NULL, out, 8) != 0); /* does not fit */
}

static void webhook_fields(void)
{
    pl_form f;
    gw_inbound_call call;
    char why[128];
    pl_form_init(&f);
    pl_form_add(&f, "CallSid", "CA0123");
    pl_form_add(&f, "From", "+15551230001");
    pl_form_add(&f, "To", "+15005550006");
    CHECK(gw_twilio.inbound_parse(&f, &call, why, sizeof(why)) == 0);
    CHECK_STR(call.call_id, "CA0123");
    CHECK_STR(call.from, "+15551230001");
    CHECK_STR(call.to, "+15005550006");
    pl_form_free(&f);

    pl_form_init(&f);
    pl_form_add(&f, "CallUUID", "6e1d");
    pl_form_add(&f, "From", "15551230001");
    pl_form_add(&f, "To", "14155550100");
    CHECK(gw_plivo.inbound_parse(&f, &call, why, sizeof(why)) == 0);
    CHECK_STR(call.from, "+15551230001");
    CHECK_STR(call.to, "+14155550100");
    pl_form_free(&f);

    pl_form_init(&f);
    pl_form_add(&f, "CallSid", "b6a1");
    pl_form_add(&f, "CallFrom", "09876543210");
    pl_form_add(&f, "CallTo", "08047491899");
    CHECK(gw_exotel.inbound_parse(&f, &call, why, sizeof(why)) == 0);
    CHECK_STR(call.from, "+919876543210");
    CHECK_STR(call.to, "+918047491899");
    pl_form_free(&f);

    pl_form_init(&f); /* no call id; a caller that is not a number */
    pl_form_add(&f, "From", "+15551230001");
    pl_form_add(&f, "To", "+15005550006");
    CHECK(gw_twilio.inbound_parse(&f, &call, why, sizeof(why)) != 0);
    CHECK(strstr(why, "CallSid") != NULL);
    pl_form_free(&f);
    /* callers that are no phone number still call; our number must be one */
    static const char *const callers[][2] = {{"anonymous", "anonymous"},
                                             {"client:alice", "client:alice"},
                                             {"", "anonymous"},
                                             {"<script>", "anonymous"}};
    for (size_t i = 0; i < sizeof(callers) / sizeof(callers[0]); i++) {
        pl_form_init(&f);
        pl_form_add(&f, "CallSid", "CA1");
        pl_form_add(&f, "From", callers[i][0]);
        pl_form_add(&f, "To", "+15005550006");
        CHECK(gw_twilio.inbound_parse(&f, &call, why, sizeof(why)) == 0);
        CHECK_STR(call.from, callers[i][1]);
        pl_form_free(&f);
    }
    pl_form_init(&f);
    pl_form_add(&f, "CallSid", "CA1");
    pl_form_add(&f, "From", "+15551230001");
    pl_form_add(&f, "To", "sip:bot@example.org");
    CHECK(gw_twilio.inbound_parse(&f, &call, why, sizeof(why)) != 0);
    CHECK(strstr(why, "To") != NULL);
    pl_form_free(&f);

    pl_form_init(&f); /* Exotel requests that name the numbers From/To */
    pl_form_add(&f, "CallSid", "b6a2");
    pl_form_add(&f, "From", "09876543210");
    pl_form_add(&f, "To", "08047491899");
    CHECK(gw_exotel.inbound_parse(&f, &call, why, sizeof(why)) == 0);
    CHECK_STR(call.from, "+919876543210");
    CHECK_STR(call.to, "+918047491899");
    pl_form_free(&f);
}

static void answers(void)
{
    char buf[2048];
    long n = gw_twilio.inbound_answer(&conf, "tok.1.abc", buf, sizeof(buf));
    CHECK(n > 0 && strstr(buf, "<Connect><Stream url=\"wss://media.example.org/media/twilio\">"));
    CHECK(strstr(buf, "<Parameter name=\"token\" value=\"tok.1.abc\"/>") != NULL);
    n = gw_twilio.inbound_answer(&conf, NULL, buf, sizeof(buf));
    CHECK(n > 0 && strstr(buf, "<Response><Reject reason=\"rejected\"/></Response>"));
    CHECK(gw_twilio.inbound_reject_status == 200);

    n = gw_plivo.inbound_answer(&conf, "tok.1.abc", buf, sizeof(buf));
    CHECK(n > 0 && strstr(buf, "bidirectional=\"true\" keepCallAlive=\"true\""));
    CHECK(strstr(buf, ">wss://media.example.org/media/plivo/tok.1.abc</Stream>") != NULL);
    n = gw_plivo.inbound_answer(&conf, NULL, buf, sizeof(buf));
    CHECK(n > 0 && strstr(buf, "<Response><Hangup reason=\"rejected\"/></Response>"));

    n = gw_exotel.inbound_answer(&conf, "tok.1.abc", buf, sizeof(buf));
    cJSON *j = cJSON_Parse(buf);
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(j, "url");
    CHECK(n > 0 && cJSON_IsString(url));
    CHECK_STR(url->valuestring,
              "wss://media.example.org/media/exotel?sample-rate=16000&token=tok.1.abc");
    cJSON_Delete(j);
    n = gw_exotel.inbound_answer(&conf, NULL, buf, sizeof(buf));
    CHECK(n > 0 && strstr(buf, "\"error\"") != NULL);
    CHECK(gw_exotel.inbound_reject_status == 403);
    CHECK(gw_twilio.inbound_answer(&conf, "tok", buf, 40) == -1); /* does not fit */
}

/* credentials_ref → the gateway's credential sets (PL_<CARRIER>_CREDENTIALS_<NAME>). */
static void credential_sets(void)
{
    static gw g;
    g.conf[GW_TWILIO] = (gw_carrier_conf){.account = "ACdef", .user = "ACdef", .secret = "tok"};
    g.conf[GW_EXOTEL] = (gw_carrier_conf){.account = "sid", .user = "key", .secret = "tok"};
    gw_cred_buf buf;
    CHECK(gw_credentials(&g, &gw_twilio, "", &buf) == &g.conf[GW_TWILIO]);
    CHECK(gw_credentials(&g, &gw_twilio, "default", &buf) == &g.conf[GW_TWILIO]);
    CHECK(gw_credentials(&g, &gw_twilio, "acme_eu", &buf) == NULL); /* not configured */
    setenv("PL_TWILIO_CREDENTIALS_ACME_EU", "ACacme:acme-token", 1);
    const gw_carrier_conf *c = gw_credentials(&g, &gw_twilio, "acme_eu", &buf);
    CHECK(c != NULL && strcmp(c->account, "ACacme") == 0 && strcmp(c->user, "ACacme") == 0 &&
          strcmp(c->secret, "acme-token") == 0);
    setenv("PL_EXOTEL_CREDENTIALS_IN", "sid2:key2:token2", 1);
    c = gw_credentials(&g, &gw_exotel, "in", &buf);
    CHECK(c != NULL && strcmp(c->account, "sid2") == 0 && strcmp(c->user, "key2") == 0 &&
          strcmp(c->secret, "token2") == 0);
    setenv("PL_EXOTEL_CREDENTIALS_BAD", "sid2:key2", 1); /* Exotel needs three parts */
    CHECK(gw_credentials(&g, &gw_exotel, "bad", &buf) == NULL);
    setenv("PL_TWILIO_CREDENTIALS_EMPTY", "ACx:", 1);
    CHECK(gw_credentials(&g, &gw_twilio, "empty", &buf) == NULL);
}

int main(void)
{
    RUN(credential_sets);
    RUN(e164_forms);
    RUN(webhook_fields);
    RUN(answers);
    return check_summary();
}
