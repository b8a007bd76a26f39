/* csv: RFC 4180 records as spreadsheets and scripts write them (quotes, doubled quotes, CRLF,
 * LF and CR line ends, BOM, empty lines, no final newline) and the errors a malformed file
 * gets, each naming its line. */
#include "check.h"
#include "csv.h"
#include "error.h"

static char err[256];

/* Reads every record of text into one string: fields joined by '|', records by '/'. */
static int flatten(const char *text, size_t len, char *out, size_t cap)
{
    pl_csv c;
    size_t n = 0;
    int rc;
    pl_csv_init(&c, text, len);
    out[0] = '\0';
    while ((rc = pl_csv_next(&c, err, sizeof(err))) == 1) {
        for (int i = 0; i < c.nfields; i++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", i > 0 ? "|" : (n > 0 ? "/" : ""),
                                  c.fields[i]);
    }
    pl_csv_free(&c);
    return rc;
}

#define FLAT(lit, want)                                                                            \
    do {                                                                                           \
        char got_[512];                                                                            \
        CHECK(flatten(lit, sizeof(lit) - 1, got_, sizeof(got_)) == 0);                             \
        CHECK_STR(got_, want);                                                                     \
    } while (0)

static void plain_records_and_line_ends(void)
{
    FLAT("a,b,c\r\n1,2,3\r\n", "a|b|c/1|2|3");
    FLAT("a,b,c\n1,2,3\n", "a|b|c/1|2|3");
    FLAT("a,b,c\r1,2,3\r", "a|b|c/1|2|3"); /* classic Mac */
    FLAT("a,b,c\n1,2,3", "a|b|c/1|2|3");   /* no final newline */
    FLAT("a,b\r\n1,2\n3,4\r5,6", "a|b/1|2/3|4/5|6");
    FLAT("x", "x");
    FLAT("", "");
}

static void empty_fields_lines_and_bom(void)
{
    FLAT("a,,c\n,,\n", "a||c/||");         /* only commas: a record of empty fields */
    FLAT("a,b,\n1,2,\n", "a|b|/1|2|");     /* trailing comma: a last empty field */
    FLAT("a,b\n\n\r\n1,2\n\n", "a|b/1|2"); /* empty lines skipped */
    FLAT("\n\na\n", "a");                  /* even before the first record */
    FLAT("\xef\xbb\xbf"
         "a,b\n1,2",
         "a|b/1|2");                          /* BOM dropped */
    FLAT("a,\xef\xbb\xbf", "a|\xef\xbb\xbf"); /* only at the very start */
    FLAT(" a , b \n", " a | b ");             /* spaces are data */
}

static void quoted_fields(void)
{
    FLAT("\"a,b\",c\n", "a,b|c");
    FLAT("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x");
    FLAT("\"\",\"\"\n", "|");
    FLAT("\"line1\r\nline2\",z\n", "line1\r\nline2|z"); /* line breaks kept verbatim */
    FLAT("\"a\nb\"", "a\nb");
    FLAT("\"\"\"\"", "\"");
    FLAT("ab\"c,d\n", "ab\"c|d"); /* a quote inside an unquoted field is data */
    FLAT("5'11\",x", "5'11\"|x");
    FLAT("\"q\"\r\n\"r\"", "q/r");
}

static void lines_and_record_numbers(void)
{
    static const char text[] = "h1,h2\n\n\"multi\nline\",x\r\nlast,y\n";
    pl_csv c;
    pl_csv_init(&c, text, sizeof(text) - 1);
    CHECK(pl_csv_next(&c, err, sizeof(err)) == 1);
    CHECK(c.record_line == 1 && c.record_number == 1 && c.nfields == 2);
    CHECK(pl_csv_next(&c, err, sizeof(err)) == 1);
    CHECK(c.record_line == 3 && c.record_number == 2);
    CHECK(c.lens[0] == 10 && strcmp(c.fields[0], "multi\nline") == 0);
    CHECK(pl_csv_next(&c, err, sizeof(err)) == 1);
    CHECK(c.record_line == 5 && c.record_number == 3);
    CHECK_STR(c.fields[0], "last");
    CHECK(pl_csv_next(&c, err, sizeof(err)) == 0);
    CHECK(pl_csv_next(&c, err, sizeof(err)) == 0); /* stays at the end */
    pl_csv_free(&c);
}

static void binary_safe_fields(void)
{
    static const char text[] = "a\0b,\"c\0d\"\n";
    pl_csv c;
    pl_csv_init(&c, text, sizeof(text) - 1);
    CHECK(pl_csv_next(&c, err, sizeof(err)) == 1);
    CHECK(c.nfields == 2 && c.lens[0] == 3 && memcmp(c.fields[0], "a\0b", 3) == 0);
    CHECK(c.lens[1] == 3 && memcmp(c.fields[1], "c\0d", 3) == 0);
    pl_csv_free(&c);
}

static int fails_with(const char *text, size_t len, int want_rc, const char *needle)
{
    char out[4096];
    int rc = flatten(text, len, out, sizeof(out));
    if (rc != want_rc || strstr(err, needle) == NULL) {
        printf("    rc %d err '%s', wanted %d '%s'\n", rc, err, want_rc, needle);
        return 0;
    }
    return 1;
}

static void malformed_files(void)
{
    CHECK(fails_with("a,b\n1,\"open\n2,3\n", 16, PL_ERR_INVALID,
                     "line 2: field 2 opens a quote that is never closed"));
    CHECK(fails_with("\"", 1, PL_ERR_INVALID, "line 1: field 1 opens a quote"));
    CHECK(fails_with("a\n\"x\"y,z\n", 9, PL_ERR_INVALID,
                     "line 2: field 1 has text after its closing quote"));
    CHECK(fails_with("a\n\"x\" ,z\n", 9, PL_ERR_INVALID, "closing quote"));
    /* too many fields in one record */
    size_t n = PL_CSV_MAX_FIELDS + 1;
    char *wide = malloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        wide[2 * i] = 'x';
        wide[2 * i + 1] = ',';
    }
    CHECK(fails_with(wide, 2 * n - 1, PL_ERR_TOOBIG, "line 1: more than 1024 fields"));
    /* exactly the maximum is fine */
    char out[4096];
    CHECK(flatten(wide, 2 * (n - 1) - 1, out, sizeof(out)) == 0);
    free(wide);
}

static void large_input_grows_buffers(void)
{
    size_t rows = 20000, cap = rows * 40, len = 0;
    char *text = malloc(cap);
    len += (size_t)snprintf(text, cap, "contact_number,name\r\n");
    for (size_t i = 0; i < rows; i++)
        len += (size_t)snprintf(text + len, cap - len, "+1415555%04zu,\"Name, %zu\"\r\n", i % 10000,
                                i);
    pl_csv c;
    pl_csv_init(&c, text, len);
    long records = 0;
    int rc, ok = 1;
    while ((rc = pl_csv_next(&c, err, sizeof(err))) == 1) {
        records++;
        ok &= c.nfields == 2;
    }
    CHECK(rc == 0 && ok && records == (long)rows + 1);
    CHECK(c.record_line == (long)rows + 1);
    pl_csv_free(&c);
    free(text);
}

int main(void)
{
    RUN(plain_records_and_line_ends);
    RUN(empty_fields_lines_and_bom);
    RUN(quoted_fields);
    RUN(lines_and_record_numbers);
    RUN(binary_safe_fields);
    RUN(malformed_files);
    RUN(large_input_grows_buffers);
    return check_summary();
}
