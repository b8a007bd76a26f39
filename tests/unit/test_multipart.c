/* multipart: the boundary of a Content-Type, and parts split out of bodies as curl, browsers and
 * Python send them, binary content included; every malformed body is an error naming why. */
#include "check.h"
#include "error.h"
#include "multipart.h"

#define S(lit) lit, sizeof(lit) - 1

static char err[256];

static void boundary_forms(void)
{
    char b[80];
    CHECK(pl_multipart_boundary("multipart/form-data; boundary=abc123", b, sizeof(b), err,
                                sizeof(err)) == 0);
    CHECK_STR(b, "abc123");
    CHECK(pl_multipart_boundary("Multipart/Form-Data;BOUNDARY=\"a b:c\"", b, sizeof(b), err,
                                sizeof(err)) == 0);
    CHECK_STR(b, "a b:c");
    CHECK(pl_multipart_boundary("multipart/form-data; charset=utf-8; boundary=\"----x\"; q=1", b,
                                sizeof(b), err, sizeof(err)) == 0);
    CHECK_STR(b, "----x");
    /* curl's form: a 24-dash prefix then hex */
    CHECK(pl_multipart_boundary("multipart/form-data; boundary=------------------------"
                                "d74496d66958873e",
                                b, sizeof(b), err, sizeof(err)) == 0);
    CHECK_STR(b, "------------------------d74496d66958873e");
    /* quoted-pair escapes inside the quoted value */
    CHECK(pl_multipart_boundary("multipart/form-data; boundary=\"a\\\"b\"", b, sizeof(b), err,
                                sizeof(err)) != 0); /* '"' is not a bchar */

    CHECK(pl_multipart_boundary("application/json", b, sizeof(b), err, sizeof(err)) ==
          PL_ERR_INVALID);
    CHECK(strstr(err, "not multipart/form-data") != NULL);
    CHECK(pl_multipart_boundary("multipart/form-datax; boundary=a", b, sizeof(b), err,
                                sizeof(err)) != 0);
    CHECK(pl_multipart_boundary(NULL, b, sizeof(b), err, sizeof(err)) != 0);
    CHECK(pl_multipart_boundary("multipart/form-data", b, sizeof(b), err, sizeof(err)) != 0);
    CHECK(strstr(err, "boundary parameter is missing") != NULL);
    CHECK(pl_multipart_boundary("multipart/form-data; boundary=", b, sizeof(b), err, sizeof(err)) !=
          0);
    CHECK(pl_multipart_boundary("multipart/form-data; boundary=\"\"", b, sizeof(b), err,
                                sizeof(err)) != 0);
    CHECK(pl_multipart_boundary("multipart/form-data; boundary=\"abc", b, sizeof(b), err,
                                sizeof(err)) != 0); /* unterminated quote */
    CHECK(pl_multipart_boundary("multipart/form-data; boundary=\"ends with space \"", b, sizeof(b),
                                err, sizeof(err)) != 0);
    char longb[200] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'x', 71);
    CHECK(pl_multipart_boundary(longb, b, sizeof(b), err, sizeof(err)) != 0);
    CHECK(strstr(err, "longer than 70") != NULL);
}

