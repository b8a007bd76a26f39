/* The SSRF guard's address classes (common/ssrf.c), over the ranges DESIGN.md names and the IPv6
 * forms that smuggle an IPv4 address; the policy; the address text. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "check.h"
#include "ssrf.h"

static pl_addr_class classify(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
            return (pl_addr_class)-1;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
            return (pl_addr_class)-1;
    }
    return pl_ssrf_classify((struct sockaddr *)&ss);
}

#define IS(ip, cls)                                                                                \
    do {                                                                                           \
        pl_addr_class got = classify(ip);                                                          \
        if (got != (cls))                                                                          \
            printf("    %s: got %s\n", ip, pl_ssrf_class_name(got));                               \
        CHECK(got == (cls));                                                                       \
    } while (0)

static void test_ipv4(void)
{
    IS("127.0.0.1", PL_ADDR_LOOPBACK);
    IS("127.255.255.254", PL_ADDR_LOOPBACK);
    IS("10.0.0.1", PL_ADDR_PRIVATE);
    IS("172.16.0.1", PL_ADDR_PRIVATE);
    IS("172.31.255.255", PL_ADDR_PRIVATE);
    IS("172.32.0.1", PL_ADDR_PUBLIC);
    IS("192.168.1.1", PL_ADDR_PRIVATE);
    IS("100.64.0.1", PL_ADDR_PRIVATE);
    IS("100.128.0.1", PL_ADDR_PUBLIC);
    IS("169.254.1.1", PL_ADDR_LINK_LOCAL);
    IS("169.254.169.254", PL_ADDR_METADATA);
    IS("100.100.100.200", PL_ADDR_METADATA);
    IS("0.0.0.0", PL_ADDR_UNSPECIFIED);
    IS("0.1.2.3", PL_ADDR_UNSPECIFIED);
    IS("224.0.0.1", PL_ADDR_MULTICAST);
    IS("255.255.255.255", PL_ADDR_MULTICAST);
    IS("240.0.0.1", PL_ADDR_RESERVED);
    IS("192.0.2.10", PL_ADDR_RESERVED);
    IS("198.18.0.1", PL_ADDR_RESERVED);
    IS("203.0.113.7", PL_ADDR_RESERVED);
    IS("8.8.8.8", PL_ADDR_PUBLIC);
    IS("13.203.39.153", PL_ADDR_PUBLIC);
    IS("11.0.0.1", PL_ADDR_PUBLIC);
    IS("192.169.0.1", PL_ADDR_PUBLIC);
}

static void test_ipv6(void)
{
    IS("::1", PL_ADDR_LOOPBACK);
    IS("::", PL_ADDR_UNSPECIFIED);
    IS("fe80::1", PL_ADDR_LINK_LOCAL);
    IS("febf::1", PL_ADDR_LINK_LOCAL);
    IS("fec0::1", PL_ADDR_PRIVATE);
    IS("fc00::1", PL_ADDR_PRIVATE);
    IS("fd12:3456::1", PL_ADDR_PRIVATE);
    IS("fd00:ec2::254", PL_ADDR_METADATA);
    IS("ff02::1", PL_ADDR_MULTICAST);
    IS("2001:db8::1", PL_ADDR_RESERVED);
    IS("100::1", PL_ADDR_RESERVED);
    IS("2001::1", PL_ADDR_RESERVED); /* Teredo */
    IS("4000::1", PL_ADDR_RESERVED); /* outside 2000::/3 */
    IS("2606:4700:4700::1111", PL_ADDR_PUBLIC);
    IS("2a00:1450:4001::200e", PL_ADDR_PUBLIC);
}

static void test_ipv6_carrying_ipv4(void)
{
    IS("::ffff:127.0.0.1", PL_ADDR_LOOPBACK);
    IS("::ffff:10.1.2.3", PL_ADDR_PRIVATE);
    IS("::ffff:169.254.169.254", PL_ADDR_METADATA);
    IS("::ffff:8.8.8.8", PL_ADDR_PUBLIC);
    IS("64:ff9b::192.168.0.1", PL_ADDR_PRIVATE); /* NAT64 */
    IS("64:ff9b::8.8.4.4", PL_ADDR_PUBLIC);
    IS("2002:7f00:1::1", PL_ADDR_LOOPBACK); /* 6to4 of 127.0.0.1 */
    IS("2002:0808:0808::1", PL_ADDR_PUBLIC);
    IS("::127.0.0.1", PL_ADDR_LOOPBACK); /* deprecated IPv4-compatible */
}

static void test_policy(void)
{
    CHECK(pl_ssrf_allowed(PL_ADDR_PUBLIC, 0));
    CHECK(!pl_ssrf_allowed(PL_ADDR_LOOPBACK, 0));
    CHECK(!pl_ssrf_allowed(PL_ADDR_PRIVATE, 0));
    CHECK(!pl_ssrf_allowed(PL_ADDR_LINK_LOCAL, 0));
    CHECK(pl_ssrf_allowed(PL_ADDR_LOOPBACK, 1));
    CHECK(pl_ssrf_allowed(PL_ADDR_PRIVATE, 1));
    CHECK(pl_ssrf_allowed(PL_ADDR_LINK_LOCAL, 1));
    /* never, even when private targets are allowed */
    CHECK(!pl_ssrf_allowed(PL_ADDR_METADATA, 1));
    CHECK(!pl_ssrf_allowed(PL_ADDR_UNSPECIFIED, 1));
    CHECK(!pl_ssrf_allowed(PL_ADDR_MULTICAST, 1));
    CHECK(!pl_ssrf_allowed(PL_ADDR_RESERVED, 1));
    struct sockaddr other = {.sa_family = AF_UNIX};
    CHECK(pl_ssrf_classify(&other) == PL_ADDR_RESERVED);
    CHECK(pl_ssrf_classify(NULL) == PL_ADDR_RESERVED);
}

static void test_ntop(void)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    char ip[PL_SSRF_ADDRSTRLEN];
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    CHECK_STR(pl_ssrf_ntop((struct sockaddr *)&s4, ip), "10.1.2.3");
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    CHECK_STR(pl_ssrf_ntop((struct sockaddr *)&s6, ip), "::ffff:127.0.0.1");
    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &s6.sin6_addr);
    CHECK_STR(pl_ssrf_ntop((struct sockaddr *)&s6, ip), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    struct sockaddr other = {.sa_family = AF_UNIX};
    CHECK_STR(pl_ssrf_ntop(&other, ip), "?");
    CHECK_STR(pl_ssrf_ntop(NULL, ip), "?");
    CHECK_STR(pl_ssrf_class_name(PL_ADDR_LINK_LOCAL), "link-local");
    CHECK_STR(pl_ssrf_class_name((pl_addr_class)99), "unknown");
}

int main(void)
{
    RUN(test_ipv4);
    RUN(test_ipv6);
    RUN(test_ipv6_carrying_ipv4);
    RUN(test_policy);
    RUN(test_ntop);
    return check_summary();
}
