/* The SSRF guard's address classification (ssrf.h): the ranges DESIGN.md names, and the IPv6
 * forms that carry an IPv4 address, judged by that address. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ssrf.h"

static int in4(uint32_t a, uint32_t net, int bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (a & mask) == (net & mask);
}

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* a: host byte order. */
static pl_addr_class classify4(uint32_t a)
{
    if (a == V4(169, 254, 169, 254) || a == V4(100, 100, 100, 200)) /* AWS/GCP/Azure, Alibaba */
        return PL_ADDR_METADATA;
    if (in4(a, V4(0, 0, 0, 0), 8))
        return PL_ADDR_UNSPECIFIED;
    if (in4(a, V4(127, 0, 0, 0), 8))
        return PL_ADDR_LOOPBACK;
    if (in4(a, V4(10, 0, 0, 0), 8) || in4(a, V4(172, 16, 0, 0), 12) ||
        in4(a, V4(192, 168, 0, 0), 16) || in4(a, V4(100, 64, 0, 0), 10))
        return PL_ADDR_PRIVATE;
    if (in4(a, V4(169, 254, 0, 0), 16))
        return PL_ADDR_LINK_LOCAL;
    if (a == V4(255, 255, 255, 255) || in4(a, V4(224, 0, 0, 0), 4))
        return PL_ADDR_MULTICAST;
    if (in4(a, V4(192, 0, 0, 0), 24) ||    /* IETF protocol assignments */
        in4(a, V4(192, 0, 2, 0), 24) ||    /* TEST-NET-1 */
        in4(a, V4(198, 51, 100, 0), 24) || /* TEST-NET-2 */
        in4(a, V4(203, 0, 113, 0), 24) ||  /* TEST-NET-3 */
        in4(a, V4(198, 18, 0, 0), 15) ||   /* benchmarking */
        in4(a, V4(192, 88, 99, 0), 24) ||  /* 6to4 relay anycast (deprecated) */
        in4(a, V4(240, 0, 0, 0), 4))       /* reserved */
        return PL_ADDR_RESERVED;
    return PL_ADDR_PUBLIC;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int prefix6(const uint8_t *a, const uint8_t *net, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)bytes) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (net[bytes] & mask);
}

static pl_addr_class classify6(const uint8_t *a)
{
    static const uint8_t zero[16];
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t sixto4[2] = {0x20, 0x02};
    static const uint8_t ula[1] = {0xfc};
    static const uint8_t link[2] = {0xfe, 0x80};
    static const uint8_t site[2] = {0xfe, 0xc0};
    static const uint8_t doc[4] = {0x20, 0x01, 0x0d, 0xb8};
    static const uint8_t discard[8] = {0x01, 0x00};
    static const uint8_t ec2[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                    0,    0,    0,    0,    0, 0, 0x02, 0x54};
    static const uint8_t teredo[4] = {0x20, 0x01, 0x00, 0x00};

    if (memcmp(a, zero, 16) == 0)
        return PL_ADDR_UNSPECIFIED;
    if (memcmp(a, zero, 15) == 0 && a[15] == 1)
        return PL_ADDR_LOOPBACK;
    /* Addresses that carry an IPv4 address: judged by it (::ffff:127.0.0.1 is loopback). */
    if (memcmp(a, mapped, 12) == 0 || prefix6(a, nat64, 96))
        return classify4(be32(a + 12));
    if (prefix6(a, zero, 96)) /* deprecated IPv4-compatible ::a.b.c.d */
        return classify4(be32(a + 12));
    if (prefix6(a, sixto4, 16))
        return classify4(be32(a + 2));
    if (memcmp(a, ec2, 16) == 0)
        return PL_ADDR_METADATA;
    if (a[0] == 0xff)
        return PL_ADDR_MULTICAST;
    if (prefix6(a, ula, 7) || prefix6(a, site, 10))
        return PL_ADDR_PRIVATE;
    if (prefix6(a, link, 10))
        return PL_ADDR_LINK_LOCAL;
    if (prefix6(a, doc, 32) || prefix6(a, discard, 64) || prefix6(a, teredo, 32))
        return PL_ADDR_RESERVED;
    if ((a[0] & 0xe0) != 0x20) /* global unicast is 2000::/3; the rest is unassigned */
        return PL_ADDR_RESERVED;
    return PL_ADDR_PUBLIC;
}

pl_addr_class pl_ssrf_classify(const struct sockaddr *sa)
{
    if (sa == NULL)
        return PL_ADDR_RESERVED;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)sa;
        return classify4(ntohl(s->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)sa;
        return classify6(s->sin6_addr.s6_addr);
    }
    return PL_ADDR_RESERVED;
}

const char *pl_ssrf_class_name(pl_addr_class c)
{
    switch (c) {
    case PL_ADDR_PUBLIC:
        return "public";
    case PL_ADDR_LOOPBACK:
        return "loopback";
    case PL_ADDR_PRIVATE:
        return "private";
    case PL_ADDR_LINK_LOCAL:
        return "link-local";
    case PL_ADDR_METADATA:
        return "cloud metadata";
    case PL_ADDR_UNSPECIFIED:
        return "unspecified";
    case PL_ADDR_MULTICAST:
        return "multicast/broadcast";
    case PL_ADDR_RESERVED:
        return "reserved";
    }
    return "unknown";
}

int pl_ssrf_allowed(pl_addr_class c, int allow_private)
{
    switch (c) {
    case PL_ADDR_PUBLIC:
        return 1;
    case PL_ADDR_LOOPBACK:
    case PL_ADDR_PRIVATE:
    case PL_ADDR_LINK_LOCAL:
        return allow_private;
    default:
        return 0;
    }
}

const char *pl_ssrf_ntop(const struct sockaddr *sa, char buf[PL_SSRF_ADDRSTRLEN])
{
    const void *a = NULL;
    if (sa != NULL && sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa != NULL && sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (a == NULL || inet_ntop(sa->sa_family, a, buf, PL_SSRF_ADDRSTRLEN) == NULL)
        snprintf(buf, PL_SSRF_ADDRSTRLEN, "?");
    return buf;
}