static void two_fields_and_a_file(void)
{
    static const char body[] = "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"agent_id\"\r\n"
                               "\r\n"
                               "3c90c3cc-0d44-4b50-8822-8dd25736052a\r\n"
                               "--XyZ\r\n"
                               "content-disposition: form-data; name=\"file\"; "
                               "filename=\"contacts.csv\"\r\n"
                               "Content-Type: text/csv \r\n"
                               "X-Ignored: yes\r\n"
                               "\r\n"
                               "contact_number,name\r\n+14155550100,Bruce\r\n"
                               "\r\n"
                               "--XyZ\r\n"
                               "Content-Disposition: form-data; name=from_phone_numbers\r\n"
                               "\r\n"
                               "+14155550111\r\n"
                               "--XyZ\r\n"
                               "Content-Disposition: form-data; name=\"from_phone_numbers\"\r\n"
                               "\r\n"
                               "+14155550112\r\n"
                               "--XyZ--\r\n";
    pl_multipart m;
    CHECK(pl_multipart_parse(S(body), "XyZ", &m, err, sizeof(err)) == 0);
    CHECK(m.nparts == 4);
    const pl_mpart *a = pl_multipart_get(&m, "agent_id", 0);
    CHECK(a != NULL && a->filename == NULL && a->content_type == NULL);
    CHECK(a != NULL && a->len == 36 && memcmp(a->data, "3c90c3cc", 8) == 0);
    const pl_mpart *f = pl_multipart_get(&m, "file", 0);
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK_STR(f->filename, "contacts.csv");
        CHECK_STR(f->content_type, "text/csv");
        /* the CRLF before the delimiter belongs to the delimiter: the file keeps its own */
        static const char want[] = "contact_number,name\r\n+14155550100,Bruce\r\n";
        CHECK(f->len == sizeof(want) - 1 && memcmp(f->data, want, f->len) == 0);
    }
    const pl_mpart *p0 = pl_multipart_get(&m, "from_phone_numbers", 0);
    const pl_mpart *p1 = pl_multipart_get(&m, "from_phone_numbers", 1);
    CHECK(p0 != NULL && p0->len == 12 && memcmp(p0->data, "+14155550111", 12) == 0);
    CHECK(p1 != NULL && p1->len == 12 && memcmp(p1->data, "+14155550112", 12) == 0);
    CHECK(pl_multipart_get(&m, "from_phone_numbers", 2) == NULL);
    CHECK(pl_multipart_get(&m, "nope", 0) == NULL);
    pl_multipart_free(&m);
    CHECK(m.nparts == 0);
}

static void preamble_epilogue_padding_and_empty_parts(void)
{
    static const char body[] = "This is a preamble; --b is not yet a delimiter\r\n"
                               "--b   \t\r\n" /* transport padding */
                               "Content-Disposition: form-data; name=\"empty\"\r\n"
                               "\r\n"
                               "\r\n"
                               "--b\r\n"
                               "Content-Disposition: form-data; name=\"x\"\r\n"
                               "\r\n"
                               "1\r\n"
                               "--b--\r\n"
                               "an epilogue, ignored\r\n--b\r\ngarbage";
    pl_multipart m;
    CHECK(pl_multipart_parse(S(body), "b", &m, err, sizeof(err)) == 0);
    CHECK(m.nparts == 2);
    CHECK(m.parts[0].len == 0);
    CHECK(m.parts[1].len == 1 && m.parts[1].data[0] == '1');
    pl_multipart_free(&m);
    /* no final CRLF after the close delimiter is fine too */
    static const char tight[] =
        "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b--";
    CHECK(pl_multipart_parse(S(tight), "b", &m, err, sizeof(err)) == 0 && m.nparts == 1);
    pl_multipart_free(&m);
    /* a form with no parts at all */
    CHECK(pl_multipart_parse(S("--b--\r\n"), "b", &m, err, sizeof(err)) == 0 && m.nparts == 0);
    pl_multipart_free(&m);
}

static void binary_content_is_kept_byte_for_byte(void)
{
    /* NULs, bare CR and LF, CRLF, and lines that start with the boundary text but are not
     * delimiters (not followed by CRLF or "--") all stay in the content. */
    static const char content[] = "\x00\x01\xff\r\n--bound-ish\r\n--boundX\r\n\r--bound\x00\n\r\n";
    char body[512];
    size_t n = 0;
    static const char head[] =
        "--bound\r\nContent-Disposition: form-data; name=\"bin\"; "
        "filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    memcpy(body + n, head, sizeof(head) - 1);
    n += sizeof(head) - 1;
    memcpy(body + n, content, sizeof(content) - 1);
    n += sizeof(content) - 1;
    memcpy(body + n, "\r\n--bound--\r\n", 13);
    n += 13;
    pl_multipart m;
    CHECK(pl_multipart_parse(body, n, "bound", &m, err, sizeof(err)) == 0);
    CHECK(m.nparts == 1);
    CHECK(m.parts[0].len == sizeof(content) - 1);
    CHECK(m.parts[0].len == sizeof(content) - 1 &&
          memcmp(m.parts[0].data, content, sizeof(content) - 1) == 0);
    pl_multipart_free(&m);
}

