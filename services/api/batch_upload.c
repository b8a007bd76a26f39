/* The upload of POST /batches: its fields and the CSV of contacts, read whole in memory (the
 * body limit bounds both) and validated row by row (contracts in batch_upload.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "batch_upload.h"
#include "csv.h"
#include "validate.h"

#define BATCH_MAX_ROWS    10000 /* contact rows in one CSV */
#define BATCH_MAX_FROM    100   /* from_phone_numbers */
#define BATCH_MAX_COLUMNS 256
#define FILE_NAME_MAX     255

void upload_free(batch_upload *u)
{
    free(u->agent_id);
    cJSON_Delete(u->from);
    free(u->retry);
    free(u->file_name);
    cJSON_Delete(u->contacts);
    cJSON_Delete(u->invalid);
}

/* Adds each number of one from_phone_numbers value: a JSON array, or a comma-separated list. */
static int add_from_numbers(cJSON *out, char *value, char *err, size_t cap)
{
    char *v = form_trim(value);
    if (*v == '[') {
        cJSON *arr = cJSON_Parse(v);
        const cJSON *item;
        if (!cJSON_IsArray(arr)) {
            cJSON_Delete(arr);
            return snprintf(err, cap, "from_phone_numbers: '%.80s' is not a JSON array", v), -1;
        }
        cJSON_ArrayForEach(item, arr)
        {
            if (!cJSON_IsString(item) || !pl_is_e164(item->valuestring)) {
                cJSON_Delete(arr);
                return snprintf(err, cap,
                                "from_phone_numbers: every item must be an E.164 number such as "
                                "+14155550100"),
                       -1;
            }
            cJSON_AddItemToArray(out, cJSON_CreateString(item->valuestring));
        }
        cJSON_Delete(arr);
    } else {
        for (char *save = NULL, *tok = strtok_r(v, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            tok = form_trim(tok);
            if (*tok == '\0')
                continue;
            if (!pl_is_e164(tok))
                return snprintf(err, cap,
                                "from_phone_numbers: '%.40s' is not an E.164 number such as "
                                "+14155550100",
                                tok),
                       -1;
            cJSON_AddItemToArray(out, cJSON_CreateString(tok));
        }
    }
    if (cJSON_GetArraySize(out) > BATCH_MAX_FROM)
        return snprintf(err, cap, "from_phone_numbers: more than %d numbers", BATCH_MAX_FROM), -1;
    return 0;
}

static void add_invalid(batch_upload *u, long row, long line, const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "row", (double)row);
    cJSON_AddNumberToObject(o, "line", (double)line);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddItemToArray(u->invalid, o);
}

/* Reads the CSV into contacts and invalid rows. 0, or -1 with a message (starting "file:") for
 * a file that cannot be a batch at all. */
static int read_contacts(batch_upload *u, const char *data, size_t len, char *err, size_t cap)
{
    char reason[256], cerr[200];
    pl_csv csv;
    if (len == 0)
        return snprintf(err, cap, "file: is empty; send a CSV with a contact_number column"), -1;
    if (!pl_is_utf8(data, len))
        return snprintf(err, cap, "file: is not UTF-8 text (save the CSV as UTF-8)"), -1;
    pl_csv_init(&csv, data, len);
    int rc = pl_csv_next(&csv, cerr, sizeof(cerr));
    int ncols = csv.nfields, number_col = -1;
    char **cols = NULL;
    if (rc == 0)
        snprintf(err, cap, "file: is empty; send a CSV with a contact_number column"), rc = -1;
    else if (rc < 0)
        snprintf(err, cap, "file: %s", cerr);
    else if (ncols > BATCH_MAX_COLUMNS)
        snprintf(err, cap, "file: more than %d columns", BATCH_MAX_COLUMNS), rc = -1;
    else if ((cols = calloc((size_t)ncols, sizeof(*cols))) == NULL)
        snprintf(err, cap, "file: out of memory"), rc = -1;
    for (int i = 0; rc == 1 && i < ncols; i++) {
        cols[i] = strdup(form_trim(csv.fields[i]));
        if (cols[i] == NULL || cols[i][0] == '\0') {
            snprintf(err, cap, "file: column %d of the header row has no name", i + 1);
            rc = -1;
            break;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(cols[i], cols[j]) == 0) {
                snprintf(err, cap, "file: column '%.60s' appears twice in the header row", cols[i]);
                rc = -1;
            }
        if (strcmp(cols[i], "contact_number") == 0)
            number_col = i;
    }
    if (rc == 1 && number_col < 0) {
        snprintf(err, cap, "file: the header row has no contact_number column (columns: ");
        for (int i = 0; i < ncols; i++) {
            size_t n = strlen(err);
            snprintf(err + n, cap - n, "%s%.40s", i > 0 ? ", " : "", cols[i]);
        }
        size_t n = strlen(err);
        snprintf(err + n, cap - n, ")");
        rc = -1;
    }
    while (rc == 1 && (rc = pl_csv_next(&csv, cerr, sizeof(cerr))) == 1) {
        int blank = 1;
        for (int i = 0; i < csv.nfields && blank; i++)
            blank = strspn(csv.fields[i], " \t") == csv.lens[i];
        if (blank) /* ",,," lines that spreadsheets write after the data */
            continue;
        if (++u->total > BATCH_MAX_ROWS) {
            snprintf(err, cap, "file: more than %d contact rows; split it into several batches",
                     BATCH_MAX_ROWS);
            rc = -1;
            break;
        }
        if (csv.nfields != ncols) {
            snprintf(reason, sizeof(reason), "has %d fields, the header row has %d", csv.nfields,
                     ncols);
            add_invalid(u, csv.record_number, csv.record_line, reason);
            continue;
        }
        const char *number = form_trim(csv.fields[number_col]);
        if (*number == '\0') {
            add_invalid(u, csv.record_number, csv.record_line, "contact_number: is empty");
            continue;
        }
        if (!pl_is_e164(number)) {
            snprintf(reason, sizeof(reason),
                     "contact_number: '%.40s' is not an E.164 number such as +14155550100 "
                     "('+', country code, 7 to 15 digits)",
                     number);
            add_invalid(u, csv.record_number, csv.record_line, reason);
            continue;
        }
        cJSON *c = cJSON_CreateObject(), *vars = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "r", (double)csv.record_number);
        cJSON_AddStringToObject(c, "n", number);
        for (int i = 0; i < ncols; i++)
            if (i != number_col)
                cJSON_AddItemToObject(vars, cols[i], cJSON_CreateString(csv.fields[i]));
        cJSON_AddItemToObject(c, "v", vars);
        cJSON_AddItemToArray(u->contacts, c);
        u->valid++;
    }
    if (rc < 0 && err[0] == '\0')
        snprintf(err, cap, "file: %s", cerr);
    if (rc == 0 && u->total == 0) {
        snprintf(err, cap, "file: has a header row but no contact rows");
        rc = -1;
    } else if (rc == 0 && u->valid == 0) {
        const cJSON *first = cJSON_GetArrayItem(u->invalid, 0);
        snprintf(err, cap, "file: none of the %d contact rows is valid (row %d: %s)", u->total,
                 cJSON_GetObjectItem(first, "row")->valueint,
                 cJSON_GetObjectItem(first, "reason")->valuestring);
        rc = -1;
    }
    for (int i = 0; cols != NULL && i < ncols; i++)
        free(cols[i]);
    free(cols);
    pl_csv_free(&csv);
    return rc < 0 ? -1 : 0;
}

