/* retry_config: the retry policy a client may set on a call (POST /call) or on every call of a
 * batch (POST /batches). Only its fields and their ranges are checked here.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

/* Lifted from calls.c so that POST /call and POST /batches validate retry_config alike. */
int api_validate_retry_config(const cJSON *rc, char *err, size_t cap)
{
    static const char *const retry_statuses[] = {"no-answer", "busy", "failed", "error"};
    const cJSON *f;
    if (!cJSON_IsObject(rc)) {
        snprintf(err, cap, "retry_config: must be an object");
        return -1;
    }
    cJSON_ArrayForEach(f, rc)
    {
        const char *k = f->string;
        if (strcmp(k, "enabled") == 0 || strcmp(k, "retry_on_voicemail") == 0) {
            if (!cJSON_IsBool(f)) {
                snprintf(err, cap, "retry_config.%s: must be true or false", k);
                return -1;
            }
        } else if (strcmp(k, "max_retries") == 0) {
            if (!cJSON_IsNumber(f) || f->valuedouble != (double)(int)f->valuedouble ||
                f->valueint < 1 || f->valueint > 3) {
                snprintf(err, cap, "retry_config.max_retries: must be an integer from 1 to 3");
                return -1;
            }
        } else if (strcmp(k, "retry_on_statuses") == 0) {
            const cJSON *s;
            if (!cJSON_IsArray(f)) {
                snprintf(err, cap, "retry_config.retry_on_statuses: must be an array");
                return -1;
            }
            cJSON_ArrayForEach(s, f)
            {
                int ok = 0;
                for (int i = 0; i < 4 && cJSON_IsString(s); i++)
                    ok |= strcmp(s->valuestring, retry_statuses[i]) == 0;
                if (!ok) {
                    snprintf(err, cap,
                             "retry_config.retry_on_statuses: items must be no-answer, busy, "
                             "failed or error");
                    return -1;
                }
            }
        } else if (strcmp(k, "retry_intervals_minutes") == 0) {
            const cJSON *s;
            if (!cJSON_IsArray(f) || cJSON_GetArraySize(f) == 0 || cJSON_GetArraySize(f) > 10) {
                snprintf(err, cap,
                         "retry_config.retry_intervals_minutes: must be an array of 1 "
                         "to 10 integers");
                return -1;
            }
            cJSON_ArrayForEach(s, f)
            {
                if (!cJSON_IsNumber(s) || s->valuedouble != (double)(int)s->valuedouble ||
                    s->valueint < 1 || s->valueint > 10080) {
                    snprintf(err, cap,
                             "retry_config.retry_intervals_minutes: items must be "
                             "integers from 1 to 10080 (one week)");
                    return -1;
                }
            }
        }
    }
    return 0;
}