static void quoted_names_and_filenames(void)
{
    static const char body[] = "--q\r\n"
                               "Content-Disposition: form-data; filename=\"C:\\data\\my "
                               "\\\"list\\\".csv\"; name=\"file\"\r\n"
                               "\r\n"
                               "x\r\n"
                               "--q\r\n"
                               "Content-Disposition: form-data; name=\"semi;colon\"\r\n"
                               "\r\n"
                               "y\r\n"
                               "--q--\r\n";
    pl_multipart m;
    CHECK(pl_multipart_parse(S(body), "q", &m, err, sizeof(err)) == 0);
    const pl_mpart *f = pl_multipart_get(&m, "file", 0);
    CHECK(f != NULL);
    if (f != NULL)
        CHECK_STR(f->filename, "C:\\data\\my \"list\".csv"); /* bare backslashes kept */
    CHECK(pl_multipart_get(&m, "semi;colon", 0) != NULL);
    pl_multipart_free(&m);
}

static int fails(const char *body, size_t len, const char *boundary, const char *needle)
{
    pl_multipart m;
    err[0] = '\0';
    int rc = pl_multipart_parse(body, len, boundary, &m, err, sizeof(err));
    pl_multipart_free(&m);
    if (rc == 0 || strstr(err, needle) == NULL) {
        printf("    rc %d, err '%s', wanted '%s'\n", rc, err, needle);
        return 0;
    }
    return 1;
}

static void malformed_bodies_are_errors(void)
{
    const char *cd = "Content-Disposition: form-data; name=\"a\"\r\n";
    char b[512];
    /* missing final boundary: after a part, and after the last delimiter */
    snprintf(b, sizeof(b), "--b\r\n%s\r\nvalue\r\n", cd);
    CHECK(fails(b, strlen(b), "b", "ends without the closing boundary '--b--'"));
    snprintf(b, sizeof(b), "--b\r\n%s\r\nvalue\r\n--b\r\n", cd);
    CHECK(fails(b, strlen(b), "b", "headers do not end"));
    snprintf(b, sizeof(b), "--b\r\n%s\r\nvalue\r\n--b", cd);
    CHECK(fails(b, strlen(b), "b", "ends without the closing boundary"));
    CHECK(fails(S(""), "b", "no boundary line '--b'"));
    CHECK(fails(S("just text"), "b", "no boundary line"));
    CHECK(fails(S("--other\r\n\r\nx\r\n--other--"), "b", "no boundary line"));
    /* LF-only line ends are not multipart */
    snprintf(b, sizeof(b), "--b\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b--\n");
    CHECK(fails(b, strlen(b), "b", "not followed by CRLF"));
    snprintf(b, sizeof(b), "--b\r\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b--\n");
    CHECK(fails(b, strlen(b), "b", "headers do not end"));
    /* headers */
    CHECK(fails(S("--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--"), "b",
                "no Content-Disposition"));
    CHECK(fails(S("--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--b--"), "b",
                "not form-data"));
    CHECK(fails(S("--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--"), "b", "has no name"));
    CHECK(fails(S("--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--b--"), "b",
                "has no name"));
    CHECK(fails(S("--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--b--"), "b",
                "malformed"));
    CHECK(fails(S("--b\r\nno colon here\r\n\r\nv\r\n--b--"), "b", "header line without"));
    /* limits */
    char *big = malloc(PL_MULTIPART_MAX_HEADERS + 200);
    int n = snprintf(big, 64, "--b\r\nX-Long: ");
    memset(big + n, 'a', PL_MULTIPART_MAX_HEADERS);
    n += PL_MULTIPART_MAX_HEADERS;
    n += snprintf(big + n, 100, "\r\n%s\r\nv\r\n--b--", cd);
    CHECK(fails(big, (size_t)n, "b", "headers over"));
    free(big);
    size_t cap = (PL_MULTIPART_MAX_PARTS + 2) * 64, len = 0;
    char *many = malloc(cap);
    for (int i = 0; i <= PL_MULTIPART_MAX_PARTS; i++)
        len += (size_t)snprintf(many + len, cap - len, "--b\r\n%s\r\nv\r\n", cd);
    len += (size_t)snprintf(many + len, cap - len, "--b--");
    CHECK(fails(many, len, "b", "more than 64 parts"));
    free(many);
}

int main(void)
{
    RUN(boundary_forms);
    RUN(two_fields_and_a_file);
    RUN(preamble_epilogue_padding_and_empty_parts);
    RUN(binary_content_is_kept_byte_for_byte);
    RUN(quoted_names_and_filenames);
    RUN(malformed_bodies_are_errors);
    return check_summary();
}