int parse_upload(pl_req *r, const form *f, batch_upload *u)
{
    static const char *const from_fields[] = {"from_phone_numbers", "from_phone_numbers[]",
                                              "from_phone_number"};
    char err[512] = "";
    char *v = NULL;
    int got;
    u->contacts = cJSON_CreateArray();
    u->invalid = cJSON_CreateArray();

    if ((got = form_get(r, f, "agent_id", 0, &u->agent_id)) < 0)
        return 422;
    if (got == 0 || *form_trim(u->agent_id) == '\0')
        return pl_http_error(r, 422, "agent_id: is required");
    if (!pl_is_uuid(form_trim(u->agent_id)))
        return pl_http_error(r, 422, "agent_id: must be a UUID");
    memmove(u->agent_id, form_trim(u->agent_id), strlen(form_trim(u->agent_id)) + 1);

    u->from = cJSON_CreateArray();
    for (size_t k = 0; k < sizeof(from_fields) / sizeof(from_fields[0]); k++)
        for (int i = 0;; i++) {
            if ((got = form_get(r, f, from_fields[k], i, &v)) <= 0) {
                if (got < 0)
                    return 422;
                break;
            }
            int bad = add_from_numbers(u->from, v, err, sizeof(err));
            free(v);
            if (bad)
                return pl_http_error(r, 422, "%s", err);
        }
    if (cJSON_GetArraySize(u->from) == 0) {
        cJSON_Delete(u->from);
        u->from = NULL;
    }

    if ((got = form_get(r, f, "retry_config", 0, &v)) < 0)
        return 422;
    if (got == 1 && *form_trim(v) != '\0') {
        const char *end = NULL;
        cJSON *rc = pl_json_depth(v, strlen(v)) <= PL_HTTP_MAX_JSON_DEPTH
                        ? cJSON_ParseWithOpts(form_trim(v), &end, 1)
                        : NULL;
        int bad = rc == NULL ? (snprintf(err, sizeof(err),
                                         "retry_config: is not a JSON object such as "
                                         "{\"enabled\":true,\"max_retries\":2}"),
                                -1)
                             : api_validate_retry_config(rc, err, sizeof(err));
        if (bad == 0)
            u->retry = cJSON_PrintUnformatted(rc);
        cJSON_Delete(rc);
        if (bad) {
            free(v);
            return pl_http_error(r, 422, "%s", err);
        }
    }
    free(v);

    const pl_mpart *file = f->kind == FORM_MULTIPART ? pl_multipart_get(&f->mp, "file", 0) : NULL;
    if (file == NULL)
        return pl_http_error(r, 422, "file: is required (the CSV of contacts, as a file part)");
    if (file->filename != NULL && file->filename[0] != '\0') {
        const char *base = file->filename;
        for (const char *p = base; *p != '\0'; p++)
            if (*p == '/' || *p == '\\')
                base = p + 1; /* clients may send a path; keep the name only */
        if (strlen(base) > FILE_NAME_MAX || !pl_is_utf8(base, strlen(base)))
            return pl_http_error(r, 422, "file: the file name must be UTF-8 and at most %d bytes",
                                 FILE_NAME_MAX);
        u->file_name = strdup(base);
    }
    if (read_contacts(u, file->data, file->len, err, sizeof(err)) != 0)
        return pl_http_error(r, 422, "%s", err);
    return 0;
}
