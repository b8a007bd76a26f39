#include <string.h>

#include <cjson/cJSON.h>

#include "retry.h"

int pl_retry_due(const char *retry_config_json, int attempt, pl_status outcome, int voicemail,
                 int64_t minute_ms, int64_t *delay_ms)
{
    static const int default_intervals[] = {30, 60, 120};
    *delay_ms = 0;
    if (retry_config_json == NULL)
        return 0;
    cJSON *rc = cJSON_Parse(retry_config_json);
    if (rc == NULL)
        return 0;
    int due = 0;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rc, "enabled")))
        goto out;
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(rc, "max_retries");
    int max_retries = cJSON_IsNumber(max) ? max->valueint : 3;
    if (attempt >= max_retries)
        goto out;
    if (voicemail) {
        due = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rc, "retry_on_voicemail"));
    } else {
        const cJSON *statuses = cJSON_GetObjectItemCaseSensitive(rc, "retry_on_statuses");
        if (statuses == NULL)
            due = outcome == PL_ST_NO_ANSWER || outcome == PL_ST_BUSY || outcome == PL_ST_FAILED;
        const cJSON *s;
        cJSON_ArrayForEach(s, statuses)
        {
            if (cJSON_IsString(s) && strcmp(s->valuestring, pl_status_name(outcome)) == 0)
                due = 1;
        }
    }
    if (!due)
        goto out;
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(rc, "retry_intervals_minutes");
    double minutes;
    int n = cJSON_IsArray(iv) ? cJSON_GetArraySize(iv) : 0;
    if (n > 0) /* the k-th retry waits intervals[k-1]; past the end, the last one */
        minutes = cJSON_GetArrayItem(iv, attempt < n ? attempt : n - 1)->valuedouble;
    else
        minutes = default_intervals[attempt < 3 ? attempt : 2];
    *delay_ms = (int64_t)(minutes * (double)minute_ms);
out:
    cJSON_Delete(rc);
    return due;
}
